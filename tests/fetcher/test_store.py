"""The keyspace against a real redis-server, and the degraded mode when Redis is gone."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
import redis

from services.common.codec import decode_block
from services.common.redis_client import ResilientRedis
from services.fetcher.calendar import as_day
from services.fetcher.polygon import GroupedDay, SplitTable, TickerDetails, TickerRange
from services.fetcher.store import BarStore, Universe, session_key, ticker_key
from tests.support import RedisServer, free_port

DAY = as_day("2026-11-13")


@pytest.fixture
def flushed(redis_server: RedisServer) -> RedisServer:
    redis.Redis.from_url(redis_server.url).flushdb()
    return redis_server


def grouped() -> GroupedDay:
    return GroupedDay(
        tickers=["AAA", "BBB"], values=np.array([[1, 2, 0.5, 1.5, 100, 1.2], [5, 6, 4, 5.5, 7, 5]], dtype=np.float64)
    )


async def test_sessions_round_trip_and_ttl(flushed: RedisServer) -> None:
    store = BarStore(ResilientRedis(flushed.url))
    await store.put_session(DAY, grouped(), unfinished=False)
    await store.put_session(as_day("2026-11-16"), grouped(), unfinished=True)
    sync = redis.Redis.from_url(flushed.url)
    assert sync.ttl(session_key(DAY)) == -1
    assert 0 < sync.ttl(session_key(as_day("2026-11-16"))) <= 300
    block = decode_block(sync.get(session_key(DAY)))
    assert block.rows == ("AAA", "BBB") and block.array.dtype == np.float32
    assert block.fields == ("open", "high", "low", "close", "volume", "vwap")

    fresh = BarStore(ResilientRedis(flushed.url))
    found = await fresh.get_sessions([DAY, as_day("2026-11-12")])
    assert list(found) == [DAY]
    data = found[DAY]
    rows = data.rows(fresh.index.ids(["BBB", "NOSUCH", "AAA"], add=False))
    np.testing.assert_array_equal(data.padded[rows[0]], [5, 6, 4, 5.5, 7, 5])
    assert np.isnan(data.padded[rows[1]]).all()
    assert rows[2] == 0


async def test_ticker_ranges_cover_only_their_window(flushed: RedisServer) -> None:
    store = BarStore(ResilientRedis(flushed.url))
    rng = TickerRange(
        "AAA",
        np.array(["2026-11-12", "2026-11-13"], dtype="datetime64[D]"),
        np.arange(12, dtype=np.float64).reshape(2, 6),
    )
    await store.put_ticker_range(rng, as_day("2026-11-10"), DAY, unfinished=False)
    await store.put_ticker_range(
        TickerRange("NOPE", np.zeros(0, "datetime64[D]"), np.zeros((0, 6))), as_day("2026-11-10"), DAY, unfinished=False
    )
    got = await store.get_ticker_ranges(["AAA", "NOPE", "BBB"], as_day("2026-11-11"), DAY)
    assert set(got) == {"AAA", "NOPE"}
    np.testing.assert_array_equal(got["AAA"].values, rng.values)
    assert list(got["AAA"].days) == list(rng.days) and len(got["NOPE"].days) == 0
    assert await store.get_ticker_ranges(["AAA"], as_day("2026-11-09"), DAY) == {}
    assert redis.Redis.from_url(flushed.url).ttl(ticker_key("AAA")) > 0


async def test_splits_universe_details(flushed: RedisServer) -> None:
    store = BarStore(ResilientRedis(flushed.url))
    table = SplitTable(["AAA"], np.array(["2026-06-01"], dtype="datetime64[D]"), np.array([1.0]), np.array([4.0]))
    await store.put_splits("all", as_day("2026-01-02"), DAY, table)
    got = await store.get_splits("all", as_day("2026-01-02"), DAY)
    assert got is not None and got.tickers == ["AAA"] and got.dates[0] == table.dates[0]
    assert await store.get_splits("all", as_day("2026-01-05"), DAY) is None
    await store.put_splits(
        "BBB", as_day("2026-01-02"), DAY, SplitTable([], np.zeros(0, "datetime64[D]"), np.zeros(0), np.zeros(0))
    )
    empty = await store.get_splits("BBB", as_day("2026-01-02"), DAY)
    assert empty is not None and empty.tickers == []

    universe = Universe(["AAA", "BBB"], ["A Inc", "B Corp"], ["CS", "ETF"], ["XNAS", "ARCX"], 123)
    await store.put_universe(universe)
    assert await store.get_universe() == universe
    await store.add_details([TickerDetails("AAA", 1e9, 7372, "SOFTWARE", 1e6)])
    details = await store.add_details([("ZZZ", None)])
    assert details.tickers == ["AAA", "ZZZ"]
    assert list(details.sic_codes) == [7372, 0] and np.isnan(details.market_caps[1])
    assert (await store.get_details()).sic_descriptions == ["SOFTWARE", ""]


async def test_redis_down_serves_from_memory() -> None:
    states: list[bool] = []
    client = ResilientRedis(f"redis://127.0.0.1:{free_port()}/0", timeout=0.2, on_state_change=states.append)
    try:
        store = BarStore(client)
        await store.put_session(DAY, grouped(), unfinished=False)
        assert store.degraded and states == [True]
        fresh = BarStore(client)  # decoded cache empty: the fallback LRU answers
        assert list(await fresh.get_sessions([DAY])) == [DAY]
        assert await fresh.put_panel("technic:panel:x", b"abc", 600) is False
        # A chunk that only the fallback holds is never handed out by key.
        assert await fresh.has_panel("technic:panel:x") is False
    finally:
        await client.close()  # stops the watcher that pings the dead server


async def test_stored_panels_are_known_until_redis_loses_them(flushed: RedisServer) -> None:
    store = BarStore(ResilientRedis(flushed.url))
    assert await store.has_panel("technic:panel:a") is False
    assert await store.put_panel("technic:panel:a", b"abc", 600)
    assert await store.put_panel("technic:panel:b", b"abc", 60)
    assert await store.has_panel("technic:panel:a") is True
    # About to expire: written again rather than handed out.
    assert await store.has_panel("technic:panel:b") is False
    # Evicted (or flushed) behind the fetcher's back.
    redis.Redis.from_url(flushed.url).delete("technic:panel:a")
    assert await store.has_panel("technic:panel:a") is False
    # Another process's key with the same name is not taken on trust either.
    redis.Redis.from_url(flushed.url).set("technic:panel:c", b"abc")
    assert await store.has_panel("technic:panel:c") is False


async def test_newest_stored_session_from_memory_or_redis(flushed: RedisServer) -> None:
    days = [as_day(d) for d in ("2026-11-10", "2026-11-11", "2026-11-12", "2026-11-13")]
    store = BarStore(ResilientRedis(flushed.url))
    assert await store.newest_session(days) is None
    await store.put_session(days[1], grouped(), unfinished=False)
    assert await store.newest_session(days) == days[1]
    # Stored by another process: only Redis knows it.
    await BarStore(ResilientRedis(flushed.url)).put_session(days[2], grouped(), unfinished=False)
    assert await store.newest_session(days) == days[2]
    assert await store.newest_session(days[:2]) == days[1]


async def test_sessions_name_their_rows_through_the_ticker_index(flushed: RedisServer) -> None:
    store = BarStore(ResilientRedis(flushed.url))
    first = await store.put_session(DAY, grouped(), unfinished=False)
    second = await store.put_session(
        as_day("2026-11-12"), GroupedDay(tickers=["BBB", "CCC"], values=np.ones((2, 6))), unfinished=False
    )
    other = BarStore(ResilientRedis(flushed.url))
    read = (await other.get_sessions([DAY]))[DAY]
    assert store.index.names(first.ids) == ["AAA", "BBB"] and store.index.names(second.ids) == ["BBB", "CCC"]
    assert other.index.names(read.ids) == ["AAA", "BBB"]
    assert list(store.index.ids(["CCC", "AAA", "ZZZ"], add=False)) == [2, 0, -1]


async def test_decoded_sessions_are_kept_within_bounds(flushed: RedisServer) -> None:
    """Settled sessions stay in memory, the least recently used leaving first; one in progress leaves
    memory when its TTL runs out, as its Redis key does."""
    sync = redis.Redis.from_url(flushed.url)
    store = BarStore(ResilientRedis(flushed.url), session_cache=2, unfinished_ttl=0.3)
    days = [as_day(d) for d in ("2026-11-10", "2026-11-11", "2026-11-12")]
    for day in days[:2]:
        await store.put_session(day, grouped(), unfinished=False)
    await store.get_sessions([days[0]])  # the first is used again: the second is now the oldest
    await store.put_session(days[2], grouped(), unfinished=False)
    sync.flushdb()  # from here on only process memory answers
    assert sorted(await store.get_sessions(days)) == [days[0], days[2]]

    await store.put_session(DAY, grouped(), unfinished=True)
    sync.delete(session_key(DAY))
    assert list(await store.get_sessions([DAY])) == [DAY]
    await asyncio.sleep(0.4)
    assert await store.get_sessions([DAY]) == {}
    # Settled once fetched again: kept without a TTL.
    await store.put_session(DAY, grouped(), unfinished=False)
    sync.delete(session_key(DAY))
    await asyncio.sleep(0.4)
    assert list(await store.get_sessions([DAY])) == [DAY]
