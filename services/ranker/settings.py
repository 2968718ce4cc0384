"""Ranker settings (environment only; see services/common/settings.py for the shared ones)."""

from __future__ import annotations

from services.common.settings import CommonSettings


class RankerSettings(CommonSettings):
    ranker_port: int = 50053
    # Weight of the alpha percentile in the composite score (DESIGN section 6).
    alpha_weight: float = 0.35
