"""Technical rating 0-100 from six subscores, and the signal bands, vectorised over a universe.

Each subscore is the mean of a few components; a component maps one named feature (the feature
list of services/contract/features.py) to 0-100 with a clipped function:

- ``Ramp(feature, at0, at100)``: linear, 0 at ``at0`` and 100 at ``at100``, clipped (``at0 > at100``
  makes it decreasing: lower is better).
- ``Peak(feature, center, width)``: 100 at ``center``, falling linearly to 0 at ``center +- width``.

Subscores (bullish = high, so a low rating is bearish and mirrors into short signals):

- trend: price above its 50- and 200-session averages, EMA20 above EMA50, +DI over -DI.
- momentum: 1-, 3- and 6-month returns, 10-session rate of change, MACD histogram.
- volume: OBV slope, and relative volume signed by the day's direction.
- volatility: calm is better: low realised volatility, narrow bands, volatility contracting.
- oscillator: RSI, stochastic and %B near the strong-but-not-stretched zone, CCI.
- breakout: near the 52-week high, upper half of the Bollinger band, strong close in the range.

A component whose feature is NaN is left out of its subscore's mean; a subscore with no finite
component is neutral (50). The rating is the style-weighted sum of the subscores, pulled toward
50 for volatile names (risk damping by ATR %): full weight up to ``ATR_CALM`` percent, down to
``1 - RISK_DAMP_MAX`` of it at ``ATR_WILD`` percent and beyond.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from services.contract.columns import SIGNALS
from services.contract.styles import SUBSCORES, TradeStyleSpec

NEUTRAL = 50.0
ATR_CALM = 3.0
ATR_WILD = 10.0
RISK_DAMP_MAX = 0.5


@dataclass(frozen=True)
class Ramp:
    feature: str
    at0: float
    at100: float

    def score(self, x: np.ndarray) -> np.ndarray:
        return np.clip((x - self.at0) / (self.at100 - self.at0), 0.0, 1.0) * 100.0


@dataclass(frozen=True)
class Peak:
    feature: str
    center: float
    width: float

    def score(self, x: np.ndarray) -> np.ndarray:
        return np.clip(1.0 - np.abs(x - self.center) / self.width, 0.0, 1.0) * 100.0


Component = Ramp | Peak

# Inputs derived from several features (named here, computed by derived_inputs).
DERIVED = ("di_balance", "signed_rel_volume", "vol_contraction")

COMPONENTS: Mapping[str, tuple[Component, ...]] = {
    "trend": (
        Ramp("dist_sma_50", -0.10, 0.10),
        Ramp("dist_sma_200", -0.20, 0.20),
        Ramp("ema_20_50_spread", -0.05, 0.05),
        Ramp("di_balance", -0.5, 0.5),
    ),
    "momentum": (
        Ramp("ret_21d", -0.15, 0.15),
        Ramp("ret_63d", -0.30, 0.30),
        Ramp("ret_126d", -0.50, 0.50),
        Ramp("roc_10", -0.10, 0.10),
        Ramp("macd_hist_pct", -0.01, 0.01),
    ),
    "volume": (
        Ramp("obv_slope_21", -0.5, 0.5),
        Ramp("signed_rel_volume", -1.5, 1.5),
    ),
    "volatility": (
        Ramp("realized_vol_21", 0.80, 0.15),
        Ramp("bb_width", 0.40, 0.05),
        Ramp("vol_contraction", 1.5, 0.7),
    ),
    "oscillator": (
        Peak("rsi_14", 60.0, 40.0),
        Peak("stoch_k", 65.0, 55.0),
        Peak("bb_pct_b", 0.7, 0.8),
        Ramp("cci_20", -150.0, 150.0),
    ),
    "breakout": (
        Ramp("dist_52w_high", -0.30, 0.0),
        Ramp("bb_pct_b", 0.3, 1.0),
        Ramp("body_pct", -1.0, 1.0),
    ),
}
assert tuple(COMPONENTS) == SUBSCORES

# Features of the features block the rating reads (the derived inputs come from these).
REQUIRED_FEATURES: tuple[str, ...] = tuple(
    sorted(
        {c.feature for comps in COMPONENTS.values() for c in comps if c.feature not in DERIVED}
        | {"plus_di_14", "minus_di_14", "rel_volume_20", "ret_1d", "realized_vol_63", "atr_14_pct"}
    )
)


@dataclass(frozen=True)
class Band:
    """A signal band: rows rated at or above ``lower`` (and below the next band up) get ``label``."""

    label: str
    lower: float
    # "long", "flat" or "short": the side of the trade plan.
    side: str
    # None: every style; True: only styles that allow shorts; False: only those that do not.
    shorts: bool | None


# The label of a row whose rating is not a number: no signal (the app shows none).
NO_SIGNAL = ""
# The thresholds, in one table, highest first. Shorts mirror the long bands around 50.
SIGNAL_BANDS: tuple[Band, ...] = (
    Band("Strong Long", 70.0, "long", None),
    Band("Long", 58.0, "long", None),
    Band("Neutral", 42.0, "flat", None),
    Band("Short", 30.0, "short", True),
    Band("Strong Short", -np.inf, "short", True),
    Band("Avoid", -np.inf, "flat", False),
)
if tuple(b.label for b in SIGNAL_BANDS) != SIGNALS:
    raise ImportError("the signal bands and the contract's SIGNALS name different labels")


def derived_inputs(f: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The derived component inputs: DI balance, direction-signed relative volume, vol contraction."""
    with np.errstate(divide="ignore", invalid="ignore"):
        plus, minus = f["plus_di_14"], f["minus_di_14"]
        di_balance = (plus - minus) / (plus + minus)
        signed_rel_volume = np.sign(f["ret_1d"]) * (f["rel_volume_20"] - 1.0)
        vol_contraction = f["realized_vol_21"] / f["realized_vol_63"]
    return {"di_balance": di_balance, "signed_rel_volume": signed_rel_volume, "vol_contraction": vol_contraction}


def subscores(features: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every subscore (0-100, float64) for every row; features are columns of equal length."""
    cols = {name: np.asarray(features[name], dtype=np.float64) for name in REQUIRED_FEATURES}
    cols.update(derived_inputs(cols))
    out: dict[str, np.ndarray] = {}
    for name, comps in COMPONENTS.items():
        scores = np.stack([c.score(cols[c.feature]) for c in comps])
        finite = np.isfinite(scores)
        count = finite.sum(axis=0)
        total = np.where(finite, scores, 0.0).sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[name] = np.where(count > 0, total / count, NEUTRAL)
    return out


def risk_damping(atr_pct: np.ndarray) -> np.ndarray:
    """Multiplier (1 down to 1 - RISK_DAMP_MAX) of the rating's distance from 50; NaN ATR -> 1."""
    excess = np.clip((np.asarray(atr_pct, dtype=np.float64) - ATR_CALM) / (ATR_WILD - ATR_CALM), 0.0, 1.0)
    return np.where(np.isfinite(excess), 1.0 - RISK_DAMP_MAX * excess, 1.0)


def tech_rating(subs: Mapping[str, np.ndarray], atr_pct: np.ndarray, style: TradeStyleSpec) -> np.ndarray:
    """Style-weighted subscores, damped toward 50 by risk, clipped to 0-100."""
    raw = sum(style.weights[name] * subs[name] for name in SUBSCORES)
    return np.clip(NEUTRAL + (np.asarray(raw) - NEUTRAL) * risk_damping(atr_pct), 0.0, 100.0)


def bands_for(style: TradeStyleSpec) -> tuple[Band, ...]:
    """The bands that apply to ``style``, highest first."""
    return tuple(b for b in SIGNAL_BANDS if b.shorts is None or b.shorts == style.allow_shorts)


def signals(rating: np.ndarray, style: TradeStyleSpec) -> tuple[np.ndarray, np.ndarray]:
    """(signal label, plan side) per row for ``style``. A rating that is not a number gets no signal
    ("", flat): searchsorted would put NaN above every threshold, in the strongest long band."""
    bands = bands_for(style)
    values = np.asarray(rating, dtype=np.float64)
    # Thresholds ascending for searchsorted: band i (highest first) starts at lowers[i].
    lowers = np.array([b.lower for b in bands[::-1]])
    idx = np.searchsorted(lowers, values, side="right") - 1
    idx = len(bands) - 1 - np.clip(idx, 0, len(bands) - 1)
    labels = np.array([b.label for b in bands], dtype=object)[idx]
    sides = np.array([b.side for b in bands], dtype=object)[idx]
    unrated = np.isnan(values)
    labels[unrated], sides[unrated] = NO_SIGNAL, "flat"
    return labels, sides
