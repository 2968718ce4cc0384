"""Reasons a requested symbol is not ranked that more than one process writes or reads."""

from __future__ import annotations

# Every prefilter reason starts with this ("prefilter_price", "prefilter_sector", ...).
PREFILTER_PREFIX = "prefilter_"
SKIP_UNKNOWN = "unknown_symbol"
SKIP_NO_SNAPSHOT = "no_snapshot"
# Reasons decided before any bar is fetched: the symbols they cover were never sent to the fetcher.
GATEWAY_SKIPS: frozenset[str] = frozenset({SKIP_UNKNOWN, SKIP_NO_SNAPSHOT})
