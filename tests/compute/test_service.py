"""A compute replica as a real process with a real redis-server: Score, Explain, Describe, error codes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
import redis

from services.common.codec import decode_block, encode_block
from services.compute.features import FEATURES, LEVEL_FIELDS, PANEL_FIELDS, SPARKLINE_LENGTH
from services.marketsim.market import Market
from technic.v1 import common_pb2, compute_pb2, compute_pb2_grpc
from tests.compute.conftest import panel_of
from tests.support import RedisServer, ServiceProcess, free_port, running_service

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def replica(
    redis_server: RedisServer, trained: tuple[Path, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServiceProcess, compute_pb2_grpc.ComputeStub]]:
    port = free_port()
    env = {"TECHNIC_COMPUTE_PORT": str(port), "REDIS_URL": redis_server.url, "TECHNIC_MODEL_DIR": str(trained[0])}
    with running_service("services.compute", port, tmp_path_factory.mktemp("logs"), env, timeout=240) as proc:
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        yield proc, compute_pb2_grpc.ComputeStub(channel)
        channel.close()


def put(redis_server: RedisServer, key: str, value: bytes) -> None:
    client = redis.Redis.from_url(redis_server.url)
    client.set(key, value)
    client.close()


def test_score_and_explain_a_chunk(
    replica: tuple[ServiceProcess, Any], redis_server: RedisServer, small_market: Market
) -> None:
    proc, stub = replica
    tickers = np.arange(40)
    panel = panel_of(small_market, tickers)
    panel[0] = np.nan  # no data at all
    panel[1, :-20] = np.nan  # too little history
    symbols = [str(s) for s in small_market.tickers[tickers]]
    key = "technic:test:panel:0"
    put(
        redis_server,
        key,
        encode_block(
            panel, rows=symbols, fields=PANEL_FIELDS, meta={"as_of": "2026-11-13", "lookback": 260, "chunk_index": 0}
        ),
    )
    reply = stub.Score(
        compute_pb2.ScoreRequest(
            scan_id="t",
            chunk=common_pb2.ChunkRef(key=key, chunk_index=0, symbols=symbols, n_sessions=260, fields=PANEL_FIELDS),
        ),
        timeout=60,
    )
    assert list(reply.symbols) == symbols
    states = list(reply.states)
    assert states[0] == common_pb2.SYMBOL_STATE_NO_DATA
    assert states[1] == common_pb2.SYMBOL_STATE_INSUFFICIENT_HISTORY
    ok = np.array(states) == common_pb2.SYMBOL_STATE_OK
    assert ok.sum() >= 30
    feats, scores = decode_block(reply.features), decode_block(reply.scores)
    assert feats.array.shape == (40, len(FEATURES)) and feats.fields == FEATURES
    assert scores.fields == ("alpha_5d", "alpha_10d") and np.isfinite(scores.array[ok]).all()
    assert decode_block(reply.levels).fields == LEVEL_FIELDS
    assert decode_block(reply.sparklines).array.shape == (40, SPARKLINE_LENGTH)
    assert set(reply.model_versions) == {"alpha_5d", "alpha_10d"} and reply.feature_version
    assert reply.replica.endswith(f":{proc.port}") and "features" in reply.stats.seconds

    rows = np.flatnonzero(ok)[:5]
    block = encode_block(feats.array[rows], rows=[symbols[i] for i in rows], fields=FEATURES)
    explained = stub.Explain(compute_pb2.ExplainRequest(scan_id="t", features=block, top_k=3), timeout=60)
    assert [s.symbol for s in explained.symbols] == [symbols[i] for i in rows]
    for k, sym in enumerate(explained.symbols):
        assert [m.model for m in sym.models] == ["alpha_5d", "alpha_10d"]
        for m, model in enumerate(sym.models):
            assert len(model.contributions) == 3 and model.contributions[0].label
            assert model.prediction == pytest.approx(float(scores.array[rows[k], m]), abs=1e-4)


def test_inline_block_is_scored_without_redis(replica: tuple[ServiceProcess, Any], small_market: Market) -> None:
    _, stub = replica
    panel = panel_of(small_market, np.arange(3))
    block = encode_block(panel, rows=["A", "B", "C"], fields=PANEL_FIELDS)
    reply = stub.Score(
        compute_pb2.ScoreRequest(chunk=common_pb2.ChunkRef(inline_block=block, chunk_index=7)), timeout=60
    )
    assert reply.chunk_index == 7 and list(reply.symbols) == ["A", "B", "C"]


def test_describe_reports_the_models_the_replica_loaded(
    replica: tuple[ServiceProcess, Any], trained: tuple[Path, dict[str, dict[str, Any]]]
) -> None:
    proc, stub = replica
    reply = stub.Describe(compute_pb2.DescribeRequest(), timeout=30)
    metas = trained[1]
    assert dict(reply.model_versions) == {name: meta["version"] for name, meta in metas.items()}
    assert tuple(reply.feature_fields) == FEATURES and tuple(reply.level_fields) == LEVEL_FIELDS
    assert reply.sparkline_length == SPARKLINE_LENGTH and reply.replica.endswith(f":{proc.port}")
    window = metas["alpha_10d"]["training_window"]
    assert {m.trained_on for m in reply.models} == {f"simulator seed 7, {window['start']}..{window['end']}"}
    assert reply.models[1].metrics["rank_ic"] == pytest.approx(metas["alpha_10d"]["metrics"]["rank_ic"])
    assert list(reply.win_prob.edges) == pytest.approx(metas["alpha_10d"]["win_prob"]["edges"])
    assert reply.win_prob.model == "alpha_10d" and reply.win_prob.version == metas["alpha_10d"]["version"]


def test_bad_chunks_get_clear_status_codes(replica: tuple[ServiceProcess, Any], redis_server: RedisServer) -> None:
    proc, stub = replica
    wrong = encode_block(np.zeros((2, 10, 4), dtype=np.float32), rows=["A", "B"])
    put(redis_server, "technic:test:wrong", wrong)
    cases = [
        (common_pb2.ChunkRef(key="technic:test:wrong"), grpc.StatusCode.INVALID_ARGUMENT, "shape"),
        (common_pb2.ChunkRef(key="technic:test:absent"), grpc.StatusCode.NOT_FOUND, "technic:test:absent"),
        (common_pb2.ChunkRef(inline_block=b"garbage"), grpc.StatusCode.INVALID_ARGUMENT, "not a valid block"),
        (common_pb2.ChunkRef(), grpc.StatusCode.INVALID_ARGUMENT, "neither"),
    ]
    for chunk, code, text in cases:
        with pytest.raises(grpc.RpcError) as err:
            stub.Score(compute_pb2.ScoreRequest(chunk=chunk), timeout=30)
        assert err.value.code() == code and text in err.value.details()
    with pytest.raises(grpc.RpcError) as err:
        stub.Explain(
            compute_pb2.ExplainRequest(
                features=encode_block(np.zeros((1, 2), np.float32), rows=["A"], fields=["x", "y"])
            ),
            timeout=30,
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "lacks" in err.value.details()
    assert proc.process.poll() is None


def test_a_chunk_with_a_content_digest_is_scored_once(
    replica: tuple[ServiceProcess, Any], redis_server: RedisServer, small_market: Market
) -> None:
    _, stub = replica
    panel = panel_of(small_market, np.arange(20))
    symbols = [str(s) for s in small_market.tickers[:20]]
    key, digest = "technic:test:panel:digested", "test-digest-20"
    put(redis_server, key, encode_block(panel, rows=symbols, fields=PANEL_FIELDS))
    ref = common_pb2.ChunkRef(key=key, chunk_index=3, symbols=symbols, content_digest=digest)
    first = stub.Score(compute_pb2.ScoreRequest(chunk=ref), timeout=60)
    assert "cache_hits" not in first.stats.counters and "features" in first.stats.seconds

    client = redis.Redis.from_url(redis_server.url)
    client.delete(key)  # only the cache can answer now
    cached_keys = [k.decode() for k in client.scan_iter("technic:scored:*")]
    client.close()
    assert any(k.endswith(f":{digest}") for k in cached_keys)
    ref.chunk_index = 5
    second = stub.Score(compute_pb2.ScoreRequest(chunk=ref), timeout=60)
    assert second.stats.counters["cache_hits"] == 1 and second.chunk_index == 5 and second.replica
    for field in ("symbols", "states", "features", "scores", "levels", "sparklines", "model_versions"):
        assert getattr(second, field) == getattr(first, field), field

    # Without a digest nothing is cached: the chunk must be read, and it is gone.
    with pytest.raises(grpc.RpcError) as err:
        stub.Score(compute_pb2.ScoreRequest(chunk=common_pb2.ChunkRef(key=key, symbols=symbols)), timeout=30)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
