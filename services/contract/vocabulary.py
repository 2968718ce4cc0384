"""The Flutter app's words for styles and sectors, mapped to the cluster's names. Pure data.

The app sends its chip labels (``Swing``, ``Day``, ``Position``), its randomize list's sector names
(``Technology``, ``Healthcare``, ``Financial Services``) and, from other clients, common GICS and
Morningstar spellings. Every alias is lower case; lookups lower-case and trim the given word.
"""

from __future__ import annotations

from types import MappingProxyType

from services.contract.sectors import SECTORS, UNKNOWN
from services.contract.styles import STYLE_NAMES

STYLE_ALIASES: MappingProxyType[str, str] = MappingProxyType(
    {
        **{name.lower(): name for name in STYLE_NAMES},
        "day": "Day",
        "day trade": "Day",
        "daytrade": "Day",
        "intraday": "Day",
        "swing": "Short-term swing",
        "short": "Short-term swing",
        "short swing": "Short-term swing",
        "short-term": "Short-term swing",
        "medium": "Medium-term swing",
        "medium swing": "Medium-term swing",
        "medium-term": "Medium-term swing",
        "position": "Position",
        "long-term": "Position",
        "long term": "Position",
        "investor": "Position",
    }
)

SECTOR_ALIASES: MappingProxyType[str, str] = MappingProxyType(
    {
        **{name.lower(): name for name in (*SECTORS, UNKNOWN)},
        "technology": "Information Technology",
        "tech": "Information Technology",
        "it": "Information Technology",
        "info tech": "Information Technology",
        "healthcare": "Health Care",
        "health": "Health Care",
        "financial services": "Financials",
        "financial": "Financials",
        "finance": "Financials",
        "consumer cyclical": "Consumer Discretionary",
        "consumer discretionary": "Consumer Discretionary",
        "discretionary": "Consumer Discretionary",
        "consumer defensive": "Consumer Staples",
        "staples": "Consumer Staples",
        "basic materials": "Materials",
        "communication": "Communication Services",
        "communications": "Communication Services",
        "telecom": "Communication Services",
        "telecommunication services": "Communication Services",
        "industrial": "Industrials",
        "utility": "Utilities",
        "real-estate": "Real Estate",
        "realestate": "Real Estate",
    }
)


def canonical_style(word: str) -> str | None:
    """The trade style's display name for ``word``, or None when it is not one."""
    return STYLE_ALIASES.get(word.strip().lower())


def canonical_sector(word: str) -> str | None:
    """The GICS sector name for ``word``, or None when it is not one."""
    return SECTOR_ALIASES.get(word.strip().lower())
