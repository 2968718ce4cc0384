"""The Ranker servicer on an in-process grpc.aio server, and the service as a real process."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest

from services.common.codec import decode_block, encode_block
from services.common.redis_client import ResilientRedis
from services.ranker.cache import ScanCache
from services.ranker.core import Ranker
from services.ranker.engine import RankConfig
from services.ranker.service import RankerService
from services.ranker.synthetic import EncodedChunk, Universe, benchmark_closes, synthetic_universe
from technic.v1 import common_pb2, compute_pb2, ranker_pb2, ranker_pb2_grpc, scan_pb2
from tests.ranker.test_engine import CAL
from tests.support import RedisServer, free_port, running_service, service_env

STATES = {
    "ok": common_pb2.SYMBOL_STATE_OK,
    "insufficient_history": common_pb2.SYMBOL_STATE_INSUFFICIENT_HISTORY,
    "no_data": common_pb2.SYMBOL_STATE_NO_DATA,
    "stale": common_pb2.SYMBOL_STATE_STALE,
    "error": common_pb2.SYMBOL_STATE_ERROR,
}
UNIVERSE = synthetic_universe(800, chunk_size=200, seed=11)


def score_response(c: EncodedChunk) -> compute_pb2.ScoreResponse:
    return compute_pb2.ScoreResponse(
        chunk_index=c.chunk_index,
        symbols=c.symbols,
        states=[STATES[s] for s in c.states],
        features=c.features,
        scores=c.scores,
        levels=c.levels,
        sparklines=c.sparklines,
        feature_version=c.feature_version,
        model_versions=c.model_versions,
        replica="test",
    )


def header(
    u: Universe, fingerprint: str, scan_id: str = "scan-1", prefiltered: int = 3, **options: object
) -> ranker_pb2.RankHeader:
    info = u.info
    return ranker_pb2.RankHeader(
        scan_id=scan_id,
        fingerprint=fingerprint,
        options=scan_pb2.ScanOptions(**options),
        as_of="2026-11-13",
        info=ranker_pb2.SymbolInfo(
            symbols=info.symbols,
            names=info.names,
            sectors=info.sectors,
            industries=info.industries,
            market_caps=info.market_caps,
        ),
        issues=[
            common_pb2.SymbolIssue(symbol=f"PENNY{i}", bucket=common_pb2.BUCKET_FILTERED, reason="prefilter_price")
            for i in range(prefiltered)
        ],
        requested=len(info.symbols) + prefiltered,
        benchmark=encode_block(benchmark_closes().astype(np.float32)[:, None], fields=["close"]),
        stage_seconds={"fetch": 0.2, "compute": 0.1},
    )


def stream(head: ranker_pb2.RankHeader, u: Universe = UNIVERSE) -> Iterator[ranker_pb2.RankRequest]:
    yield ranker_pb2.RankRequest(header=head)
    for c in u.chunks:
        yield ranker_pb2.RankRequest(chunk=score_response(c))


@pytest.fixture
async def stub(redis_server: RedisServer) -> AsyncIterator[ranker_pb2_grpc.RankerStub]:
    redis = ResilientRedis(redis_server.url)
    await redis.client.flushdb()
    server = grpc.aio.server()
    cache = ScanCache(redis)
    ranker_pb2_grpc.add_RankerServicer_to_server(RankerService(Ranker(RankConfig(CAL), cache)), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield ranker_pb2_grpc.RankerStub(channel)
    await server.stop(None)
    await cache.drain()
    await redis.close()


def feature_of(symbol: str, name: str, u: Universe = UNIVERSE) -> float:
    """The value compute sent for ``symbol``'s feature ``name`` (float32, as on the wire)."""
    for chunk in u.chunks:
        block = decode_block(chunk.features)
        if symbol in block.rows:
            return float(block.column(name)[block.rows.index(symbol)])
    raise KeyError(symbol)


async def test_rank_then_page(stub: ranker_pb2_grpc.RankerStub) -> None:
    result = await stub.Rank(stream(header(UNIVERSE, "fp-1", limit=25, min_tech_rating=40)))
    acc = result.accounting
    assert acc.requested == 803 and not result.cached
    assert acc.ranked + sum(acc.filtered.values()) + sum(acc.skipped.values()) + sum(acc.errored.values()) == 803
    assert acc.filtered["prefilter_price"] == 3 and acc.filtered["min_tech_rating"] > 0
    assert len(result.issues) == 803 - acc.ranked and result.total_rows == acc.ranked
    assert [r.rank for r in result.rows] == list(range(1, 26))
    row = result.rows[0]
    assert row.features["rsi_14"] == feature_of(row.symbol, "rsi_14") and len(row.features) == 38
    names = sorted(row.features)
    np.testing.assert_array_equal([row.features[k] for k in names], [feature_of(row.symbol, k) for k in names])
    assert set(row.subscores) == {"trend", "momentum", "volume", "volatility", "oscillator", "breakout"}
    assert row.plan.entry == row.last_close and row.plan.side in ("long", "short") and row.rationale
    assert len(row.sparkline) == 30 and row.play_style == "Short-term swing" and row.tech_rating >= 40
    assert 0 <= row.rating_percentile <= 100 and 0 <= row.alpha_percentile <= 100
    assert result.regime.label and result.movers and len(result.movers[0].sparkline) == 30
    assert result.stage_seconds["fetch"] == 0.2 and "rank" in result.stage_seconds
    assert result.model_versions["alpha_10d"] == "test-10d"

    again = await stub.Rank(stream(header(UNIVERSE, "fp-1", scan_id="scan-2", limit=25, min_tech_rating=40)))
    assert again.cached and again.scan_id == "scan-2" and again.rows == result.rows

    page = await stub.GetResults(
        ranker_pb2.GetResultsRequest(scan_id="scan-2", offset=10, limit=5, sort_by="rsi_14", ascending=True)
    )
    values = [r.features["rsi_14"] for r in page.rows]
    assert len(values) == 5 and values == sorted(values) and page.offset == 10 and not page.issues
    full = await stub.GetResults(ranker_pb2.GetResultsRequest(fingerprint="fp-1", include_issues=True, limit=10))
    assert list(full.issues) == list(result.issues) and full.rows[0] == result.rows[0]


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (ranker_pb2.GetResultsRequest(fingerprint="fp-b", sort_by="shoe_size"), "allowed: .*tech_rating"),
        (ranker_pb2.GetResultsRequest(fingerprint="fp-b", limit=-1), "limit must be between 0 and 10000"),
        (ranker_pb2.GetResultsRequest(), "give a scan_id or a fingerprint"),
    ],
)
async def test_get_results_bad_options(
    stub: ranker_pb2_grpc.RankerStub, request_: ranker_pb2.GetResultsRequest, message: str
) -> None:
    await stub.Rank(stream(header(UNIVERSE, "fp-b")))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.GetResults(request_)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details() and re.search(message, err.value.details())


async def test_rank_bad_options_and_input(stub: ranker_pb2_grpc.RankerStub) -> None:
    cases = [
        (stream(header(UNIVERSE, "fp-x", sectors=["Crypto"])), "unknown sector\\(s\\) Crypto; allowed: .*Energy"),
        (stream(header(UNIVERSE, "fp-x", sort_by="nope")), "unknown sort column 'nope'; allowed: "),
        (stream(header(UNIVERSE, "fp-x", limit=-3)), "limit must be"),
        (stream(header(UNIVERSE, "fp-x", signals=["Moon"])), "allowed: Strong Long, Long, Neutral"),
        (stream(header(UNIVERSE, "fp-x", trade_style=9)), "allowed: Day, Short-term swing"),
        (stream(header(UNIVERSE, "")), "fingerprint is required"),
        (iter([ranker_pb2.RankRequest(chunk=score_response(UNIVERSE.chunks[0]))]), "first message .* RankHeader"),
        (
            iter(
                [
                    ranker_pb2.RankRequest(header=header(UNIVERSE, "fp-y")),
                    ranker_pb2.RankRequest(chunk=compute_pb2.ScoreResponse(chunk_index=4, features=b"junk")),
                ]
            ),
            "chunk 4: features block",
        ),
    ]
    for requests, message in cases:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.Rank(requests)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, message
        assert re.search(message, err.value.details() or ""), err.value.details()


async def test_unknown_scan_is_not_found(stub: ranker_pb2_grpc.RankerStub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.GetResults(ranker_pb2.GetResultsRequest(scan_id="never"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.integration
def test_process_refuses_to_start_without_model_metadata(tmp_path: Path) -> None:
    env = service_env({"TECHNIC_MODEL_DIR": str(tmp_path / "empty"), "TECHNIC_RANKER_PORT": str(free_port())})
    proc = subprocess.run(
        [sys.executable, "-m", "services.ranker"],
        env=env,
        capture_output=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert proc.returncode == 2
    assert b"alpha_10d.json not found" in proc.stderr + proc.stdout


@pytest.mark.integration
def test_process_serves_rank(redis_server: RedisServer, model_dir: Path, logdir: Path) -> None:
    port = free_port()
    env = {"TECHNIC_MODEL_DIR": str(model_dir), "TECHNIC_RANKER_PORT": str(port), "REDIS_URL": redis_server.url}
    small = synthetic_universe(120, chunk_size=50, seed=5)
    with running_service("services.ranker", port, logdir, env), grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        stub = ranker_pb2_grpc.RankerStub(ch)
        result = stub.Rank(stream(header(small, "fp-proc", prefiltered=0), small), timeout=30)
        assert result.accounting.requested == 120 and result.rows
        assert (
            stub.GetResults(ranker_pb2.GetResultsRequest(scan_id="scan-1", limit=3), timeout=10).rows[0]
            == result.rows[0]
        )
