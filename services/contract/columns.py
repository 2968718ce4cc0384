"""Columns of a ranked row that clients sort and filter on, the signal labels, and page limits."""

from __future__ import annotations

from services.contract.features import FEATURES
from services.contract.styles import SUBSCORES

SUBSCORE_COLUMNS: tuple[str, ...] = tuple(f"{s}_score" for s in SUBSCORES)
NUMBER_COLUMNS: tuple[str, ...] = (
    "rank",
    "tech_rating",
    "alpha_score",
    "composite_score",
    "percentile",
    "sector_percentile",
    "rating_percentile",
    "alpha_percentile",
    "win_prob_10d",
    "alpha_5d",
    "alpha_10d",
    "last_close",
    "change_pct",
    "atr_pct",
    "avg_dollar_volume",
    "market_cap",
    "entry",
    "stop",
    "target",
    "reward_risk",
    "position_size",
    *SUBSCORE_COLUMNS,
)
TEXT_COLUMNS: tuple[str, ...] = ("symbol", "name", "sector", "industry", "signal", "side")
# Columns a page may be sorted by, and columns a range filter may address.
SORT_COLUMNS: frozenset[str] = frozenset((*NUMBER_COLUMNS, *FEATURES, *TEXT_COLUMNS))
RANGE_COLUMNS: frozenset[str] = frozenset((*NUMBER_COLUMNS, *FEATURES))

# Signal bands, best first; "Short"/"Strong Short" only where a style allows shorts, "Avoid" elsewhere.
SIGNALS: tuple[str, ...] = ("Strong Long", "Long", "Neutral", "Short", "Strong Short", "Avoid")
LONG_SIGNALS: frozenset[str] = frozenset({"Strong Long", "Long"})

DEFAULT_SORT = "composite_score"
DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000
