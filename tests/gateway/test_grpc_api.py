"""The Scanner servicer over an orchestrator double, served by a real grpc.aio server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest

from gateway.grpc_api import ScannerService, add_to_server
from technic.v1 import scan_pb2, scanner_pb2, scanner_pb2_grpc
from tests.gateway.doubles import OrchestratorDouble


@pytest.fixture
async def served() -> AsyncIterator[tuple[grpc.aio.Channel, OrchestratorDouble]]:
    double = OrchestratorDouble()
    server = grpc.aio.server()
    add_to_server(ScannerService(double), server)  # type: ignore[arg-type]
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield channel, double
    await server.stop(0)


@pytest.fixture
def scanner(served) -> tuple[scanner_pb2_grpc.ScannerStub, OrchestratorDouble]:
    channel, double = served
    return scanner_pb2_grpc.ScannerStub(channel), double


async def test_scan_streams_progress_then_the_result(scanner) -> None:
    stub, _ = scanner
    events = [e async for e in stub.Scan(scanner_pb2.ScanRequest(options=scan_pb2.ScanOptions(limit=10)))]
    assert [e.WhichOneof("event") for e in events] == ["progress", "progress", "result"]
    assert events[1].progress.stage == "compute" and events[1].progress.done == 3
    assert events[-1].result.rows[0].symbol == "AAA"
    assert len({e.scan_id for e in events}) == 1


@pytest.mark.parametrize(
    "options",
    [
        scan_pb2.ScanOptions(max_symbols=-5),
        scan_pb2.ScanOptions(trade_style=42),
        scan_pb2.ScanOptions(universe=["A"] * 20_001),
        scan_pb2.ScanOptions(universe=[""]),
        scan_pb2.ScanOptions(sort_by="nope"),
        scan_pb2.ScanOptions(min_tech_rating=-1),
    ],
)
async def test_bad_scan_options_are_invalid_argument(scanner, options: scan_pb2.ScanOptions) -> None:
    stub, double = scanner
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in stub.Scan(scanner_pb2.ScanRequest(options=options)):
            pass
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT and caught.value.details()
    assert double.scans == []


async def test_other_calls_validate_and_map_errors(scanner) -> None:
    stub, double = scanner
    for call, request in (
        (stub.GetScan, scanner_pb2.GetScanRequest()),
        (stub.GetScan, scanner_pb2.GetScanRequest(fingerprint="fp1", limit=-1)),
        (stub.GetSymbol, scanner_pb2.GetSymbolRequest(symbol="")),
        (stub.GetSymbol, scanner_pb2.GetSymbolRequest(symbol="AAA", days=99_999)),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call(request)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, request
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetSymbol(scanner_pb2.GetSymbolRequest(symbol="ZZZ"))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert (await stub.GetSymbol(scanner_pb2.GetSymbolRequest(symbol="AAA"))).in_latest_scan
    page = await stub.GetScan(scanner_pb2.GetScanRequest(fingerprint="fp1", limit=2))
    assert [r.symbol for r in page.rows] == ["AAA", "BBB"]
    assert (await stub.GetUniverseStats(scanner_pb2.GetUniverseStatsRequest())).total == 10
    double.fail = RuntimeError("secret detail")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in stub.Scan(scanner_pb2.ScanRequest()):
            pass
    assert caught.value.code() == grpc.StatusCode.INTERNAL and "secret" not in (caught.value.details() or "")


async def test_repeated_get_scan_is_served_from_the_page_cache_until_a_scan_finishes(scanner) -> None:
    stub, double = scanner
    request = scanner_pb2.GetScanRequest(fingerprint="fp1", limit=2)
    first = await stub.GetScan(request)
    assert await stub.GetScan(request) == first
    assert len(double.pages) == 1
    other = await stub.GetScan(scanner_pb2.GetScanRequest(fingerprint="fp1", limit=1))
    assert [r.symbol for r in other.rows] == ["AAA"] and len(double.pages) == 2
    double.generation += 1  # a scan finished: cached pages may read differently now
    double.result.rows[0].symbol = "NEW"
    assert (await stub.GetScan(request)).rows[0].symbol == "NEW"
    assert len(double.pages) == 3


async def test_repeated_cached_scan_is_served_from_the_page_cache_for_its_session(scanner) -> None:
    stub, double = scanner
    double.result.cached = True

    async def result_of(request: scanner_pb2.ScanRequest) -> tuple[str, scan_pb2.ScanResult]:
        events = [e async for e in stub.Scan(request)]
        assert events[-1].scan_id and all(e.scan_id == events[-1].scan_id for e in events)
        return events[-1].scan_id, events[-1].result

    request = scanner_pb2.ScanRequest(options=scan_pb2.ScanOptions(limit=10))
    first_id, first = await result_of(request)
    second_id, second = await result_of(request)
    assert second == first and second_id != first_id and len(double.scans) == 1
    await result_of(scanner_pb2.ScanRequest(options=request.options, refresh=True))
    await result_of(scanner_pb2.ScanRequest(options=request.options, refresh=True))
    assert len(double.scans) == 3  # a refresh is never answered from the cache
    double.as_of = double.result.as_of = "2026-11-16"  # a new session: the cached answer was for another one
    await result_of(request)
    assert len(double.scans) == 4
    double.generation += 1
    await result_of(request)
    assert len(double.scans) == 5
    await result_of(request)
    assert len(double.scans) == 5


async def test_malformed_request_bytes_are_invalid_argument(served) -> None:
    channel, double = served
    for method in ("GetScan", "Scan"):
        path = f"/technic.v1.Scanner/{method}"
        call = channel.unary_unary(path) if method == "GetScan" else channel.unary_stream(path)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            outcome = call(b"\xff\xff\xff")
            if method == "GetScan":
                await outcome
            else:
                async for _ in outcome:
                    pass
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, method
    assert double.scans == [] and double.pages == []
