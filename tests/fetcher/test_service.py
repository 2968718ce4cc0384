"""The fetcher process end to end: the market simulator process, a real redis-server, gRPC calls."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import numpy as np
import pytest
import redis
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common.codec import decode_block
from services.fetcher.settings import SIMULATOR_API_KEY
from technic.v1 import fetcher_pb2, fetcher_pb2_grpc
from tests.support import (
    RedisServer,
    ServiceProcess,
    free_port,
    running_service,
    start_redis,
    start_service,
    wait_for_port,
)

pytestmark = pytest.mark.integration
TODAY = "2026-11-13"
# The fetcher's clock stands still on the Saturday after the simulator's today (a Friday): the
# calendar's latest session is the simulator's, whatever the machine's date.
NOW = "2026-11-14T12:00:00Z"
LOOKBACK = 250
# Requests a cold fetcher makes besides the window's sessions: the probe of the session after its
# latest (the latest itself comes with its own probe), and the split table.
OVERHEAD = 2


@dataclass
class Simulator:
    port: int
    process: ServiceProcess

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, headers={"Authorization": f"Bearer {SIMULATOR_API_KEY}"})

    def faults(self, **knobs: float) -> None:
        with self.http() as http:
            http.post("/admin/faults", json=knobs).raise_for_status()

    def clear_faults(self) -> None:
        self.faults(
            latency_ms=0, rate_429=0, rate_5xx=0, rate_malformed=0, rate_truncated=0, auth_fail=0, results_null=0
        )

    def requests(self) -> int:
        """Polygon requests the simulator has answered so far."""
        with self.http() as http:
            return int(http.get("/admin/stats").json()["total"])

    def get(self, path: str, **params: object) -> dict:
        with self.http() as http:
            return http.get(path, params=params).raise_for_status().json()


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulator]:
    port = free_port()
    workdir = tmp_path_factory.mktemp("marketsim")
    proc = start_service(
        "services.marketsim",
        port,
        workdir / "logs",
        {
            "TECHNIC_MARKETSIM_PORT": str(port),
            "TECHNIC_MARKETSIM_N_TICKERS": "600",
            "TECHNIC_MARKETSIM_HISTORY_SESSIONS": "400",
            "TECHNIC_MARKETSIM_TODAY": TODAY,
            "TECHNIC_MARKETSIM_CACHE_DIR": str(workdir / "cache"),
        },
    )
    try:
        wait_for_port(port, timeout=180)
        yield Simulator(port, proc)
    finally:
        proc.terminate()


def grouped_today(sim: Simulator) -> list[dict]:
    """The simulator's raw grouped daily for today, OTC names included (as the fetcher asks)."""
    return sim.get(f"/v2/aggs/grouped/locale/us/market/stocks/{TODAY}", adjusted="false", include_otc="true")["results"]


@pytest.fixture(scope="module")
def tickers(sim: Simulator) -> list[str]:
    """Tickers that traded on the simulator's today, most traded first."""
    rows = grouped_today(sim)
    rows.sort(key=lambda r: -r["c"] * r["v"])
    return list(dict.fromkeys(r["T"] for r in rows))


@pytest.fixture
def clean(sim: Simulator, redis_server: RedisServer) -> Iterator[Simulator]:
    redis.Redis.from_url(redis_server.url).flushdb()
    sim.clear_faults()
    yield sim
    sim.clear_faults()


def fetcher_env(sim: Simulator, redis_url: str, port: int, **extra: str) -> dict[str, str]:
    return {
        "TECHNIC_FETCHER_PORT": str(port),
        "POLYGON_BASE_URL": sim.url,
        "REDIS_URL": redis_url,
        "TECHNIC_FETCHER_BACKOFF_BASE": "0.02",
        "TECHNIC_FETCHER_BACKOFF_MAX": "0.2",
        "TECHNIC_FETCHER_LATEST_TTL": "60",
        "TECHNIC_FETCHER_NOW": NOW,
        **extra,
    }


@contextmanager
def fetcher(sim: Simulator, redis_url: str, logdir: Path, **extra: str) -> Iterator[fetcher_pb2_grpc.FetcherStub]:
    port = free_port()
    with (
        running_service("services.fetcher", port, logdir, fetcher_env(sim, redis_url, port, **extra)) as proc,
        grpc.insecure_channel(f"127.0.0.1:{port}") as channel,
    ):
        stub = fetcher_pb2_grpc.FetcherStub(channel)
        stub.process = proc  # type: ignore[attr-defined]
        stub.channel = channel  # type: ignore[attr-defined]
        yield stub


def prefetch(
    stub: fetcher_pb2_grpc.FetcherStub,
    symbols: list[str],
    lookback: int = LOOKBACK,
    as_of: str = "",
    chunk_size: int = 0,
) -> tuple[list[fetcher_pb2.PrefetchResponse], fetcher_pb2.PrefetchResponse]:
    def requests() -> Iterator[fetcher_pb2.PrefetchRequest]:
        yield fetcher_pb2.PrefetchRequest(
            header=fetcher_pb2.PrefetchHeader(scan_id="test", lookback=lookback, as_of=as_of, chunk_size=chunk_size)
        )
        for lo in range(0, len(symbols), 100):
            yield fetcher_pb2.PrefetchRequest(batch=fetcher_pb2.SymbolBatch(symbols=symbols[lo : lo + 100]))

    replies = list(stub.Prefetch(requests(), timeout=120))
    assert replies[-1].done and all(not r.done for r in replies[:-1])
    return replies[:-1], replies[-1]


def panel(chunks: list[fetcher_pb2.PrefetchResponse], redis_url: str) -> tuple[list[str], np.ndarray, dict]:
    """The whole panel of a Prefetch, read back from Redis (or inline) as compute would."""
    client = redis.Redis.from_url(redis_url)
    symbols, arrays, meta = [], [], {}
    for reply in chunks:
        ref = reply.chunk
        block = decode_block(ref.inline_block if ref.inline_block else client.get(ref.key))
        assert list(block.rows) == list(ref.symbols)
        assert block.fields == ("open", "high", "low", "close", "volume") == tuple(ref.fields)
        assert block.array.dtype == np.float32 and block.array.shape == (len(ref.symbols), ref.n_sessions, 5)
        assert block.meta["chunk_index"] == ref.chunk_index and block.meta["as_of"] == ref.as_of
        symbols += block.rows
        arrays.append(block.array)
        meta = dict(block.meta)
    return symbols, np.concatenate(arrays), meta


def adjusted_history(sim: Simulator, ticker: str, start: str, end: str) -> dict[str, list[float]]:
    body = sim.get(f"/v2/aggs/ticker/{ticker}/range/1/day/{start}/{end}", adjusted="true", sort="asc", limit=50000)
    rows = body.get("results") or []
    days = [
        str((np.int64(r["t"]) - 4 * 3_600_000) // 86_400_000 * np.timedelta64(1, "D") + np.datetime64(0, "D"))
        for r in rows
    ]
    return {d: [r["o"], r["h"], r["l"], r["c"], r["v"]] for d, r in zip(days, rows, strict=True)}


def assert_matches_adjusted(sim: Simulator, symbols: list[str], block: np.ndarray, sessions: list[str]) -> None:
    for row, ticker in enumerate(symbols):
        expected = adjusted_history(sim, ticker, sessions[0], sessions[-1])
        got = {d: block[row, j] for j, d in enumerate(sessions) if np.isfinite(block[row, j, 3])}
        assert set(got) == set(expected), ticker
        for day, values in expected.items():
            np.testing.assert_allclose(got[day], values, rtol=2e-6, err_msg=f"{ticker} {day}")


def split_tickers(sim: Simulator, start: str, limit: int) -> list[str]:
    body = sim.get("/v3/reference/splits", **{"execution_date.gte": start, "execution_date.lte": TODAY, "limit": 1000})
    names = list(dict.fromkeys(s["ticker"] for s in body["results"] if s["execution_date"] > start))
    assert names, "the simulated market has no split in the window"
    return names[:limit]


def test_cold_then_warm_prefetch(clean: Simulator, tickers: list[str], redis_server: RedisServer, logdir: Path) -> None:
    symbols = [*tickers[:300], "NOPE1", tickers[0]]
    with fetcher(clean, redis_server.url, logdir) as stub:
        before = clean.requests()
        chunks, final = prefetch(stub, symbols, chunk_size=128)
        cold = clean.requests() - before
        assert final.as_of == TODAY and not final.failed_sessions and not final.degraded
        # One grouped daily per session, the probe after the latest session, the split table.
        assert cold == LOOKBACK + OVERHEAD
        assert final.stats.counters["requests"] == cold

        names, block, meta = panel(chunks, redis_server.url)
        assert names == [*tickers[:300], "NOPE1"]
        assert [r.chunk.chunk_index for r in chunks] == [0, 1, 2]
        assert meta["as_of"] == TODAY and meta["lookback"] == LOOKBACK and len(meta["sessions"]) == LOOKBACK
        assert meta["sessions"][-1] == TODAY
        assert [s for r in chunks for s in r.no_data] == ["NOPE1"]
        today = {r["T"]: r for r in grouped_today(clean)}
        np.testing.assert_allclose(block[:300, -1, 3], [today[t]["c"] for t in tickers[:300]], rtol=1e-6)
        # Every session of the cold window (stacked as it downloaded) equals the adjusted history.
        sample = list(range(0, 300, 15))
        assert_matches_adjusted(clean, [names[i] for i in sample], block[sample], meta["sessions"])

        before = clean.requests()
        warm_chunks, warm_final = prefetch(stub, symbols, chunk_size=128)
        assert clean.requests() == before
        assert warm_final.stats.counters["requests"] == 0 and warm_final.stats.counters["cache_hits"] >= LOOKBACK
        np.testing.assert_array_equal(panel(warm_chunks, redis_server.url)[1], block)
        # Same content, same digest and key: the warm request hands out the chunks already stored.
        digests = [r.chunk.content_digest for r in chunks]
        assert len(set(digests)) == 3 and all(len(d) == 32 for d in digests)
        assert all(r.chunk.content_digest in r.chunk.key for r in chunks)
        assert [r.chunk.content_digest for r in warm_chunks] == digests
        assert [r.chunk.key for r in warm_chunks] == [r.chunk.key for r in chunks]
        assert warm_final.stats.counters["chunks_reused"] == 3
        # Another symbol set in the first chunk: another digest there, the others unchanged.
        other, _ = prefetch(stub, [tickers[300], *symbols[1:-1]], chunk_size=128)
        assert [r.chunk.content_digest == d for r, d in zip(other, digests, strict=True)] == [False, True, True]

        # Split adjustment equals the simulator's adjusted endpoint (built here from raw sessions).
        splitters = split_tickers(clean, meta["sessions"][0], 6)
        chunks, final = prefetch(stub, splitters)
        assert final.stats.counters["requests"] <= 1  # the split table, if anything
        names, block, meta = panel(chunks, redis_server.url)
        assert_matches_adjusted(clean, names, block, meta["sessions"])


def test_concurrent_requests_share_each_session_download(
    clean: Simulator, tickers: list[str], redis_server: RedisServer, logdir: Path
) -> None:
    with fetcher(clean, redis_server.url, logdir) as stub:
        before = clean.requests()
        answers: list[tuple[list[fetcher_pb2.PrefetchResponse], fetcher_pb2.PrefetchResponse]] = []
        threads = [
            threading.Thread(target=lambda part=part: answers.append(prefetch(stub, part)))
            for part in (tickers[:300], tickers[300:600])
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(answers) == 2 and all(final.as_of == TODAY and not final.failed_sessions for _, final in answers)
        # Both windows are cold at once: each session is downloaded once and handed to both requests.
        assert clean.requests() - before == LOOKBACK + OVERHEAD
        for chunks, _ in answers:
            names, block, meta = panel(chunks, redis_server.url)
            sample = list(range(0, 300, 60))
            assert_matches_adjusted(clean, [names[i] for i in sample], block[sample], meta["sessions"])


def test_watchlist_goes_per_ticker_and_matches_adjusted(
    clean: Simulator, redis_server: RedisServer, logdir: Path
) -> None:
    with fetcher(clean, redis_server.url, logdir) as stub:
        splitters = split_tickers(clean, "2025-11-01", 12)
        watchlist = [*splitters, "NOPE2"]
        before = clean.requests()
        chunks, _ = prefetch(stub, watchlist)
        cost = clean.requests() - before
        # A request per symbol, the latest session's probe, the next one's and the split table: not one
        # per session.
        assert cost == len(watchlist) + 1 + OVERHEAD
        names, block, meta = panel(chunks, redis_server.url)
        assert chunks[0].no_data == ["NOPE2"]
        assert_matches_adjusted(clean, names[:-1], block[:-1], meta["sessions"])
        before = clean.requests()
        prefetch(stub, watchlist)
        assert clean.requests() == before


def test_the_window_moved_on_by_a_session_asks_nothing_again(
    clean: Simulator, tickers: list[str], redis_server: RedisServer, logdir: Path
) -> None:
    redis.Redis.from_url(redis_server.url).flushdb()
    with fetcher(clean, redis_server.url, logdir) as stub:
        _, before = prefetch(stub, tickers[:50], lookback=40, as_of="2026-11-12")
        assert before.as_of == "2026-11-12" and before.stats.counters["requests"] > 40
        # Today's session came with the latest-session probe, and the split table was asked ahead.
        chunks, moved = prefetch(stub, tickers[:50], lookback=40)
        assert moved.as_of == TODAY and moved.stats.counters["requests"] == 0
        _, block, meta = panel(chunks, redis_server.url)
        assert meta["sessions"][-1] == TODAY and np.isfinite(block[:, -1, 3]).all()


@pytest.mark.parametrize(
    "knobs",
    [
        {"rate_429": 0.4, "retry_after": 0},
        {"rate_429": 0.3, "retry_after": 0.05},
        {"rate_5xx": 0.3, "rate_malformed": 0.1, "rate_truncated": 0.1},
    ],
    ids=["429-no-retry-after", "429-retry-after", "5xx-malformed-truncated"],
)
def test_fault_storms_recover(
    clean: Simulator, tickers: list[str], redis_server: RedisServer, logdir: Path, knobs: dict[str, float]
) -> None:
    with fetcher(clean, redis_server.url, logdir, TECHNIC_FETCHER_MAX_RETRIES="10") as stub:
        clean.faults(**knobs)
        chunks, final = prefetch(stub, tickers[:200], lookback=60)
        assert not final.failed_sessions and final.as_of == TODAY
        assert final.stats.counters["retries"] > 0
        clean.clear_faults()
        names, block, _ = panel(chunks, redis_server.url)
        today = {r["T"]: r["c"] for r in grouped_today(clean)}
        np.testing.assert_allclose(block[:, -1, 3], [today[t] for t in names], rtol=1e-6)
        assert np.isfinite(block[:, :, 3]).mean() > 0.9


def test_failed_sessions_are_named_and_fetched_again(
    clean: Simulator, tickers: list[str], redis_server: RedisServer, logdir: Path
) -> None:
    with fetcher(clean, redis_server.url, logdir, TECHNIC_FETCHER_MAX_RETRIES="1") as stub:
        # Today and the split table of this window cached (one symbol goes per ticker).
        prefetch(stub, tickers[:1], lookback=40)
        clean.faults(rate_5xx=0.6)
        failed_chunks, final = prefetch(stub, tickers[:50], lookback=40)
        clean.clear_faults()
        assert final.failed_sessions, "a 60% error rate with one retry should fail some sessions"
        chunks, again = prefetch(stub, tickers[:50], lookback=40)
        assert not again.failed_sessions
        assert again.stats.counters["requests"] >= len(final.failed_sessions)
        _, block, meta = panel(chunks, redis_server.url)
        for day in final.failed_sessions:
            assert np.isfinite(block[:, meta["sessions"].index(day), 3]).any()
        # The chunk built with sessions missing had another digest (and key) than the complete one.
        assert chunks[0].chunk.content_digest != failed_chunks[0].chunk.content_digest
        assert chunks[0].chunk.key != failed_chunks[0].chunk.key


def test_unauthorized_is_immediate_and_clear(
    clean: Simulator, tickers: list[str], redis_server: RedisServer, logdir: Path
) -> None:
    with fetcher(clean, redis_server.url, logdir, POLYGON_API_KEY="wrong-key-4242") as stub:
        before = clean.requests()
        with pytest.raises(grpc.RpcError) as info:
            prefetch(stub, tickers[:20])
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "API key" in info.value.details() and "401" in info.value.details()
        assert clean.requests() - before <= 2
        assert "wrong-key-4242" not in stub.process.log()  # type: ignore[attr-defined]


def test_redis_killed_mid_request_completes_degraded(
    clean: Simulator, tickers: list[str], tmp_path: Path, logdir: Path
) -> None:
    own = start_redis(tmp_path / "redis")
    try:
        with fetcher(clean, own.url, logdir) as stub:
            clean.faults(latency_ms=30)
            outcome: dict[str, object] = {}
            start = clean.requests()

            def run() -> None:
                outcome["replies"] = prefetch(stub, tickers[:200], lookback=200)

            worker = threading.Thread(target=run)
            worker.start()
            while clean.requests() - start < 40 and worker.is_alive():
                threading.Event().wait(0.02)
            own.process.kill()
            own.process.wait(10)
            worker.join(120)
            chunks, final = outcome["replies"]  # type: ignore[misc]
            assert final.degraded and not final.failed_sessions
            assert all(r.chunk.inline_block and not r.chunk.key for r in chunks)
            names, block, _ = panel(chunks, own.url)
            assert len(names) == 200 and np.isfinite(block[:, -1, 3]).all()
            health = health_pb2_grpc.HealthStub(stub.channel)  # type: ignore[attr-defined]
            assert (
                health.Check(health_pb2.HealthCheckRequest(service="technic.redis")).status
                == health_pb2.HealthCheckResponse.NOT_SERVING
            )
            assert (
                health.Check(health_pb2.HealthCheckRequest(service="")).status == health_pb2.HealthCheckResponse.SERVING
            )
            # Still serving from process memory: a second request costs no Polygon request.
            before = clean.requests()
            _, again = prefetch(stub, tickers[:200], lookback=200)
            assert again.degraded and clean.requests() == before
    finally:
        own.stop()


def test_snapshot_bars_universe_and_bad_input(
    clean: Simulator, tickers: list[str], redis_server: RedisServer, logdir: Path
) -> None:
    with fetcher(clean, redis_server.url, logdir) as stub:
        snap = stub.GetSnapshot(fetcher_pb2.GetSnapshotRequest(), timeout=60)
        block = decode_block(snap.block)
        assert snap.as_of == TODAY and not snap.failed_sessions
        assert block.fields[:5] == ("open", "high", "low", "close", "volume")
        assert set(tickers) == set(block.rows)
        row = block.rows.index(tickers[0])
        assert block.column("sessions")[row] == 20 and block.column("avg_dollar_volume")[row] > 0
        assert snap.stats.counters["requests"] >= 21

        symbol = split_tickers(clean, "2026-06-01", 1)[0]
        bars = stub.GetBars(fetcher_pb2.GetBarsRequest(symbol=symbol, days=120), timeout=60)
        history = decode_block(bars.block)
        assert bars.as_of == TODAY and history.array.shape == (120, 5) and history.rows[-1] == TODAY
        assert_matches_adjusted(clean, [symbol], history.array[None], list(history.rows))
        with pytest.raises(grpc.RpcError) as info:
            stub.GetBars(fetcher_pb2.GetBarsRequest(symbol="NOPE3", days=10), timeout=60)
        assert info.value.code() == grpc.StatusCode.NOT_FOUND

        whole = stub.GetUniverse(fetcher_pb2.GetUniverseRequest(), timeout=60)
        assert len(whole.symbols) >= 500 and all(c == 0 for c in whole.sic_codes)
        stock = next(s for s, t in zip(whole.symbols, whole.types, strict=True) if t == "CS")
        before = clean.requests()
        universe = stub.GetUniverse(
            fetcher_pb2.GetUniverseRequest(symbols=[stock, "NOPE4"], with_details=True), timeout=60
        )
        assert clean.requests() - before == 1 and universe.stats.counters["requests"] == 1
        assert list(universe.symbols) == [stock] and list(universe.not_found) == ["NOPE4"]
        assert universe.sic_codes[0] > 0 and universe.sectors[0] != "Unknown" and universe.market_caps[0] > 0
        again = stub.GetUniverse(fetcher_pb2.GetUniverseRequest(symbols=[stock], with_details=True), timeout=60)
        assert again.stats.counters["requests"] == 0 and again.sic_codes[0] == universe.sic_codes[0]

        bad = [
            lambda: prefetch(stub, []),
            lambda: prefetch(stub, ["AAA"], lookback=5000),
            lambda: prefetch(stub, ["X"] * 20_001),
            lambda: prefetch(stub, ["AAA"], as_of="2026-13-45"),
            lambda: prefetch(stub, ["AAA"], as_of="2027-01-04"),
            lambda: stub.GetBars(fetcher_pb2.GetBarsRequest(symbol=""), timeout=10),
            lambda: stub.GetSnapshot(fetcher_pb2.GetSnapshotRequest(window=-3), timeout=10),
        ]
        for call in bad:
            with pytest.raises(grpc.RpcError) as info:
                call()
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, info.value.details()
            assert info.value.details()
