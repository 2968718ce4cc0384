"""The ranked-scan cache against a real redis-server: store, page, TTL, single flight, Redis down."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator

import numpy as np
import pytest

from services.common.codec import BlockError, encode_block
from services.common.redis_client import ResilientRedis
from services.contract.sessions import ttl_until_next_close
from services.ranker.cache import EXPLAIN_KEY, ID_KEY, SCAN_KEY, ScanCache
from services.ranker.engine import RankConfig, rank_scan
from services.ranker.rank import PageSpec
from services.ranker.result import RankedScan, explanations_from_bytes, explanations_to_bytes
from tests.ranker.synthetic import explanation, synthetic_universe
from tests.ranker.test_engine import make_input
from tests.support import RedisServer, free_port

UNIVERSE = synthetic_universe(300, chunk_size=100)


def scan_for(fingerprint: str, scan_id: str = "scan-1") -> RankedScan:
    inp = make_input(UNIVERSE.info)
    return rank_scan(
        inp.__class__(**{**inp.__dict__, "fingerprint": fingerprint, "scan_id": scan_id}),
        UNIVERSE.decoded(),
        RankConfig(),
    )


@pytest.fixture
async def redis(redis_server: RedisServer) -> AsyncIterator[ResilientRedis]:
    client = ResilientRedis(redis_server.url)
    await client.client.flushdb()
    yield client
    await client.close()


async def test_store_then_page_from_a_fresh_process(redis: ResilientRedis) -> None:
    scan = scan_for("fp-a", "id-a")
    cache = ScanCache(redis)
    cache.put(scan)
    # Served from memory at once; the Redis copy is written in the background.
    assert cache.cached("fp-a") is scan and await cache.fingerprint_of("id-a") == "fp-a"
    await cache.drain()
    assert await redis.client.exists(SCAN_KEY + "fp-a", ID_KEY + "id-a") == 2
    fresh = ScanCache(redis)  # nothing in process memory: Redis serves
    assert fresh.cached("fp-a") is None
    got = await fresh.get("fp-a")
    assert got is not None and fresh.cached("fp-a") is got
    spec = PageSpec("tech_rating", False, 10, 50)
    np.testing.assert_array_equal(got.numbers[got.page(spec)], scan.numbers[scan.page(spec)])
    assert await fresh.fingerprint_of("id-a") == "fp-a"
    assert await fresh.get("fp-missing") is None and await fresh.fingerprint_of("id-missing") is None


async def test_ttl_runs_to_the_next_close(redis: ResilientRedis) -> None:
    cache = ScanCache(redis, ttl=lambda: 1234.0)
    cache.put(scan_for("fp-t", "id-t"))
    await cache.drain()
    for key in (SCAN_KEY + "fp-t", ID_KEY + "id-t"):
        ttl = await redis.client.pttl(key)
        assert 1_200_000 < ttl <= 1_234_000
    # Friday 2026-11-13: during the session the close is 21:00 UTC that day; after it, Monday's close.
    during = dt.datetime(2026, 11, 13, 15, 0, tzinfo=dt.UTC)
    after = dt.datetime(2026, 11, 13, 21, 30, tzinfo=dt.UTC)
    assert ttl_until_next_close(during) == 6 * 3600
    assert ttl_until_next_close(after) == (2 * 24 + 23.5) * 3600
    assert ttl_until_next_close(dt.datetime(2026, 11, 13, 20, 59, 50, tzinfo=dt.UTC)) == 60.0


async def test_identical_concurrent_calls_compute_once(redis: ResilientRedis) -> None:
    cache = ScanCache(redis)
    calls = 0
    release = asyncio.Event()

    async def compute() -> RankedScan:
        nonlocal calls
        calls += 1
        await release.wait()
        return scan_for("fp-s")

    tasks = [asyncio.create_task(cache.get_or_compute("fp-s", compute)) for _ in range(12)]
    await asyncio.sleep(0.05)
    release.set()
    results = await asyncio.gather(*tasks)
    assert calls == 1
    # A caller that arrives after the flight ended reads the stored scan (another decoded copy).
    first = results[0][0]
    assert all(scan.fingerprint == "fp-s" and np.array_equal(scan.numbers, first.numbers) for scan, _ in results)
    assert sorted(cached for _, cached in results) == [False] + [True] * 11
    assert (await cache.get_or_compute("fp-s", compute))[1] is True and calls == 1


async def test_a_failed_flight_fails_its_waiters_and_a_cancelled_one_hands_over(redis: ResilientRedis) -> None:
    cache = ScanCache(redis)
    started = asyncio.Event()

    async def failing() -> RankedScan:
        started.set()
        await asyncio.sleep(0.02)
        raise ValueError("bad chunk")

    first = asyncio.create_task(cache.get_or_compute("fp-f", failing))
    await started.wait()
    waiter = asyncio.create_task(cache.get_or_compute("fp-f", failing))
    for task in (first, waiter):
        with pytest.raises(ValueError, match="bad chunk"):
            await task

    hang = asyncio.Event()

    async def hanging() -> RankedScan:
        hang.set()
        await asyncio.Event().wait()
        raise AssertionError("never finishes")

    async def working() -> RankedScan:
        return scan_for("fp-c")

    first = asyncio.create_task(cache.get_or_compute("fp-c", hanging))
    await hang.wait()
    waiter = asyncio.create_task(cache.get_or_compute("fp-c", working))
    await asyncio.sleep(0.01)
    first.cancel()
    scan, cached = await waiter
    assert scan.fingerprint == "fp-c" and cached is False


def encoded(*symbols: str) -> dict[str, bytes]:
    """Explanations of ``symbols`` as the servicer hands them to the cache."""
    return {s: explanation(s).SerializeToString() for s in symbols}


async def test_explanations_are_stored_beside_the_scan(redis: ResilientRedis) -> None:
    cache = ScanCache(redis, ttl=lambda: 1234.0)
    scan = scan_for("fp-x", "id-x")
    cache.put(scan)
    a, b, c = (str(s) for s in scan.text["symbol"][:3])
    # Two attaches at once: the last write holds both (a fresh cache reads both below).
    counts = await asyncio.gather(cache.attach("fp-x", encoded(a, "NOPE")), cache.attach("fp-x", encoded(b)))
    assert counts == [1, 1] and set(scan.explanations) == {a, b}
    assert await cache.attach("fp-missing", encoded(a)) is None
    await cache.drain()
    assert 1_200_000 < await redis.client.pttl(EXPLAIN_KEY + "fp-x") <= 1_234_000

    fresh = ScanCache(redis)
    got = await fresh.get("fp-x")
    assert got is not None and got.explanations == scan.explanations
    # Two reads from Redis at once share one decoded scan, so an attach reaches every later page.
    other = ScanCache(redis)
    first, second = await asyncio.gather(other.get("fp-x"), other.get("fp-x"))
    assert first is second

    # A scan ranked again under the same fingerprint (its stored copy gone) takes the explanations up.
    await redis.delete(SCAN_KEY + "fp-x")
    ranking = ScanCache(redis)
    again, cached = await ranking.get_or_compute("fp-x", lambda: asyncio.sleep(0, scan_for("fp-x")))
    assert not cached and again.explanations == scan.explanations
    await ranking.drain()  # its copy is in Redis again

    await redis.set(EXPLAIN_KEY + "fp-x", b"junk")
    unreadable = await ScanCache(redis).get("fp-x")
    assert unreadable is not None and unreadable.explanations == {}
    assert await ScanCache(redis).attach("fp-x", encoded(c)) == 1  # and a new attach replaces the junk
    replaced = await ScanCache(redis).get("fp-x")
    assert replaced is not None and set(replaced.explanations) == {c}


def test_explanations_byte_form() -> None:
    items = {"A": b"\x0a\x01A", "BB": b"", "C": b"\x0a\x01C\x12\x00"}
    assert explanations_from_bytes(explanations_to_bytes(items)) == items
    assert explanations_from_bytes(explanations_to_bytes({})) == {}
    short = encode_block(np.zeros(3, np.uint8), meta={"symbols": ["A"], "sizes": [2]})
    negative = encode_block(np.zeros(3, np.uint8), meta={"symbols": ["A", "B"], "sizes": [4, -1]})
    for bad in (b"junk", short, negative):
        with pytest.raises(BlockError):
            explanations_from_bytes(bad)


async def test_process_memory_keeps_the_scans_read_last() -> None:
    cache = ScanCache(None, max_scans=2)
    for fingerprint in ("fp-1", "fp-2"):
        cache.put(scan_for(fingerprint))
    assert cache.cached("fp-1") is not None  # read: now the most recent
    cache.put(scan_for("fp-3"))
    assert [f for f in ("fp-1", "fp-2", "fp-3") if cache.cached(f) is not None] == ["fp-1", "fp-3"]
    assert await cache.get("fp-2") is None  # no Redis behind this cache


async def test_redis_down_still_works() -> None:
    dead = ResilientRedis(f"redis://127.0.0.1:{free_port()}/0", timeout=0.2)
    try:
        cache = ScanCache(dead, max_scans=1)
        scan, cached = await cache.get_or_compute("fp-d", lambda: asyncio.sleep(0, scan_for("fp-d", "id-d")))
        cache.put(scan_for("fp-e", "id-e"))  # evicts fp-d from the decoded LRU (max 1)
        await cache.drain()
        assert cached is False and dead.degraded
        assert cache.cached("fp-d") is None
        again = await cache.get("fp-d")  # from the client's in-process fallback bytes
        assert again is not None and len(again) == len(scan)
        assert await cache.fingerprint_of("id-d") == "fp-d"
    finally:
        await dead.close()
