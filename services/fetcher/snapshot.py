"""The snapshot: the as-of session's bar of every ticker it has, with averages over a window.

The gateway's prefilter reads it on every scan. Raw sessions are immutable, so the last snapshot is
handed out again while its as-of, window, session objects and split table are the same; concurrent
requests for one (as-of, window) share one build.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass

import numpy as np

from services.common.codec import encode_block
from services.common.singleflight import SingleFlight
from services.fetcher.calendar import day_str
from services.fetcher.downloads import Downloads
from services.fetcher.gather import Gatherer
from services.fetcher.polygon import PolygonError, SplitTable, counting
from services.fetcher.request import RequestStats
from services.fetcher.splits import Splits, adjust, split_factors
from services.fetcher.store import BarStore

SNAPSHOT_FIELDS = (
    "open",
    "high",
    "low",
    "close",
    "volume",
    "avg_volume",
    "avg_dollar_volume",
    "sessions",
    "change_pct",
)


@dataclass(frozen=True)
class Snapshot:
    block: bytes
    as_of: str
    failed_sessions: list[str]


class Snapshots:
    """Builds snapshots, remembers the last one, and shares a build between concurrent requests."""

    def __init__(self, downloads: Downloads, splits: Splits, store: BarStore) -> None:
        self.downloads = downloads
        self.splits = splits
        self.store = store
        # The last snapshot, by what defines it (as-of, window, the serials of its sessions) and the
        # split table object it was adjusted with.
        self._last: tuple[tuple[object, ...], SplitTable, Snapshot] | None = None
        self._builds: SingleFlight[tuple[np.datetime64, int], Snapshot] = SingleFlight()

    async def snapshot(self, as_of: str, window_size: int, stats: RequestStats) -> Snapshot:
        """The as-of session's bar of every ticker it has, with averages over ``window_size`` sessions.

        A request that joins another's build counts it as a cache hit; the work is counted by the
        request that started it.
        """
        with counting() as http:
            stats.http = http
            with stats.phase("resolve"):
                as_of_day = await self.downloads.resolve_as_of(as_of)
                window = self.downloads.window(as_of_day, window_size + 1)
            started = False

            def build() -> Awaitable[Snapshot]:
                nonlocal started
                started = True
                return self._build(as_of_day, window, window_size, stats)

            snapshot = await self._builds.run((as_of_day, window_size), build)
            if not started:
                stats.cache_hits += 1
            return snapshot

    async def _build(
        self, as_of_day: np.datetime64, window: np.ndarray, window_size: int, stats: RequestStats
    ) -> Snapshot:
        sessions, failed = await self.downloads.sessions(window, stats)
        last = sessions.get(as_of_day)
        if last is None:
            # The source failed (every retry), the request is fine: UNAVAILABLE, naming the session.
            raise PolygonError(f"session {day_str(as_of_day)} could not be fetched from the source")
        with stats.phase("fetch"):
            splits = await self.splits.table(window[0], window[-1], stats)
        key = (as_of_day, window_size, tuple(0 if d not in sessions else sessions[d].serial for d in window))
        memo = self._last
        if memo is not None and memo[0] == key and memo[1] is splits:
            stats.cache_hits += 1
            return memo[2]
        with stats.phase("assemble"):
            block = Gatherer([sessions.get(d) for d in window]).chunk(last.ids).astype(np.float64)
            tickers = self.store.index.names(last.ids)
            adjust_rows, factors = split_factors(splits, tickers, window)
            adjust(block, adjust_rows, factors)
            recent = block[:, 1:, :]
            close, volume = recent[:, :, 3], recent[:, :, 4]
            present = ~np.isnan(close) & ~np.isnan(volume)
            count = present.sum(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                avg_volume = np.where(present, volume, 0).sum(axis=1) / count
                avg_dollar = np.where(present, close * volume, 0).sum(axis=1) / count
                change = (block[:, -1, 3] / block[:, -2, 3] - 1.0) * 100.0
            out = np.column_stack([block[:, -1, :], avg_volume, avg_dollar, count.astype(np.float64), change])
            raw = encode_block(
                out, rows=tickers, fields=SNAPSHOT_FIELDS, meta={"as_of": day_str(as_of_day), "window": window_size}
            )
        snapshot = Snapshot(block=raw, as_of=day_str(as_of_day), failed_sessions=[day_str(d) for d in failed])
        self._last = (key, splits, snapshot)
        return snapshot
