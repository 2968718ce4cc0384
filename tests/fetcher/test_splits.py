"""Split adjustment and the split tables: factors, the market table's memo, Redis and shared loads."""

from __future__ import annotations

import asyncio

import numpy as np
import redis

from services.common.redis_client import ResilientRedis
from services.fetcher.calendar import TradingCalendar, as_day
from services.fetcher.polygon import PolygonClient, SplitTable
from services.fetcher.request import RequestStats
from services.fetcher.splits import Splits, adjust, split_factors
from services.fetcher.store import BarStore
from tests.fetcher.domain import NOW, NOWHERE, no_splits
from tests.support import RedisServer

DAYS = np.array(["2026-11-09", "2026-11-10", "2026-11-11", "2026-11-12", "2026-11-13"], dtype="datetime64[D]")


def test_split_factors_divide_prices_before_each_split() -> None:
    table = SplitTable(
        tickers=["AAA", "BBB", "AAA", "CCC", "BBB"],
        dates=np.array(["2026-11-11", "2026-11-13", "2026-11-13", "2026-11-12", "2026-12-01"], dtype="datetime64[D]"),
        split_from=np.array([1.0, 10.0, 1.0, 1.0, 1.0]),
        split_to=np.array([4.0, 1.0, 2.0, 3.0, 5.0]),
    )
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


def test_the_factors_of_a_slice_of_symbols_are_the_rows_of_the_whole() -> None:
    """Chunks compute their factors over their own symbols: the same as cutting those of the whole list."""
    rng = np.random.default_rng(3)
    symbols = [f"S{i}" for i in range(40)]
    picks = rng.integers(0, 45, 60)  # some tickers outside the list
    table = SplitTable(
        tickers=[f"S{i}" for i in picks],
        dates=DAYS[0] + rng.integers(-2, 7, 60).astype("timedelta64[D]"),
        split_from=rng.integers(1, 5, 60).astype(np.float64),
        split_to=rng.integers(1, 5, 60).astype(np.float64),
    )
    rows, factors = split_factors(table, symbols, DAYS)
    assert len(rows)
    for lo in range(0, 40, 7):
        hi = min(lo + 7, 40)
        part_rows, part_factors = split_factors(table, symbols[lo:hi], DAYS)
        inside = (rows >= lo) & (rows < hi)
        np.testing.assert_array_equal(part_rows, rows[inside] - lo)
        assert part_factors.tobytes() == factors[inside].tobytes()


class CountingClient(PolygonClient):
    """A source whose split endpoint answers an empty table after a pause and counts the requests."""

    def __init__(self) -> None:
        super().__init__(NOWHERE, "key", max_retries=0)
        self.asked: list[tuple[str, str, str | None]] = []

    async def splits(self, start: str, end: str, ticker: str | None = None) -> SplitTable:
        self.asked.append((start, end, ticker))
        await asyncio.sleep(0.01)
        return no_splits()


async def test_the_market_split_table_is_read_back_from_redis_by_a_fresh_process(redis_server: RedisServer) -> None:
    """The table is fetched past the window's end but stored under the window: another process finds it."""
    redis.Redis.from_url(redis_server.url).flushdb()
    client = CountingClient()
    window = TradingCalendar(now=NOW).window(as_day("2026-11-13"), 40)

    def fresh() -> Splits:
        return Splits(client, BarStore(ResilientRedis(redis_server.url)))

    await fresh().table(window[0], window[-1], RequestStats())
    assert len(client.asked) == 1 and client.asked[0][1] > "2026-11-13"  # asked ahead of the window
    stats = RequestStats()
    await fresh().table(window[0], window[-1], stats)
    assert len(client.asked) == 1 and stats.cache_hits == 1
    await client.aclose()


async def test_the_market_table_is_kept_in_memory_for_windows_it_covers(redis_server: RedisServer) -> None:
    redis.Redis.from_url(redis_server.url).flushdb()
    client = CountingClient()
    splits = Splits(client, BarStore(ResilientRedis(redis_server.url)))
    window = TradingCalendar(now=NOW).window(as_day("2026-11-12"), 40)
    first = await splits.table(window[0], window[-1], RequestStats())
    # The window moved on by a session (the table reaches past it): the same object, no request.
    stats = RequestStats()
    assert await splits.table(window[1], window[-1] + 1, stats) is first
    assert stats.cache_hits == 1 and len(client.asked) == 1
    await client.aclose()


async def test_concurrent_requests_for_a_table_share_one_load(redis_server: RedisServer) -> None:
    redis.Redis.from_url(redis_server.url).flushdb()
    client = CountingClient()
    splits = Splits(client, BarStore(ResilientRedis(redis_server.url)))
    window = TradingCalendar(now=NOW).window(as_day("2026-11-13"), 40)
    tables = await asyncio.gather(*(splits.table(window[0], window[-1], RequestStats()) for _ in range(5)))
    ticker = await asyncio.gather(*(splits.table(window[0], window[-1], RequestStats(), "AAA") for _ in range(3)))
    assert all(t is tables[0] for t in tables) and all(t is ticker[0] for t in ticker)
    assert [a[2] for a in client.asked] == [None, "AAA"]
    await client.aclose()
