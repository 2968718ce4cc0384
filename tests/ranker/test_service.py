"""The Ranker servicer on an in-process grpc.aio server, and the service as a real process."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import grpc
import numpy as np
import pytest

from services.common.codec import decode_block
from services.common.redis_client import ResilientRedis
from services.contract.sessions import ttl_until_next_close
from services.ranker.cache import EXPLAIN_KEY, ScanCache
from services.ranker.core import Ranker
from services.ranker.engine import RankConfig
from services.ranker.service import RankerService
from technic.v1 import compute_pb2, ranker_pb2, ranker_pb2_grpc, scan_pb2
from tests.ranker import synthetic
from tests.ranker.synthetic import Universe, explanation, header, score_response, synthetic_universe
from tests.support import RedisServer, free_port, running_service

UNIVERSE = synthetic_universe(800, chunk_size=200, seed=11)


def stream(head: ranker_pb2.RankHeader, u: Universe = UNIVERSE) -> Iterator[ranker_pb2.RankRequest]:
    return synthetic.stream(head, u)


@asynccontextmanager
async def serving(cache: ScanCache) -> AsyncIterator[ranker_pb2_grpc.RankerStub]:
    """A ranker over ``cache`` on an in-process server; on exit its Redis writes are done."""
    ranker = Ranker(RankConfig(), cache)
    server = grpc.aio.server()
    ranker_pb2_grpc.add_RankerServicer_to_server(RankerService(ranker), server)
    port = server.add_insecure_port(f"127.0.0.1:{free_port()}")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield ranker_pb2_grpc.RankerStub(channel)
    finally:
        await server.stop(None)
        await cache.drain()


@pytest.fixture
async def redis(redis_server: RedisServer) -> AsyncIterator[ResilientRedis]:
    client = ResilientRedis(redis_server.url)
    await client.client.flushdb()
    yield client
    await client.close()


@pytest.fixture
async def stub(redis: ResilientRedis) -> AsyncIterator[ranker_pb2_grpc.RankerStub]:
    async with serving(ScanCache(redis)) as s:
        yield s


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


def without_calibration(head: ranker_pb2.RankHeader) -> ranker_pb2.RankHeader:
    head.ClearField("win_prob")
    return head


def bad_calibration(head: ranker_pb2.RankHeader) -> ranker_pb2.RankHeader:
    del head.win_prob.p_up[-1:]
    head.win_prob.p_up.extend([0.5, 0.5])
    return head


async def test_rank_bad_options_and_input(stub: ranker_pb2_grpc.RankerStub) -> None:
    cases = [
        (stream(header(UNIVERSE, "fp-x", sectors=["Crypto"])), "unknown sector\\(s\\) Crypto; allowed: .*Energy"),
        (stream(header(UNIVERSE, "fp-x", sort_by="nope")), "unknown sort column 'nope'; allowed: "),
        (stream(header(UNIVERSE, "fp-x", limit=-3)), "limit must be"),
        (stream(header(UNIVERSE, "fp-x", signals=["Moon"])), "allowed: Strong Long, Long, Neutral"),
        (stream(header(UNIVERSE, "fp-x", trade_style=9)), "allowed: Day, Short-term swing"),
        (stream(header(UNIVERSE, "")), "fingerprint is required"),
        (stream(without_calibration(header(UNIVERSE, "fp-x"))), "header.win_prob is required: .*Compute.Describe"),
        (stream(bad_calibration(header(UNIVERSE, "fp-x"))), r"header.win_prob needs len\(edges\) == len\(p_up\) \+ 1"),
        (iter([ranker_pb2.RankRequest(chunk=score_response(UNIVERSE.chunks[0]))]), "first message .* RankHeader"),
        (
            iter(
                [
                    ranker_pb2.RankRequest(header=header(UNIVERSE, "fp-y")),
                    ranker_pb2.RankRequest(chunk=compute_pb2.ScoreResponse(chunk_index=4, features=b"junk")),
                    ranker_pb2.RankRequest(end=ranker_pb2.RankEnd()),
                ]
            ),
            "chunk 4: features block",
        ),
        (
            iter(
                [
                    ranker_pb2.RankRequest(header=header(UNIVERSE, "fp-y")),
                    ranker_pb2.RankRequest(header=header(UNIVERSE, "fp-y")),
                ]
            ),
            "only ScoreResponse chunks and a RankEnd may follow the RankHeader",
        ),
    ]
    for requests, message in cases:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.Rank(requests)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, message
        assert re.search(message, err.value.details() or ""), err.value.details()


async def test_a_stream_cut_off_before_its_end_is_neither_ranked_nor_kept(stub: ranker_pb2_grpc.RankerStub) -> None:
    whole = list(stream(header(UNIVERSE, "fp-cut", limit=5)))
    assert whole[-1].WhichOneof("item") == "end"
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.Rank(iter(whole[:-2]))  # a cancelled client's stream: the server reads it as ended
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "stopped before its RankEnd" in (err.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.GetResults(ranker_pb2.GetResultsRequest(fingerprint="fp-cut"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    ranked = await stub.Rank(iter(whole))
    assert ranked.fingerprint == "fp-cut" and not ranked.cached


async def test_unknown_scan_is_not_found(stub: ranker_pb2_grpc.RankerStub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.GetResults(ranker_pb2.GetResultsRequest(scan_id="never"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def attach_request(fingerprint: str, *symbols: str, weight: float = 0.05) -> ranker_pb2.AttachExplanationsRequest:
    return ranker_pb2.AttachExplanationsRequest(
        fingerprint=fingerprint, explanations=[explanation(s, weight) for s in symbols]
    )


def explained(result: scan_pb2.ScanResult) -> dict[str, float]:
    """Symbol -> the attached alpha_5d contribution, for the rows of ``result`` that carry one."""
    out = {}
    for row in result.rows:
        if row.explanation:
            (e,) = row.explanation
            assert e.symbol == row.symbol and [m.model for m in e.models] == ["alpha_5d", "alpha_10d"]
            out[row.symbol] = e.models[0].contributions[0].contribution
    return out


async def test_explanations_stay_with_the_scan_for_every_later_page(
    stub: ranker_pb2_grpc.RankerStub, redis: ResilientRedis
) -> None:
    first = await stub.Rank(stream(header(UNIVERSE, "fp-e", limit=10)))
    assert not explained(first) and first.rows[0].ics_tier and first.rows[0].merit_summary
    top = [r.symbol for r in first.rows[:4]]
    reply = await stub.AttachExplanations(attach_request("fp-e", *top[:3], "PENNY0", "NOT-IN-SCAN"))
    assert reply.attached == 3  # a prefiltered symbol and an unknown one are not rows of the scan

    page = await stub.GetResults(ranker_pb2.GetResultsRequest(fingerprint="fp-e", limit=10))
    assert explained(page) == dict.fromkeys(top[:3], 0.05)
    by_rsi = await stub.GetResults(ranker_pb2.GetResultsRequest(scan_id="scan-1", sort_by="rsi_14", limit=10_000))
    assert explained(by_rsi) == dict.fromkeys(top[:3], 0.05) and len(by_rsi.rows) == first.total_rows

    # A later attach adds rows and replaces the explanation of a row explained before.
    reply = await stub.AttachExplanations(attach_request("fp-e", top[2], top[3], weight=0.5))
    assert reply.attached == 2
    expected = {top[0]: 0.05, top[1]: 0.05, top[2]: 0.5, top[3]: 0.5}
    assert explained(await stub.GetResults(ranker_pb2.GetResultsRequest(fingerprint="fp-e", limit=10))) == expected

    # Ranking the same fingerprint again serves the cached scan, explanations included.
    again = await stub.Rank(stream(header(UNIVERSE, "fp-e", scan_id="scan-2", limit=10)))
    assert again.cached and explained(again) == expected
    # Stored beside the scan until the next close, as the scan itself.
    assert 0 < await redis.client.pttl(EXPLAIN_KEY + "fp-e") <= (ttl_until_next_close() + 1) * 1000


async def test_explanations_survive_a_ranker_restart(redis: ResilientRedis) -> None:
    async with serving(ScanCache(redis)) as stub:
        first = await stub.Rank(stream(header(UNIVERSE, "fp-r", limit=5)))
        symbols = [r.symbol for r in first.rows[:2]]
        assert (await stub.AttachExplanations(attach_request("fp-r", *symbols))).attached == 2
    expected = dict.fromkeys(symbols, 0.05)
    # A new process: nothing in memory, the scan and its explanations come from Redis.
    async with serving(ScanCache(redis)) as stub:
        page = await stub.GetResults(ranker_pb2.GetResultsRequest(fingerprint="fp-r", limit=5))
        assert page.cached and explained(page) == expected
    async with serving(ScanCache(redis)) as stub:
        again = await stub.Rank(stream(header(UNIVERSE, "fp-r", scan_id="scan-9", limit=5)))
        assert again.cached and explained(again) == expected
    # Scans pushed out of process memory are read back with their explanations.
    async with serving(ScanCache(redis, max_scans=1)) as stub:
        await stub.Rank(stream(header(UNIVERSE, "fp-other", limit=5)))
        page = await stub.GetResults(ranker_pb2.GetResultsRequest(fingerprint="fp-r", limit=5))
        assert explained(page) == expected


async def test_attach_to_an_unknown_scan(stub: ranker_pb2_grpc.RankerStub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.AttachExplanations(attach_request("fp-never", "S00001"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND and "fp-never" in (err.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.AttachExplanations(attach_request("", "S00001"))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "fingerprint" in (err.value.details() or "")


@pytest.mark.integration
def test_process_serves_rank_and_keeps_explanations_over_a_restart(redis_server: RedisServer, logdir: Path) -> None:
    port = free_port()
    env = {"TECHNIC_RANKER_PORT": str(port), "REDIS_URL": redis_server.url}
    small = synthetic_universe(120, chunk_size=50, seed=5)
    with running_service("services.ranker", port, logdir, env), grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        stub = ranker_pb2_grpc.RankerStub(ch)
        result = stub.Rank(stream(header(small, "fp-proc", prefiltered=0), small), timeout=30)
        assert result.accounting.requested == 120 and result.rows
        assert (
            stub.GetResults(ranker_pb2.GetResultsRequest(scan_id="scan-1", limit=3), timeout=10).rows[0]
            == result.rows[0]
        )
        top = [r.symbol for r in result.rows[:2]]
        assert stub.AttachExplanations(attach_request("fp-proc", *top), timeout=10).attached == 2
    with running_service("services.ranker", port, logdir, env), grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        page = ranker_pb2_grpc.RankerStub(ch).GetResults(ranker_pb2.GetResultsRequest(scan_id="scan-1"), timeout=10)
    assert explained(page) == dict.fromkeys(top, 0.05)
    row = page.rows[0]
    row.ClearField("explanation")
    assert row == result.rows[0]
