"""Trading calendar and latest-session discovery."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import numpy as np
import pytest

from services.fetcher.calendar import LatestSession, TradingCalendar, as_day, day_str

# Every test reads the clock as the Saturday after 2026-11-13, whatever the machine's date.
NOW = datetime(2026, 11, 14, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def cal() -> TradingCalendar:
    return TradingCalendar(now=NOW)


def test_window_skips_weekends_and_holidays_and_keeps_half_days(cal: TradingCalendar) -> None:
    window = cal.window(as_day("2025-12-01"), 5)
    # Thanksgiving 2025-11-27 closed; 2025-11-28 is a half day (close 13:00 New York).
    assert [day_str(d) for d in window] == ["2025-11-24", "2025-11-25", "2025-11-26", "2025-11-28", "2025-12-01"]
    pos = cal.index(as_day("2025-11-28"))
    assert str(cal.closes[pos]) == "2025-11-28T18:00:00"
    # A non-session as-of means the session before it.
    assert day_str(cal.window(as_day("2025-11-29"), 1)[0]) == "2025-11-28"


def test_latest_completed_and_unfinished(cal: TradingCalendar) -> None:
    friday_evening = datetime(2026, 11, 13, 22, 0, tzinfo=UTC)
    assert day_str(cal.latest_completed(friday_evening)) == "2026-11-13"
    during = datetime(2026, 11, 13, 16, 0, tzinfo=UTC)
    assert day_str(cal.latest_completed(during)) == "2026-11-12"
    assert cal.is_unfinished(as_day("2026-11-13"), during)
    assert not cal.is_unfinished(as_day("2026-11-12"), during)
    assert not cal.is_unfinished(as_day("2026-11-16"), during)


def test_window_beyond_calendar_is_an_error(cal: TradingCalendar) -> None:
    with pytest.raises(ValueError, match="only"):
        cal.window(as_day("2000-01-10"), 30)


def make_probe(cal: TradingCalendar, last: str, calls: list[str], fail: set[str] | None = None):
    async def probe(day: np.datetime64) -> bool | None:
        calls.append(day_str(day))
        if fail and day_str(day) in fail:
            return None
        return bool(day <= as_day(last))

    return probe


@pytest.mark.parametrize("last", ["2026-11-13", "2026-11-20", "2026-11-25", "2026-10-01", "2026-11-12"])
async def test_latest_session_probes_to_the_source(cal: TradingCalendar, last: str) -> None:
    calls: list[str] = []
    latest = LatestSession(cal, make_probe(cal, last, calls), ttl=60, now=lambda: NOW)
    assert day_str(await latest.get()) == last
    n = len(calls)
    assert n <= 12
    # Cached: no probe on the second call.
    assert day_str(await latest.get()) == last
    assert len(calls) == n


async def test_latest_session_falls_back_when_a_probe_fails(cal: TradingCalendar) -> None:
    calls: list[str] = []
    latest = LatestSession(
        cal,
        make_probe(cal, "2026-11-20", calls, fail={"2026-11-16"}),
        ttl=60,
        now=lambda: NOW,
    )
    assert day_str(await latest.get()) == "2026-11-13"


async def test_a_failed_probe_keeps_the_newer_session_already_seen(cal: TradingCalendar) -> None:
    calls: list[str] = []
    failing: set[str] = set()
    latest = LatestSession(
        cal,
        make_probe(cal, "2026-11-18", calls, fail=failing),
        ttl=0,
        now=lambda: NOW,
    )
    assert day_str(await latest.get()) == "2026-11-18"
    failing.add("2026-11-13")  # the source stops answering: the first probe (the calendar's guess) fails
    assert day_str(await latest.get()) == "2026-11-18"
    assert calls[-1] == "2026-11-13"


async def test_a_fresh_process_whose_probe_fails_takes_the_newest_stored_session(cal: TradingCalendar) -> None:
    calls: list[str] = []
    asked: list[str] = []

    async def known(day: np.datetime64) -> np.datetime64 | None:
        asked.append(day_str(day))
        return as_day("2026-11-10")

    # The source (say a simulator whose today is behind the wall clock) does not answer the guess.
    latest = LatestSession(
        cal,
        make_probe(cal, "2026-11-10", calls, fail={"2026-11-13"}),
        ttl=0,
        now=lambda: NOW,
        known=known,
    )
    assert day_str(await latest.get()) == "2026-11-10"
    assert asked == ["2026-11-13"]

    async def nothing(day: np.datetime64) -> np.datetime64 | None:
        return None

    # Nothing stored either: the calendar's guess, as before.
    latest = LatestSession(
        cal,
        make_probe(cal, "2026-11-10", calls, fail={"2026-11-13"}),
        ttl=0,
        now=lambda: NOW,
        known=nothing,
    )
    assert day_str(await latest.get()) == "2026-11-13"


async def test_a_session_asked_for_is_kept_fresh_in_the_background(cal: TradingCalendar) -> None:
    calls: list[str] = []
    latest = LatestSession(cal, make_probe(cal, "2026-11-13", calls), ttl=0.05, now=lambda: NOW)
    keeper = asyncio.create_task(latest.keep_fresh(idle=0.3))
    try:
        assert day_str(await latest.get()) == "2026-11-13"
        asked = len(calls)
        await asyncio.sleep(0.2)
        assert len(calls) > asked  # probed again with no request waiting for it
        await asyncio.sleep(0.6)  # nobody asked for 0.3 s: the keeper goes quiet
        quiet = len(calls)
        await asyncio.sleep(0.3)
        assert len(calls) == quiet
    finally:
        keeper.cancel()
    assert day_str(await latest.get()) == "2026-11-13"


async def test_without_a_ttl_there_is_nothing_to_keep(cal: TradingCalendar) -> None:
    latest = LatestSession(cal, make_probe(cal, "2026-11-13", []), ttl=0, now=lambda: NOW)
    await asyncio.wait_for(latest.keep_fresh(), timeout=5)


async def test_a_fresh_discovery_asks_the_guess_and_the_next_session_at_once(cal: TradingCalendar) -> None:
    calls: list[str] = []
    in_flight, most = 0, 0

    async def probe(day: np.datetime64) -> bool | None:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        calls.append(day_str(day))
        return bool(day <= as_day("2026-11-13"))

    latest = LatestSession(cal, probe, ttl=0, now=lambda: NOW)
    assert day_str(await latest.get()) == "2026-11-13"
    assert most == 2 and sorted(calls) == ["2026-11-13", "2026-11-16"]
    # Once a session is known, a refresh asks one at a time (the guess is then usually stored).
    calls.clear()
    most = 0
    assert day_str(await latest.get()) == "2026-11-13"
    assert most == 1 and calls == ["2026-11-13", "2026-11-16"]


async def test_the_next_session_asked_ahead_is_left_to_finish_when_the_guess_is_not_served(
    cal: TradingCalendar,
) -> None:
    """Cut off, a probe's request would be counted by the client and never reach the source."""
    finished: list[str] = []

    async def probe(day: np.datetime64) -> bool | None:
        await asyncio.sleep(0.02 if day_str(day) == "2026-11-16" else 0.0)
        finished.append(day_str(day))
        return bool(day <= as_day("2026-11-12"))

    latest = LatestSession(cal, probe, ttl=60, now=lambda: NOW)
    assert day_str(await latest.get()) == "2026-11-12"
    await asyncio.sleep(0.05)
    assert "2026-11-16" in finished


def test_the_calendar_reaches_years_ahead_of_its_clock() -> None:
    cal = TradingCalendar(first_year=2024, years_ahead=1, now=NOW)
    assert day_str(cal.sessions[0]) == "2024-01-02" and day_str(cal.sessions[-1]) == "2027-12-31"


async def test_concurrent_callers_share_one_discovery(cal: TradingCalendar) -> None:
    calls: list[str] = []

    async def probe(day: np.datetime64) -> bool | None:
        calls.append(day_str(day))
        await asyncio.sleep(0.01)
        return bool(day <= as_day("2026-11-20"))

    latest = LatestSession(cal, probe, ttl=60, now=lambda: NOW)
    answers = await asyncio.gather(*(latest.get() for _ in range(5)))
    assert {day_str(a) for a in answers} == {"2026-11-20"}
    alone: list[str] = []
    await LatestSession(cal, make_probe(cal, "2026-11-20", alone), ttl=60, now=lambda: NOW).get()
    assert sorted(calls) == sorted(alone)  # the probes of one discovery, not five
