"""The fetcher's domain objects wired as the servicer wires them, on a fixed clock, for in-process tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from services.common.redis_client import ResilientRedis
from services.fetcher.calendar import LatestSession, TradingCalendar, as_day
from services.fetcher.chunks import Panels
from services.fetcher.downloads import Downloads
from services.fetcher.polygon import GroupedDay, PolygonClient, SplitTable
from services.fetcher.snapshot import Snapshots
from services.fetcher.splits import Splits
from services.fetcher.store import BarStore

# The Saturday after the simulated market's last session (Friday 2026-11-13): every session of the
# tests has closed and settled.
NOW = datetime(2026, 11, 14, 12, tzinfo=UTC)
LATEST = "2026-11-13"
# Nothing listens there: a request that reaches the source fails at once.
NOWHERE = "http://127.0.0.1:9"


def fixed_now() -> datetime:
    return NOW


@dataclass
class Domain:
    calendar: TradingCalendar
    client: PolygonClient
    store: BarStore
    downloads: Downloads
    splits: Splits
    panels: Panels
    snapshots: Snapshots

    async def close(self) -> None:
        await self.client.aclose()
        await self.store.redis.close()


def domain(
    redis_url: str, client: PolygonClient | None = None, *, stack_sessions: int = 300, latest: str = LATEST
) -> Domain:
    """The domain over ``client`` (by default a source that is unreachable), whose latest session is
    ``latest`` without asking the source."""
    calendar = TradingCalendar(now=NOW)
    client = client or PolygonClient(NOWHERE, "key", max_retries=0)
    store = BarStore(ResilientRedis(redis_url))
    downloads = Downloads(client, store, calendar, now=fixed_now)

    async def served(day: np.datetime64) -> bool:
        return bool(day <= as_day(latest))

    downloads.latest = LatestSession(calendar, served, now=fixed_now)
    splits = Splits(client, store)
    panels = Panels(downloads, splits, store, calendar, now=fixed_now, stack_sessions=stack_sessions)
    return Domain(calendar, client, store, downloads, splits, panels, Snapshots(downloads, splits, store))


def no_splits() -> SplitTable:
    return SplitTable([], np.zeros(0, "datetime64[D]"), np.zeros(0), np.zeros(0))


async def store_window(
    store: BarStore, window: np.ndarray, symbols: Sequence[str], seed: int = 5, skip: Sequence[int] = ()
) -> None:
    """Random bars of ``symbols`` for every session of ``window`` but the positions in ``skip``, and an
    empty split table for the window."""
    rng = np.random.default_rng(seed)
    await store.put_splits("all", window[0], window[-1], no_splits())
    for j, day in enumerate(window):
        values = rng.random((len(symbols), 6))
        if j not in skip:
            await store.put_session(day, GroupedDay(tickers=list(symbols), values=values), unfinished=False)


async def batches_of(symbols: Sequence[str], size: int, pause: float = 0.0) -> AsyncIterator[list[str]]:
    """``symbols`` as a stream of batches of ``size``, ``pause`` seconds apart (with none, a reader
    takes them all at once)."""
    for lo in range(0, len(symbols), size):
        if lo and pause:
            await asyncio.sleep(pause)
        yield list(symbols[lo : lo + size])
