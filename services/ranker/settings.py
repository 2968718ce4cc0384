"""Ranker settings (environment only; see services/common/settings.py for the shared ones)."""

from __future__ import annotations

from services.common.settings import CommonSettings


class RankerSettings(CommonSettings):
    ranker_port: int = 50053
    # Weight of the alpha percentile in the composite score.
    alpha_weight: float = 0.35
    # Dollars risked per trade plan between entry and stop (sets the position size).
    account_risk_usd: float = 1000.0
    # Composite damping below this 20-session average dollar volume: factor 1 - damping at zero.
    ranker_liquidity_floor_usd: float = 20_000_000.0
    ranker_liquidity_damping: float = 0.3
    # Biggest gainers and losers reported per scan (each).
    ranker_movers: int = 5
    # Decoded ranked scans kept in process memory; shortest cache lifetime in seconds.
    ranker_cache_scans: int = 16
    ranker_min_ttl_seconds: float = 60.0
