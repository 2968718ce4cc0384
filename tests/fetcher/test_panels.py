"""Panel assembly on synthetic raw sessions: gather, session stack, per-ticker overlay, split adjustment, digest."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import numpy as np
import redis

from services.common.codec import decode_block
from services.common.redis_client import ResilientRedis
from services.fetcher.calendar import LatestSession, TradingCalendar, as_day
from services.fetcher.panels import (
    Gatherer,
    PanelBuilder,
    PanelChunk,
    PanelReport,
    RequestStats,
    adjust,
    chunk_digest,
    overlay,
    split_factors,
    unique,
)
from services.fetcher.polygon import GroupedDay, PolygonClient, SplitTable, TickerRange
from services.fetcher.stack import SessionStack
from services.fetcher.store import BarStore, SessionData
from services.fetcher.tickers import TickerIndex
from tests.support import RedisServer

DAYS = np.array(["2026-11-09", "2026-11-10", "2026-11-11", "2026-11-12", "2026-11-13"], dtype="datetime64[D]")


def session(index: TickerIndex, day: np.datetime64, tickers: list[str], base: float) -> SessionData:
    values = np.array([[base + i, base + i + 1, base + i - 1, base + i + 0.5, 1000.0 * (i + 1), base + i]
                       for i in range(len(tickers))], dtype=np.float32)
    padded = np.vstack([values, np.full((1, 6), np.nan, np.float32)])
    return SessionData(day=day, ids=index.ids(tickers), padded=padded)


def test_gather_maps_rows_by_ticker_and_leaves_nan_for_absent() -> None:
    index = TickerIndex()
    sessions = [session(index, DAYS[0], ["AAA", "BBB"], 10), None,
                session(index, DAYS[2], ["CCC", "BBB", "AAA"], 20)]
    symbols = ["AAA", "ZZZ", "CCC", "BBB"]
    gatherer = Gatherer(sessions, index.ids(symbols, add=False))
    block = gatherer.chunk(0, 4)
    assert block.shape == (4, 3, 5) and block.dtype == np.float32 and block.flags.c_contiguous
    np.testing.assert_array_equal(block[0, 0], [10, 11, 9, 10.5, 1000])
    np.testing.assert_array_equal(block[0, 2], [22, 23, 21, 22.5, 3000])
    assert np.isnan(block[1]).all()  # unknown ticker
    assert np.isnan(block[:, 1]).all()  # missing session
    assert np.isnan(block[2, 0]).all() and block[2, 2, 3] == 20.5
    # A slice gives the same rows as the whole.
    np.testing.assert_array_equal(gatherer.chunk(2, 4), block[2:4])


def test_rows_survive_a_growing_index() -> None:
    index = TickerIndex()
    first = session(index, DAYS[0], ["AAA"], 1)
    first.rows(index.ids(["AAA"]))
    index.ids([f"N{i}" for i in range(100)])
    rows = first.rows(index.ids(["N99", "AAA"], add=False))
    assert list(rows) == [1, 0]
    assert first.rows(np.array([-1, 0]))[0] == 1  # -1: the NaN row


def test_split_factors_divide_prices_before_each_split() -> None:
    table = SplitTable(tickers=["AAA", "BBB", "AAA", "CCC", "BBB"],
                       dates=np.array(["2026-11-11", "2026-11-13", "2026-11-13", "2026-11-12", "2026-12-01"],
                                      dtype="datetime64[D]"),
                       split_from=np.array([1.0, 10.0, 1.0, 1.0, 1.0]),
                       split_to=np.array([4.0, 1.0, 2.0, 3.0, 5.0]))
    symbols = ["BBB", "AAA", "DDD"]
    rows, factors = split_factors(table, symbols, DAYS)
    assert list(rows) == [0, 1]
    # BBB: 1-for-10 reverse split on the 13th (the one in December is after the window).
    np.testing.assert_allclose(factors[0], [0.1, 0.1, 0.1, 0.1, 1.0])
    # AAA: 4-for-1 on the 11th, then 2-for-1 on the 13th.
    np.testing.assert_allclose(factors[1], [8, 8, 2, 2, 1])
    block = np.ones((3, 5, 5), dtype=np.float32) * 100
    adjust(block, rows, factors)
    np.testing.assert_allclose(block[1, :, 3], [12.5, 12.5, 50, 50, 100])
    np.testing.assert_allclose(block[1, :, 4], [800, 800, 200, 200, 100])
    np.testing.assert_allclose(block[0, :, 0], [1000, 1000, 1000, 1000, 100])
    np.testing.assert_array_equal(block[2], 100)


def test_split_on_the_first_session_changes_nothing() -> None:
    table = SplitTable(["AAA"], np.array(["2026-11-09"], dtype="datetime64[D]"), np.array([1.0]), np.array([4.0]))
    rows, factors = split_factors(table, ["AAA"], DAYS)
    assert len(rows) == 0 and factors.shape == (0, 5)


def test_overlay_places_bars_by_day() -> None:
    block = np.full((2, 5, 5), np.nan, dtype=np.float32)
    rng = TickerRange("BBB", np.array(["2026-11-06", "2026-11-10", "2026-11-13"], dtype="datetime64[D]"),
                      np.arange(18, dtype=np.float64).reshape(3, 6))
    overlay(block, DAYS, [(1, rng)])
    np.testing.assert_array_equal(block[1, 1], [6, 7, 8, 9, 10])
    np.testing.assert_array_equal(block[1, 4], [12, 13, 14, 15, 16])
    assert np.isnan(block[0]).all() and np.isnan(block[1, [0, 2, 3]]).all()


def test_unique_keeps_order_and_normalises() -> None:
    assert unique(["aaa", "BBB", " AAA ", "", "ccc", "BBB"]) == ["AAA", "BBB", "CCC"]
    assert as_day("2026-11-13") == DAYS[-1]


def test_stack_takes_the_same_chunks_as_the_gatherer_and_follows_new_sessions() -> None:
    index = TickerIndex()
    sessions: list[SessionData | None] = [
        session(index, DAYS[0], ["AAA", "BBB"], 10), None, session(index, DAYS[2], ["CCC", "BBB", "AAA"], 20),
        session(index, DAYS[3], ["BBB"], 30), session(index, DAYS[4], ["AAA", "CCC"], 40)]
    symbols = ["CCC", "ZZZ", "AAA", "BBB"]
    ids = index.ids(symbols, add=False)
    stack = SessionStack(max_slots=4)
    # Calendar positions 100..102, then the window moves on by two sessions.
    assert stack.load(100, sessions[:3], len(index))
    np.testing.assert_array_equal(stack.take(ids, 100, 3), Gatherer(sessions[:3], ids).chunk(0, 4))
    assert stack.load(102, sessions[2:], len(index))
    np.testing.assert_array_equal(stack.take(ids[1:3], 102, 3), Gatherer(sessions[2:], ids).chunk(1, 3))
    # A session fetched again (a new object) replaces its slot; one that failed since is NaN again.
    again = session(index, DAYS[3], ["BBB", "CCC"], 50)
    assert stack.load(102, [None, again, sessions[4]], len(index))
    block = stack.take(ids, 102, 3)
    assert np.isnan(block[:, 0]).all()
    assert block[0, 1, 3] == 51.5 and block[3, 1, 3] == 50.5 and block[2, 2, 3] == 40.5
    # Tickers first seen after the stack was built get rows too.
    late = session(index, DAYS[4], ["NEW", "AAA"], 60)
    assert stack.load(102, [None, again, late], len(index))
    assert stack.take(index.ids(["NEW"], add=False), 102, 3)[0, 2, 3] == 60.5
    # Many new listings: the stack grows its rows and keeps what it held.
    crowd = session(index, DAYS[4], [f"X{i}" for i in range(700)], 70)
    assert stack.load(102, [None, again, crowd], len(index))
    block = stack.take(index.ids(["CCC", "X699"], add=False), 102, 3)
    assert block[0, 1, 3] == 51.5 and block[1, 2, 3] == 769.5
    # A window far from the span moves it; a window longer than the stack holds is left to the gatherer.
    assert stack.holds(102, [None, again, crowd]) and not stack.holds(102, [None, again, late])
    assert stack.load(900, sessions[:3], len(index))
    assert stack.holds(900, sessions[:3]) and not stack.holds(102, [None, again, crowd])
    np.testing.assert_array_equal(stack.take(ids, 900, 3), Gatherer(sessions[:3], ids).chunk(0, 4))
    assert not stack.load(100, sessions, len(index))


def test_chunk_digest_changes_with_what_defines_the_chunk() -> None:
    present = np.array([True, True, False, True])
    rows, factors = np.array([1]), np.array([[2.0, 2.0, 1.0, 1.0]])
    none = np.zeros(0, np.int64)

    def digest(**changes: object) -> str:
        args: dict = {"as_of": "2026-11-13", "lookback": 4, "symbols": ["AAA", "BBB"], "present": present,
                      "volatile": [], "split_rows": rows, "factors": factors, "ranged": none}
        return chunk_digest(**{**args, **changes})

    base = digest()
    assert digest() == base and len(base) == 32
    assert digest(present=present.copy()) == base
    others = [digest(symbols=["AAA", "CCC"]), digest(symbols=["BBB", "AAA"]), digest(present=np.ones(4, bool)),
              digest(factors=np.array([[4.0, 4.0, 1.0, 1.0]])), digest(split_rows=none, factors=np.ones((0, 4))),
              digest(as_of="2026-11-12"), digest(lookback=5), digest(volatile=[b"bars"]),
              digest(ranged=np.array([0]))]
    assert len({base, *others}) == len(others) + 1


async def test_interleaved_requests_for_windows_the_stack_cannot_share(redis_server: RedisServer) -> None:
    """Two panel streams, far apart in time, advanced in turn: each moves the stack at its awaits."""
    redis.Redis.from_url(redis_server.url).flushdb()
    calendar = TradingCalendar()
    store = BarStore(ResilientRedis(redis_server.url))
    builder = PanelBuilder(PolygonClient("http://127.0.0.1:9", "key", max_retries=0), store, calendar,
                           stack_sessions=50)

    async def served(day: np.datetime64) -> bool:  # the source has every session up to 2026-11-13
        return bool(day <= as_day("2026-11-13"))

    builder.latest = LatestSession(calendar, served, now=lambda: datetime(2026, 11, 14, 12, tzinfo=UTC))
    symbols = [f"S{i}" for i in range(30)]
    rng = np.random.default_rng(5)
    for as_of in ("2026-03-13", "2026-11-13"):
        window = calendar.window(as_day(as_of), 40)
        await store.put_splits("all", window[0], window[-1], SplitTable([], np.zeros(0, "datetime64[D]"),
                                                                        np.zeros(0), np.zeros(0)))
        for day in window:
            await store.put_session(day, GroupedDay(tickers=symbols, values=rng.random((30, 6))), unfinished=False)

    async def read(stream: AsyncIterator[PanelChunk]) -> np.ndarray | None:
        chunk = await anext(stream, None)
        if chunk is None:
            return None
        return decode_block(redis.Redis.from_url(redis_server.url).get(chunk.key)).array.copy()

    def stream(as_of: str) -> AsyncIterator[PanelChunk]:
        return builder.panels(symbols, as_of, 40, 6, PanelReport())

    together: dict[str, list[np.ndarray]] = {"2026-03-13": [], "2026-11-13": []}
    streams = {as_of: stream(as_of) for as_of in together}
    while streams:
        for as_of in list(streams):
            block = await read(streams[as_of])
            if block is None:
                del streams[as_of]
            else:
                together[as_of].append(block)
    for as_of, blocks in together.items():
        # Every chunk holds the stored sessions' bars of its six symbols (no splits, no gaps).
        window = calendar.window(as_day(as_of), 40)
        sessions = await store.get_sessions(list(window))
        bars = np.stack([sessions[d].padded[:-1, :5] for d in window], axis=1)
        assert len(blocks) == 5
        for k, block in enumerate(blocks):
            np.testing.assert_array_equal(block, bars[6 * k:6 * k + 6])
    await builder.client.aclose()
    await store.redis.close()


async def test_the_market_split_table_is_read_back_from_redis_by_a_fresh_process(redis_server: RedisServer) -> None:
    """The table is fetched past the window's end but stored under the window: another process finds it."""
    redis.Redis.from_url(redis_server.url).flushdb()
    asked: list[tuple[str, str]] = []

    class CountingClient(PolygonClient):
        async def splits(self, start: str, end: str, ticker: str | None = None) -> SplitTable:
            asked.append((start, end))
            return SplitTable([], np.zeros(0, "datetime64[D]"), np.zeros(0), np.zeros(0))

    calendar = TradingCalendar()
    window = calendar.window(as_day("2026-11-13"), 40)

    def fresh_builder() -> PanelBuilder:
        return PanelBuilder(CountingClient("http://127.0.0.1:9", "key", max_retries=0),
                            BarStore(ResilientRedis(redis_server.url)), calendar)

    await fresh_builder().splits(window[0], window[-1], RequestStats())
    assert len(asked) == 1 and asked[0][1] > "2026-11-13"  # asked ahead of the window
    stats = RequestStats()
    await fresh_builder().splits(window[0], window[-1], stats)
    assert len(asked) == 1 and stats.cache_hits == 1


def offline_builder(redis_server: RedisServer) -> tuple[TradingCalendar, BarStore, PanelBuilder]:
    """A builder whose source is unreachable and whose latest session is 2026-11-13."""
    calendar = TradingCalendar()
    store = BarStore(ResilientRedis(redis_server.url))
    builder = PanelBuilder(PolygonClient("http://127.0.0.1:9", "key", max_retries=0), store, calendar)

    async def served(day: np.datetime64) -> bool:
        return bool(day <= as_day("2026-11-13"))

    builder.latest = LatestSession(calendar, served, now=lambda: datetime(2026, 11, 14, 12, tzinfo=UTC))
    return calendar, store, builder


async def test_a_snapshot_is_built_again_only_when_a_session_of_its_window_changed(redis_server: RedisServer) -> None:
    redis.Redis.from_url(redis_server.url).flushdb()
    calendar, store, builder = offline_builder(redis_server)
    symbols = ["AAA", "BBB", "CCC"]
    window = calendar.window(as_day("2026-11-13"), 6)
    for first in window[:2]:  # the windows of 5 and 4 sessions (snapshots read one more)
        await store.put_splits("all", first, window[-1], SplitTable([], np.zeros(0, "datetime64[D]"),
                                                                    np.zeros(0), np.zeros(0)))
    for day in window:
        await store.put_session(day, GroupedDay(tickers=symbols, values=np.ones((3, 6))), unfinished=False)

    def closes(raw: bytes) -> list[float]:
        return decode_block(raw).column("close").tolist()

    first = await builder.snapshot("", 5, RequestStats())
    again = await builder.snapshot("", 5, RequestStats())
    assert again is first and closes(again.block) == [1.0, 1.0, 1.0]  # not built again
    # The last session fetched again with other bars (a new SessionData): the snapshot follows it.
    await store.put_session(window[-1], GroupedDay(tickers=symbols, values=np.full((3, 6), 2.0)), unfinished=False)
    changed = await builder.snapshot("", 5, RequestStats())
    assert closes(changed.block) == [2.0, 2.0, 2.0]
    # Another window size is another snapshot.
    longer = await builder.snapshot("", 4, RequestStats())
    assert decode_block(longer.block).meta["window"] == 4
    await builder.client.aclose()
    await store.redis.close()


async def test_an_identical_panel_request_reuses_its_chunks_while_redis_holds_them(redis_server: RedisServer) -> None:
    client = redis.Redis.from_url(redis_server.url)
    client.flushdb()
    calendar, store, builder = offline_builder(redis_server)
    symbols = [f"S{i}" for i in range(10)]
    window = calendar.window(as_day("2026-11-13"), 20)
    await store.put_splits("all", window[0], window[-1], SplitTable([], np.zeros(0, "datetime64[D]"),
                                                                    np.zeros(0), np.zeros(0)))
    rng = np.random.default_rng(7)
    for day in np.delete(window, 5):  # one session the source fails to serve, for now
        await store.put_session(day, GroupedDay(tickers=symbols, values=rng.random((10, 6))), unfinished=False)

    async def request() -> tuple[list[PanelChunk], PanelReport]:
        report = PanelReport()
        return [c async for c in builder.panels(symbols, "", 20, 4, report)], report

    first, report = await request()
    assert len(first) == 3 and "chunks_reused" not in report.stats.extra and len(report.failed_sessions) == 1
    again, report = await request()
    assert again == first and report.stats.extra["chunks_reused"] == 3 and "assemble" not in report.stats.seconds
    # A chunk Redis no longer holds: the request is assembled again and the chunk written again.
    client.delete(first[1].key)
    rebuilt, report = await request()
    assert rebuilt == first and report.stats.extra["chunks_reused"] == 2 and "assemble" in report.stats.seconds
    assert client.exists(first[1].key)
    # The missing session arrives: new chunks, holding its bars.
    await store.put_session(window[5], GroupedDay(tickers=symbols, values=np.full((10, 6), 3.0)), unfinished=False)
    moved, report = await request()
    assert [c.key for c in moved] != [c.key for c in first] and not report.failed_sessions
    assert all((decode_block(client.get(c.key)).array[:, 5, :] == 3.0).all() for c in moved)
    await builder.client.aclose()
    await store.redis.close()
