"""Fetcher settings (environment only; see services/common/settings.py for the shared ones)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from pydantic import AliasChoices, Field

from services.common.settings import CommonSettings

SIMULATOR_API_KEY = "technic-simulator"


class FetcherSettings(CommonSettings):
    fetcher_port: int = 50052
    polygon_api_key: str = Field(
        default=SIMULATOR_API_KEY, validation_alias=AliasChoices("POLYGON_API_KEY", "TECHNIC_POLYGON_API_KEY")
    )
    polygon_base_url: str = Field(
        default="http://127.0.0.1:8900", validation_alias=AliasChoices("POLYGON_BASE_URL", "TECHNIC_POLYGON_BASE_URL")
    )
    # Polygon client: requests in flight, client-side rate limit (requests/s, 0 = none; the free
    # tier allows 5 a minute, i.e. 0.083), retries with exponential backoff and jitter.
    fetcher_max_in_flight: int = 16
    # Ticker-details requests in flight, on their own gate beside the bar requests, so a first start
    # fetches details while the bars load. Details are small one-per-ticker answers, asked once per name
    # (then cached 24 h): ~4,800 survivors take 5 s of round trips at 48 in flight and 50 ms each, 15 s
    # at 16. Paid plans ask for under about 100 requests/s in all; set the client-side rate limit above
    # (it covers both gates) where a key must stay below that.
    fetcher_details_in_flight: int = 48
    fetcher_rate_limit: float = 0.0
    fetcher_max_retries: int = 6
    fetcher_backoff_base: float = 0.25
    fetcher_backoff_max: float = 8.0
    fetcher_timeout: float = 20.0
    # Panels: symbols per chunk, request limits.
    fetcher_chunk_size: int = 500
    fetcher_max_symbols: int = 20_000
    fetcher_max_lookback: int = 2520
    # How long the source's latest session is trusted before probing again (seconds).
    fetcher_latest_ttl: float = 5.0
    # While the latest session was asked for in the last this many seconds, it is probed again in the
    # background before it expires, so requests do not wait for the probe's round trips.
    fetcher_latest_idle: float = 60.0
    # TTL of the session in progress (its bars are not final yet), seconds.
    fetcher_unfinished_ttl: float = 300.0
    # Decoded raw sessions kept in process memory (about 270 KB each for 11,000 tickers).
    fetcher_session_cache: int = 800
    # Sessions held side by side in the session stack (panel chunks become one numpy take); about
    # 230 KB per session for 11,000 tickers. Longer windows are gathered from the sessions instead.
    fetcher_stack_sessions: int = 300
    # In-process fallback used while Redis is down, in megabytes.
    fetcher_fallback_mb: int = 512
    # A fixed instant (ISO 8601; UTC when no zone is given) the fetcher takes as the wall clock: which
    # sessions have closed or are still trading, how long chunks live. Unset: the real clock. For tests
    # and for serving a source whose market stands still in the past.
    fetcher_now: datetime | None = None

    def clock(self) -> Callable[[], datetime]:
        """The fetcher's ``now`` (UTC): the fixed instant when ``fetcher_now`` is set, else the real clock."""
        fixed = self.fetcher_now
        if fixed is None:
            return lambda: datetime.now(UTC)
        instant = fixed.replace(tzinfo=UTC) if fixed.tzinfo is None else fixed.astimezone(UTC)
        return lambda: instant
