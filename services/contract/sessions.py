"""When a ranked scan stops being current: at the next XNYS close, a newer as-of session exists.

The ranker expires its cached scans and the gateway its cached answers by the same rule.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

import exchange_calendars as xcals
import pandas as pd


@lru_cache(maxsize=1)
def _calendar() -> xcals.ExchangeCalendar:
    return xcals.get_calendar("XNYS")


def ttl_until_next_close(now: dt.datetime | None = None, min_seconds: float = 60.0) -> float:
    """Seconds from ``now`` (UTC) to the next XNYS session close, at least ``min_seconds``."""
    moment = pd.Timestamp(now or dt.datetime.now(dt.UTC))
    moment = moment.tz_localize("UTC") if moment.tzinfo is None else moment.tz_convert("UTC")
    close = _calendar().next_close(moment.floor("min"))
    return max(min_seconds, (close - moment).total_seconds())
