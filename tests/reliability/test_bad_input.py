"""Bad input: the HTTP API fuzzed from its own OpenAPI schema, invalid gRPC requests, corrupt panel chunks."""

from __future__ import annotations

import grpc
import httpx
import numpy as np
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from services.common.codec import encode_block
from technic.v1 import common_pb2, compute_pb2, compute_pb2_grpc, fetcher_pb2, fetcher_pb2_grpc, scan_pb2, scanner_pb2
from tests.reliability.conftest import API_KEYS, SupervisedCluster, run_scan

FUZZ_KEY = API_KEYS[5]
FUZZ = {
    "deadline": None,
    "derandomize": True,
    "phases": [Phase.explicit, Phase.generate],
    "suppress_health_check": list(HealthCheck),
    "database": None,
}


def fuzz(cluster: SupervisedCluster, examples: int) -> list[str]:
    """Up to ``examples`` generated requests per operation of the published schema: no 5xx, and every
    answer matches the schema the API publishes for its status. Returns the operations exercised."""
    api = schemathesis.openapi.from_url(f"{cluster.http}/openapi.json")
    exercised = []
    for loaded in api.get_all_operations():
        operation = loaded.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=examples, **FUZZ)
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(
                headers={"X-API-Key": FUZZ_KEY}, timeout=120, checks=[not_a_server_error, response_schema_conformance]
            )

        check()
        exercised.append(operation.label)
    return exercised


def test_openapi_fuzz_few_cases(cluster: SupervisedCluster) -> None:
    assert len(fuzz(cluster, 4)) >= 9


@pytest.mark.reliability
def test_openapi_fuzz_many_cases(cluster: SupervisedCluster) -> None:
    assert len(fuzz(cluster, 60)) >= 9


def test_published_schema_declares_the_error_answers(cluster: SupervisedCluster) -> None:
    paths = httpx.get(f"{cluster.http}/openapi.json", timeout=30).json()["paths"]
    for path, methods in paths.items():
        if path.startswith("/v1/"):
            for operation in methods.values():
                assert {"401", "422", "429", "500"} <= set(operation["responses"]), (path, operation["responses"])


BAD_OPTIONS = {
    "min_tech_rating out of range": scan_pb2.ScanOptions(min_tech_rating=150),
    "negative min_price": scan_pb2.ScanOptions(min_price=-1),
    "lookback too short": scan_pb2.ScanOptions(lookback_days=5),
    "lookback too long": scan_pb2.ScanOptions(lookback_days=100_000),
    "max_symbols negative": scan_pb2.ScanOptions(max_symbols=-5),
    "limit too large": scan_pb2.ScanOptions(limit=10_000_000),
    "unknown trade style": scan_pb2.ScanOptions(trade_style=77),
    "unknown options mode": scan_pb2.ScanOptions(options_mode=42),
    "unknown signal": scan_pb2.ScanOptions(signals=["Moon"]),
    "unknown sort column": scan_pb2.ScanOptions(sort_by="nope"),
    "100,000 symbols": scan_pb2.ScanOptions(universe=[f"S{i}" for i in range(100_000)]),
    "empty symbol": scan_pb2.ScanOptions(universe=["AAPL", ""]),
    "blank sector": scan_pb2.ScanOptions(sectors=[" "]),
    "unknown sector": scan_pb2.ScanOptions(sectors=["Astrology"]),
    "bad as_of": scan_pb2.ScanOptions(as_of="13/11/2026"),
}


@pytest.mark.parametrize("options", list(BAD_OPTIONS.values()), ids=list(BAD_OPTIONS))
def test_invalid_scan_requests_are_invalid_argument(cluster: SupervisedCluster, options: scan_pb2.ScanOptions) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        run_scan(cluster.target, options)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value
    assert len(caught.value.details() or "") > 10


@pytest.mark.parametrize(
    "request_",
    [
        scanner_pb2.GetSymbolRequest(symbol=""),
        scanner_pb2.GetSymbolRequest(symbol="A" * 500),
        scanner_pb2.GetSymbolRequest(symbol="AAPL", days=-3),
        scanner_pb2.GetScanRequest(),
        scanner_pb2.GetScanRequest(scan_id=""),
        scanner_pb2.GetScanRequest(fingerprint="x", limit=-1),
    ],
    ids=["empty symbol", "long symbol", "negative days", "no reference", "empty scan id", "negative limit"],
)
def test_invalid_queries_are_invalid_argument(cluster: SupervisedCluster, request_) -> None:
    from technic.v1 import scanner_pb2_grpc

    with grpc.insecure_channel(cluster.target) as channel:
        stub = scanner_pb2_grpc.ScannerStub(channel)
        call = stub.GetSymbol if isinstance(request_, scanner_pb2.GetSymbolRequest) else stub.GetScan
        with pytest.raises(grpc.RpcError) as caught:
            call(request_, timeout=30)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value
    assert caught.value.details()


def test_invalid_backend_requests_are_invalid_argument(cluster: SupervisedCluster) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{cluster.port('TECHNIC_FETCHER_PORT')}") as channel:
        fetcher = fetcher_pb2_grpc.FetcherStub(channel)
        for request in (fetcher_pb2.GetBarsRequest(symbol=""), fetcher_pb2.GetBarsRequest(symbol="AAPL", days=-1)):
            with pytest.raises(grpc.RpcError) as caught:
                fetcher.GetBars(request, timeout=30)
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT and caught.value.details()
    with grpc.insecure_channel(f"127.0.0.1:{cluster.compute_ports[0]}") as channel:
        compute = compute_pb2_grpc.ComputeStub(channel)
        for request in (
            compute_pb2.ScoreRequest(chunk=common_pb2.ChunkRef()),
            compute_pb2.ExplainRequest(features=b"not a block"),
            compute_pb2.ExplainRequest(top_k=-1),
        ):
            call = compute.Score if isinstance(request, compute_pb2.ScoreRequest) else compute.Explain
            with pytest.raises(grpc.RpcError) as caught:
                call(request, timeout=30)
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT and caught.value.details()


def _corrupt_chunks() -> dict[str, bytes]:
    good = encode_block(
        np.ones((2, 30, 5), dtype=np.float32), rows=["AAA", "BBB"], fields=["open", "high", "low", "close", "volume"]
    )
    return {
        "garbage": b"\x00\x01 definitely not a block",
        "truncated": good[: len(good) // 2],
        "wrong shape": encode_block(
            np.ones((2, 5), dtype=np.float32), rows=["AAA", "BBB"], fields=["open", "high", "low", "close", "volume"]
        ),
        "wrong fields": encode_block(
            np.ones((2, 30, 5), dtype=np.float32), rows=["AAA", "BBB"], fields=["a", "b", "c", "d", "e"]
        ),
        "integers": encode_block(
            np.ones((2, 30, 5), dtype=np.int32), rows=["AAA", "BBB"], fields=["open", "high", "low", "close", "volume"]
        ),
        "rows differ from symbols": good,
    }


def test_malformed_panel_chunks_in_redis_are_reported_per_chunk(cluster: SupervisedCluster) -> None:
    """Each corrupt chunk gets its own INVALID_ARGUMENT naming the problem; the replica keeps serving."""
    client = cluster.redis()
    port = cluster.compute_ports[0]
    pid = cluster.pid("compute:compute-1")
    messages = {}
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        compute = compute_pb2_grpc.ComputeStub(channel)
        for index, (name, data) in enumerate(_corrupt_chunks().items()):
            key = f"technic:panel:corrupt:{index}"
            client.set(key, data, ex=300)
            symbols = ["ZZA", "ZZB"] if name == "rows differ from symbols" else ["AAA", "BBB"]
            with pytest.raises(grpc.RpcError) as caught:
                compute.Score(
                    compute_pb2.ScoreRequest(
                        scan_id="corrupt",
                        chunk=common_pb2.ChunkRef(key=key, chunk_index=index, symbols=symbols, n_sessions=30),
                    ),
                    timeout=30,
                )
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (name, caught.value)
            messages[name] = caught.value.details() or ""
            assert "panel chunk" in messages[name], (name, messages[name])
    assert len(set(messages.values())) >= 4, messages
    assert cluster.pid("compute:compute-1") == pid, "the replica crashed"
    _, result = run_scan(cluster.target, scan_pb2.ScanOptions(limit=5))
    assert result.accounting.ranked > 0 and not result.accounting.errored
