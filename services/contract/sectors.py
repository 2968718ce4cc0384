"""The sector names the cluster uses: the 11 GICS sectors, plus one for unmapped industry codes."""

from __future__ import annotations

UNKNOWN = "Unknown"
SECTORS: tuple[str, ...] = (
    "Energy",
    "Materials",
    "Industrials",
    "Consumer Discretionary",
    "Consumer Staples",
    "Health Care",
    "Financials",
    "Information Technology",
    "Communication Services",
    "Utilities",
    "Real Estate",
)
