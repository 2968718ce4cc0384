"""The snapshot: built from stored sessions, handed out again while nothing changed, one build at a time."""

from __future__ import annotations

import asyncio

import numpy as np
import redis

from services.common.codec import decode_block
from services.fetcher.calendar import as_day
from services.fetcher.polygon import GroupedDay
from services.fetcher.request import RequestStats
from services.fetcher.snapshot import Snapshot
from tests.fetcher.domain import domain, no_splits
from tests.support import RedisServer

SYMBOLS = ["AAA", "BBB", "CCC"]


def closes(raw: bytes) -> list[float]:
    return decode_block(raw).column("close").tolist()


async def test_a_snapshot_is_built_again_only_when_a_session_of_its_window_changed(redis_server: RedisServer) -> None:
    redis.Redis.from_url(redis_server.url).flushdb()
    fetcher = domain(redis_server.url)
    store = fetcher.store
    window = fetcher.calendar.window(as_day("2026-11-13"), 6)
    for first in window[:2]:  # the windows of 5 and 4 sessions (snapshots read one more)
        await store.put_splits("all", first, window[-1], no_splits())
    for day in window:
        await store.put_session(day, GroupedDay(tickers=SYMBOLS, values=np.ones((3, 6))), unfinished=False)

    first = await fetcher.snapshots.snapshot("", 5, RequestStats())
    again = await fetcher.snapshots.snapshot("", 5, RequestStats())
    assert again is first and closes(again.block) == [1.0, 1.0, 1.0]  # not built again
    # The last session fetched again with other bars (a new SessionData): the snapshot follows it.
    await store.put_session(window[-1], GroupedDay(tickers=SYMBOLS, values=np.full((3, 6), 2.0)), unfinished=False)
    changed = await fetcher.snapshots.snapshot("", 5, RequestStats())
    assert closes(changed.block) == [2.0, 2.0, 2.0]
    # Another window size is another snapshot.
    longer = await fetcher.snapshots.snapshot("", 4, RequestStats())
    assert decode_block(longer.block).meta["window"] == 4
    await fetcher.close()


async def test_concurrent_snapshot_requests_share_one_build(redis_server: RedisServer) -> None:
    redis.Redis.from_url(redis_server.url).flushdb()
    fetcher = domain(redis_server.url)
    window = fetcher.calendar.window(as_day("2026-11-13"), 6)
    await fetcher.store.put_splits("all", window[0], window[-1], no_splits())
    for day in window:
        await fetcher.store.put_session(day, GroupedDay(tickers=SYMBOLS, values=np.ones((3, 6))), unfinished=False)
    builds: list[object] = []
    build = fetcher.snapshots._build

    async def counted(*args: object) -> Snapshot:
        builds.append(args)
        await asyncio.sleep(0.01)
        return await build(*args)  # type: ignore[arg-type]

    fetcher.snapshots._build = counted  # type: ignore[method-assign]
    stats = [RequestStats() for _ in range(4)]
    answers = await asyncio.gather(*(fetcher.snapshots.snapshot("", 5, s) for s in stats))
    assert len(builds) == 1 and all(a is answers[0] for a in answers)
    # The request that built it counts the sessions it read; the others count one shared answer.
    assert stats[0].cache_hits == 6 + 1 and [s.cache_hits for s in stats[1:]] == [1, 1, 1]
    await fetcher.close()
