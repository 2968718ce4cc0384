"""The four trade styles in one table: lookback, subscore weights, model blend, stop, target, shorts.

Pure data. A style is looked up by the ``TradeStyle`` enum value of scan.proto or by the display
name the HTTP API uses ("Short-term swing"); the unspecified enum value means the default style,
Short-term swing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from technic.v1 import scan_pb2

# Order of the rating's subscores; weights below follow it.
SUBSCORES: tuple[str, ...] = ("trend", "momentum", "volume", "volatility", "oscillator", "breakout")


class UnknownStyleError(ValueError):
    """The trade style is not one of the four; the message lists the allowed names."""


@dataclass(frozen=True)
class TradeStyleSpec:
    """How one trade style rates, blends and plans."""

    enum_value: int
    name: str
    # Sessions of history fetched by default for this style.
    lookback: int
    # Weights of SUBSCORES (sum to 1).
    weights: Mapping[str, float]
    # Weight of alpha_5d in the alpha blend; alpha_10d gets 1 - blend_5d.
    blend_5d: float
    # Stop distance in ATR(14) multiples.
    stop_atr: float
    # Target distance as a multiple of the stop distance (the reward/risk of the plan).
    reward_risk: float
    # Whether bearish ratings become Short / Strong Short signals (else Avoid).
    allow_shorts: bool


def _weights(*values: float) -> Mapping[str, float]:
    return MappingProxyType(dict(zip(SUBSCORES, values, strict=True)))


STYLES: tuple[TradeStyleSpec, ...] = (
    TradeStyleSpec(
        scan_pb2.TRADE_STYLE_DAY, "Day", 130, _weights(0.10, 0.25, 0.25, 0.10, 0.20, 0.10), 0.80, 1.0, 1.5, True
    ),
    TradeStyleSpec(
        scan_pb2.TRADE_STYLE_SHORT_TERM_SWING,
        "Short-term swing",
        260,
        _weights(0.20, 0.25, 0.15, 0.10, 0.15, 0.15),
        0.65,
        1.5,
        2.0,
        True,
    ),
    TradeStyleSpec(
        scan_pb2.TRADE_STYLE_MEDIUM_TERM_SWING,
        "Medium-term swing",
        260,
        _weights(0.30, 0.25, 0.10, 0.10, 0.10, 0.15),
        0.35,
        2.0,
        2.5,
        False,
    ),
    TradeStyleSpec(
        scan_pb2.TRADE_STYLE_POSITION,
        "Position",
        300,
        _weights(0.40, 0.25, 0.05, 0.15, 0.05, 0.10),
        0.15,
        3.0,
        3.0,
        False,
    ),
)
DEFAULT_STYLE: TradeStyleSpec = STYLES[1]
STYLE_NAMES: tuple[str, ...] = tuple(s.name for s in STYLES)
_BY_ENUM = {s.enum_value: s for s in STYLES} | {scan_pb2.TRADE_STYLE_UNSPECIFIED: DEFAULT_STYLE}
_BY_NAME = {s.name.lower(): s for s in STYLES}


def style_for(value: int | str | None) -> TradeStyleSpec:
    """The style for a TradeStyle enum value or a display name (case-insensitive); None -> default."""
    if value is None or value == "":
        return DEFAULT_STYLE
    spec = _BY_ENUM.get(value) if isinstance(value, int) else _BY_NAME.get(value.strip().lower())
    if spec is None:
        raise UnknownStyleError(f"unknown trade style {value!r}; allowed: {', '.join(STYLE_NAMES)}")
    return spec
