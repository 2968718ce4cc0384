"""XNYS trading sessions (exchange_calendars, half days included) and the source's latest session.

Sessions are ``numpy.datetime64[D]`` values. The wall clock says which session closed last, but the
data source defines what "the latest session" is (a simulator whose clock was advanced answers
sessions the wall clock has not reached, and a source may lag): :class:`LatestSession` starts from
the calendar's guess and probes the source around it, galloping then bisecting, and caches the
answer for a few seconds so that it costs nothing per request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta

import exchange_calendars as xcals
import numpy as np
import structlog

from services.common.singleflight import SingleFlight

log = structlog.get_logger(__name__)
DAY = np.dtype("datetime64[D]")
# A session's bars are final this long after its close.
SETTLE = timedelta(minutes=20)


def as_day(value: str | date | np.datetime64) -> np.datetime64:
    """A session label (YYYY-MM-DD, date or datetime64) as datetime64[D]; ValueError when malformed."""
    if isinstance(value, np.datetime64):  # numpy's stubs have no (datetime64, unit) constructor
        return value.astype(DAY)
    return np.datetime64(value, "D")


def day_str(value: np.datetime64) -> str:
    return str(value.astype(DAY))


class TradingCalendar:
    """The XNYS sessions from ``first_year`` to ``years_ahead`` years after ``now``'s (the real clock's
    when not given), with their opens and closes (UTC)."""

    def __init__(self, first_year: int = 2000, years_ahead: int = 2, *, now: datetime | None = None) -> None:
        end = f"{(now or datetime.now(UTC)).year + years_ahead}-12-31"
        cal = xcals.get_calendar("XNYS", start=f"{first_year}-01-01", end=end)
        self.sessions: np.ndarray = cal.sessions.values.astype(DAY)
        self.opens: np.ndarray = cal.schedule["open"].dt.tz_convert(None).to_numpy().astype("datetime64[s]")
        self.closes: np.ndarray = cal.schedule["close"].dt.tz_convert(None).to_numpy().astype("datetime64[s]")

    def index(self, session: np.datetime64) -> int:
        """Position of the last session on or before ``session``."""
        pos = int(np.searchsorted(self.sessions, session, side="right")) - 1
        if pos < 0:
            raise ValueError(f"{day_str(session)} is before the first session of the calendar")
        return pos

    def is_session(self, day: np.datetime64) -> bool:
        pos = int(np.searchsorted(self.sessions, day))
        return pos < len(self.sessions) and self.sessions[pos] == day

    def session_at(self, pos: int) -> np.datetime64:
        if not 0 <= pos < len(self.sessions):
            raise ValueError(f"session position {pos} is outside the calendar")
        return self.sessions[pos]

    def window(self, as_of: np.datetime64, n: int) -> np.ndarray:
        """The ``n`` sessions ending at ``as_of`` (or the last session before it), oldest first."""
        end = self.index(as_of) + 1
        if end < n:
            raise ValueError(f"the calendar holds only {end} sessions up to {day_str(as_of)}, {n} asked")
        return self.sessions[end - n : end]

    def latest_completed(self, now: datetime) -> np.datetime64:
        """The last session whose close has passed (plus the settle margin) at ``now``."""
        cutoff = np.datetime64((now - SETTLE).astimezone(UTC).replace(tzinfo=None), "s")
        pos = int(np.searchsorted(self.closes, cutoff, side="right")) - 1
        return self.sessions[max(pos, 0)]

    def is_unfinished(self, session: np.datetime64, now: datetime) -> bool:
        """True while ``session`` is trading or settling by the wall clock (its bars may still change)."""
        pos = self.index(session)
        if self.sessions[pos] != session:
            return False
        wall = np.datetime64(now.astimezone(UTC).replace(tzinfo=None), "s")
        return bool(self.opens[pos] <= wall < self.closes[pos] + np.timedelta64(SETTLE))

    def next_close_after(self, session: np.datetime64) -> datetime:
        """Close (UTC) of the session after ``session``: when panels as of ``session`` go stale."""
        pos = min(self.index(session) + 1, len(self.closes) - 1)
        return self.closes[pos].astype(datetime).replace(tzinfo=UTC)


Probe = Callable[[np.datetime64], Awaitable[bool | None]]
# The newest session on or before a day that is known to exist (stored), or None.
Known = Callable[[np.datetime64], Awaitable[np.datetime64 | None]]


class LatestSession:
    """The latest session the source serves, discovered by probing and cached for ``ttl`` seconds.

    ``probe(session)`` answers True when the source has bars for the session, False when it has
    none yet, None when it could not tell (the request failed): probing then stops at the best
    answer known so far: the newest session seen before, else ``known(guess)`` (the newest stored
    session on or before the guess), else the guess itself.
    """

    def __init__(
        self,
        calendar: TradingCalendar,
        probe: Probe,
        ttl: float = 5.0,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        max_back: int = 4096,
        known: Known | None = None,
    ) -> None:
        self.calendar = calendar
        self.probe = probe
        self.known = known
        self.ttl = ttl
        self.now = now
        self.max_back = max_back
        self._value: np.datetime64 | None = None
        self._expires = 0.0
        self._last_asked = 0.0
        self._discovery: SingleFlight[str, np.datetime64] = SingleFlight()

    def invalidate(self) -> None:
        self._expires = 0.0

    async def get(self) -> np.datetime64:
        self._last_asked = time.monotonic()
        if self._value is not None and time.monotonic() < self._expires:
            return self._value
        return await self._refresh()

    async def keep_fresh(self, idle: float = 60.0) -> None:
        """Probe again shortly before the value expires, as long as it was asked for in the last ``idle``
        seconds, so that requests find it fresh instead of waiting for a probe (round trips to the
        source). The value is never older than ``ttl``, as without this loop; an idle fetcher stays quiet
        (a free-tier key allows 5 requests a minute). Runs until cancelled; with no ``ttl`` every get()
        probes anyway, so there is nothing to keep."""
        while self.ttl > 0:
            now = time.monotonic()
            due = self._expires - 0.2 * self.ttl
            if now < due:
                await asyncio.sleep(due - now)
            elif self._value is None or now - self._last_asked > idle:
                await asyncio.sleep(max(0.2 * self.ttl, 0.05))
            else:
                try:
                    await self._refresh(force=True)
                except Exception as exc:  # a failed refresh leaves get() to probe for itself
                    log.warning("background latest-session probe failed", error=str(exc))
                    await asyncio.sleep(max(self.ttl, 0.05))

    async def _refresh(self, force: bool = False) -> np.datetime64:
        """A fresh value: the cached one unless ``force``, else one discovery, shared by everyone asking
        while it runs."""
        if not force and self._value is not None and time.monotonic() < self._expires:
            return self._value
        return await self._discovery.run("latest", self._rediscover)

    async def _rediscover(self) -> np.datetime64:
        value, certain = await self._discover()
        if not certain and self._value is not None and self._value > value:
            # A failed probe says nothing new: keep the newer session already seen served
            # rather than step back to an older one.
            value = self._value
        elif not certain and self._value is None and self.known is not None:
            # Nothing seen yet (a fresh process): the newest session already stored is known to
            # exist, where the calendar's guess may be one the source does not have.
            value = await self.known(value) or value
        self._value = value
        # An uncertain answer (a probe failed) is retried sooner.
        self._expires = time.monotonic() + (self.ttl if certain else min(self.ttl, 1.0))
        return value

    async def _discover(self) -> tuple[np.datetime64, bool]:
        cal = self.calendar
        guess = cal.index(cal.latest_completed(self.now()))
        following: asyncio.Future[bool | None] | None = None
        if self._value is None and guess + 1 < len(cal.sessions):
            # Nothing known yet (a fresh process, whose first scan waits for this): the common answer needs
            # the guess and the session after it, so both are asked at once. Later refreshes ask one at a
            # time, as the guess is then usually stored and one request settles it.
            following = asyncio.ensure_future(self.probe(cal.session_at(guess + 1)))
            following.add_done_callback(lambda task: task.cancelled() or task.exception())  # retrieved if unused
        # Left to finish when its answer turns out not to matter (the guess is not served): a request
        # cut off mid-way would be counted here and never reach the source.
        found = await self.probe(cal.session_at(guess))
        if found is None:
            return cal.session_at(guess), False
        if found:
            lo, hi, step = guess, None, 1
            # One request settles the common case (nothing new); galloping finds how far a source is ahead.
            while hi is None and lo + step < len(cal.sessions):
                if following is not None:
                    answer, following = await following, None
                else:
                    answer = await self.probe(cal.session_at(lo + step))
                if answer is None:
                    return cal.session_at(lo), False
                if answer:
                    lo, step = lo + step, step * 2
                else:
                    hi = lo + step
            if hi is None:
                return cal.session_at(lo), True
        else:
            hi, lo, step = guess, None, 1
            while lo is None:
                if step > self.max_back or hi - step < 0:
                    raise LookupError("the data source has no sessions near the calendar's latest")
                answer = await self.probe(cal.session_at(hi - step))
                if answer is None:
                    return cal.session_at(guess), False
                if answer:
                    lo = hi - step
                else:
                    hi, step = hi - step, step * 2
        assert lo is not None and hi is not None  # both bounds are known once the search got here
        while hi - lo > 1:
            mid = (lo + hi) // 2
            answer = await self.probe(cal.session_at(mid))
            if answer is None:
                return cal.session_at(lo), False
            lo, hi = (mid, hi) if answer else (lo, mid)
        if lo != guess:
            log.info(
                "source latest session differs from the wall clock",
                latest=day_str(cal.session_at(lo)),
                wall_clock=day_str(cal.session_at(guess)),
            )
        return cal.session_at(lo), True
