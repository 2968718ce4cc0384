"""Market simulator settings (environment only; see services/common/settings.py for the shared ones)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from pydantic import Field, field_validator

from services.common.settings import PROJECT_ROOT, CommonSettings

SIMULATOR_API_KEY = "technic-simulator"


class MarketsimSettings(CommonSettings):
    """``TECHNIC_MARKETSIM_*``: where to listen, which market to simulate, initial fault knobs."""

    marketsim_host: str = "127.0.0.1"
    marketsim_port: int = 8900
    marketsim_api_key: str = SIMULATOR_API_KEY
    marketsim_seed: int = 7
    marketsim_n_tickers: int = 11_000
    marketsim_history_sessions: int = 800
    marketsim_future_sessions: int = 10
    # Empty: the latest completed XNYS session by the wall clock.
    marketsim_today: dt.date | None = None
    marketsim_cache_dir: Path = PROJECT_ROOT / ".cache" / "marketsim"
    # Bytes of pre-serialised responses kept in memory (least recently used evicted first).
    marketsim_response_cache_mb: int = 512
    # Unadjusted grouped-daily days (with OTC, as the fetcher asks) built in the background at start,
    # newest first, so a cold scan's requests are answered from memory.
    marketsim_warm_sessions: int = 260
    # Initial fault knobs as JSON (same keys as POST /admin/faults), e.g. '{"latency_ms": 50}'.
    marketsim_faults: dict[str, float | bool] = Field(default_factory=dict)
    # Seed of the fault dice, so a fault sequence can be replayed.
    marketsim_fault_seed: int = 1

    @field_validator("marketsim_today", mode="before")
    @classmethod
    def _empty_today_is_none(cls, value: object) -> object:
        return None if value == "" else value
