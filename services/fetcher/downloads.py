"""Raw bars for a window of sessions: stored ones, else downloaded, each session once at a time.

A request's as-of session comes from the source's latest session (:class:`LatestSession`, probed
with grouped-daily requests whose answers are stored, so a probe is never wasted). Missing sessions
are downloaded by grouped daily, one request per session with every ticker; concurrent requests for
the same session (two cold scans, a snapshot beside a panel request) share one download through a
:class:`SingleFlight`. A session the source should have but answers empty is asked again a few
times; one that fails after the client's retries is reported, not stored, so the next request asks
again. Per-ticker ranges (one request per symbol, the whole window) serve short watchlists.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import datetime

import numpy as np
import structlog

from services.common.singleflight import SingleFlight
from services.fetcher.calendar import LatestSession, TradingCalendar, as_day, day_str
from services.fetcher.polygon import PolygonAuthError, PolygonClient, PolygonError, TickerRange, run_all
from services.fetcher.request import RequestError, RequestStats
from services.fetcher.store import BarStore, SessionData

log = structlog.get_logger(__name__)
# A session the source should have but answered empty is asked again this many times.
EMPTY_SESSION_ATTEMPTS = 3
# When the latest-session probe fails in a fresh process, the newest stored session among this many
# calendar sessions stands in for the calendar's guess.
KNOWN_LOOKBACK = 30


class Downloads:
    """Sessions and per-ticker ranges from the store, or from the source when the store lacks them."""

    def __init__(
        self,
        client: PolygonClient,
        store: BarStore,
        calendar: TradingCalendar,
        *,
        now: Callable[[], datetime],
        latest_ttl: float = 5.0,
    ) -> None:
        self.client = client
        self.store = store
        self.calendar = calendar
        self.now = now
        self.latest = LatestSession(calendar, self._probe, ttl=latest_ttl, now=now, known=self._newest_stored)
        self._sessions: SingleFlight[np.datetime64, SessionData | None] = SingleFlight()

    def unfinished(self, day: np.datetime64) -> bool:
        """Whether ``day`` is trading or settling now (its bars may still change)."""
        return self.calendar.is_unfinished(day, self.now())

    # --- the as-of session ----------------------------------------------------------------------

    async def _probe(self, day: np.datetime64) -> bool | None:
        """Whether the source serves ``day`` (fetching it stores it, so the probe is not wasted)."""
        if await self.store.get_sessions([day]):
            return True
        try:
            grouped = await self.client.grouped_daily(day_str(day), self.store.index)
        except PolygonAuthError:
            raise
        except PolygonError as exc:
            log.warning("latest-session probe failed", session=day_str(day), error=str(exc))
            return None
        if grouped is None:
            return False
        await self.store.put_session(day, grouped, unfinished=self.unfinished(day))
        return True

    async def _newest_stored(self, day: np.datetime64) -> np.datetime64 | None:
        """The newest raw session stored among the ``KNOWN_LOOKBACK`` sessions up to ``day``."""
        end = self.calendar.index(day) + 1
        return await self.store.newest_session(list(self.calendar.sessions[max(end - KNOWN_LOOKBACK, 0) : end]))

    async def resolve_as_of(self, as_of: str) -> np.datetime64:
        """The as-of session: the source's latest when empty, else the session on or before ``as_of``."""
        latest = await self.latest.get()
        if not as_of:
            return latest
        try:
            day = as_day(as_of)
        except ValueError:
            raise RequestError(f"as_of {as_of!r} is not a date (YYYY-MM-DD)") from None
        if day > latest:
            # The source may have moved on since the answer was cached: ask it again once.
            self.latest.invalidate()
            latest = await self.latest.get()
        if day > latest:
            raise RequestError(f"as_of {as_of} is after the latest session the source has ({day_str(latest)})")
        try:
            return self.calendar.session_at(self.calendar.index(day))
        except ValueError as exc:
            raise RequestError(str(exc)) from None

    def window(self, as_of: np.datetime64, n: int) -> np.ndarray:
        """The ``n`` sessions ending at ``as_of``; RequestError when the calendar holds fewer."""
        try:
            return self.calendar.window(as_of, n)
        except ValueError as exc:
            raise RequestError(str(exc)) from None

    # --- grouped daily --------------------------------------------------------------------------

    async def session(self, day: np.datetime64) -> SessionData | None:
        """One session by grouped daily, stored; None when the source failed. Concurrent callers of a
        session share its one download."""
        return await self._sessions.run(day, lambda: self._download(day))

    async def _download(self, day: np.datetime64) -> SessionData | None:
        for attempt in range(EMPTY_SESSION_ATTEMPTS):
            try:
                grouped = await self.client.grouped_daily(day_str(day), self.store.index)
            except PolygonAuthError:
                raise
            except PolygonError as exc:
                log.warning("session fetch failed", session=day_str(day), error=str(exc))
                return None
            if grouped is not None:
                return await self.store.put_session(day, grouped, unfinished=self.unfinished(day))
            await asyncio.sleep(self.client.backoff_base * (attempt + 1))
        log.warning("session answered empty", session=day_str(day), attempts=EMPTY_SESSION_ATTEMPTS)
        return None

    async def fetch(
        self, days: Sequence[np.datetime64], arrived: Callable[[SessionData], object] | None = None
    ) -> tuple[dict[np.datetime64, SessionData], list[np.datetime64]]:
        """Download ``days`` concurrently; (fetched, failed). An auth error cancels the rest and raises.

        ``arrived`` is called with each session as soon as it is stored, while the others download.
        """

        async def one(day: np.datetime64) -> SessionData | None:
            data = await self.session(day)
            if data is not None and arrived is not None:
                arrived(data)
            return data

        results = await run_all(one(d) for d in days)
        fetched = {d: r for d, r in zip(days, results, strict=True) if r is not None}
        return fetched, [d for d in days if d not in fetched]

    async def sessions(
        self, days: np.ndarray, stats: RequestStats
    ) -> tuple[dict[np.datetime64, SessionData], list[np.datetime64]]:
        """Every session of ``days``, stored or downloaded; (sessions, failed days)."""
        with stats.phase("store"):
            stored = await self.store.get_sessions(list(days))
        stats.cache_hits += len(stored)
        missing = [d for d in days if d not in stored]
        if not missing:
            return stored, []
        with stats.phase("fetch"):
            fetched, failed = await self.fetch(missing)
        return {**stored, **fetched}, failed

    # --- per ticker -----------------------------------------------------------------------------

    async def ticker_ranges(
        self, symbols: Sequence[str], window: np.ndarray, stats: RequestStats
    ) -> tuple[dict[str, TickerRange], list[str]]:
        """Per-ticker ranges covering the window, cached or fetched; (ranges, symbols that failed)."""
        start, end = window[0], window[-1]
        ranges = await self.store.get_ticker_ranges(symbols, start, end)
        stats.cache_hits += len(ranges)
        need = [s for s in symbols if s not in ranges]

        async def one(symbol: str) -> TickerRange | None:
            try:
                rng = await self.client.ticker_range(symbol, day_str(start), day_str(end))
            except PolygonAuthError:
                raise
            except PolygonError as exc:
                log.warning("ticker range failed", symbol=symbol, error=str(exc))
                return None
            await self.store.put_ticker_range(rng, start, end, unfinished=self.unfinished(end))
            return rng

        failed = []
        for symbol, rng in zip(need, await run_all(one(s) for s in need), strict=True):
            if rng is None:
                failed.append(symbol)
            else:
                ranges[symbol] = rng
        return ranges, failed
