"""The Scanner servicer over an orchestrator double, served by a real grpc.aio server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest

from gateway.grpc_api import ScannerService
from technic.v1 import scan_pb2, scanner_pb2, scanner_pb2_grpc
from tests.gateway.doubles import OrchestratorDouble
from tests.support import free_port


@pytest.fixture
async def scanner() -> AsyncIterator[tuple[scanner_pb2_grpc.ScannerStub, OrchestratorDouble]]:
    double = OrchestratorDouble()
    server = grpc.aio.server()
    scanner_pb2_grpc.add_ScannerServicer_to_server(ScannerService(double), server)  # type: ignore[arg-type]
    port = free_port()
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield scanner_pb2_grpc.ScannerStub(channel), double
    await server.stop(0)


async def test_scan_streams_progress_then_the_result(scanner) -> None:
    stub, _ = scanner
    events = [e async for e in stub.Scan(scanner_pb2.ScanRequest(options=scan_pb2.ScanOptions(limit=10)))]
    assert [e.WhichOneof("event") for e in events] == ["progress", "progress", "result"]
    assert events[1].progress.stage == "compute" and events[1].progress.done == 3
    assert events[-1].result.rows[0].symbol == "AAA"
    assert len({e.scan_id for e in events}) == 1


@pytest.mark.parametrize("options", [
    scan_pb2.ScanOptions(max_symbols=-5),
    scan_pb2.ScanOptions(trade_style=42),
    scan_pb2.ScanOptions(universe=["A"] * 20_001),
    scan_pb2.ScanOptions(universe=[""]),
    scan_pb2.ScanOptions(sort_by="nope"),
    scan_pb2.ScanOptions(min_tech_rating=-1),
])
async def test_bad_scan_options_are_invalid_argument(scanner, options: scan_pb2.ScanOptions) -> None:
    stub, double = scanner
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in stub.Scan(scanner_pb2.ScanRequest(options=options)):
            pass
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT and caught.value.details()
    assert double.scans == []


async def test_other_calls_validate_and_map_errors(scanner) -> None:
    stub, double = scanner
    for call, request in ((stub.GetScan, scanner_pb2.GetScanRequest()),
                          (stub.GetScan, scanner_pb2.GetScanRequest(fingerprint="fp1", limit=-1)),
                          (stub.GetSymbol, scanner_pb2.GetSymbolRequest(symbol="")),
                          (stub.GetSymbol, scanner_pb2.GetSymbolRequest(symbol="AAA", days=99_999))):
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
