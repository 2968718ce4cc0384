"""Alpha blend, composite score, calibrated win probability and the market regime.

- Alpha score: each model's output (alpha_5d, alpha_10d; per-date z-score units) is z-scored again
  across the scanned universe, then blended per style (``blend_5d`` on the 5-session model, the
  rest on the 10-session one). A row with one model missing uses the other; with both missing, NaN.
- Composite: ``(1 - w) * rating percentile + w * alpha percentile`` (a missing alpha counts as the
  median, 50), multiplied by a liquidity factor: 1 at or above the dollar-volume floor, falling
  linearly to ``1 - damping`` at zero dollar volume.
- Win probability (10 sessions): the calibration table of the model that scored the chunks
  (``edges``, ``p_up``: P(forward return > 0) per bin of the model's prediction, measured out of
  sample at training) arrives with every scan's header, as Compute.Describe reports it. The
  estimate interpolates linearly between bin centres (clamped at the end bins; an open-ended outer
  bin is centred half a typical bin width beyond its finite edge), so it is monotone where the
  table is and never jumps at a bin edge.
- Market regime of the benchmark closes: trend from close vs SMA200 and the SMA50 slope over
  ``SLOPE_SESSIONS``; volatility from the annualised 20-session realised volatility.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from services.contract.models import WIN_PROB_MODEL
from services.contract.styles import TradeStyleSpec
from services.ranker.errors import RankerInputError
from services.ranker.rank import percentile, zscore

SLOPE_SESSIONS = 10
VOL_SESSIONS = 20
# Annualised 20-session realised volatility of the benchmark, percent: below LOW is "low", above
# HIGH is "high", between them "normal".
VOL_LOW = 12.0
VOL_HIGH = 25.0
MIN_REGIME_SESSIONS = 60


class CalibrationError(RankerInputError):
    """The win-probability table is missing or unusable; the message names the table and the defect."""


def alpha_score(alpha_5d: np.ndarray, alpha_10d: np.ndarray, mask: np.ndarray, style: TradeStyleSpec) -> np.ndarray:
    """Style blend of the two models' cross-sectional z-scores over the rows in ``mask``."""
    z5, z10 = zscore(alpha_5d, mask), zscore(alpha_10d, mask)
    blend = style.blend_5d * z5 + (1.0 - style.blend_5d) * z10
    return np.where(np.isfinite(z5) & np.isfinite(z10), blend, np.where(np.isfinite(z5), z5, z10))


def liquidity_factor(dollar_volume: np.ndarray, floor: float, damping: float) -> np.ndarray:
    """1 at or above ``floor``, down to ``1 - damping`` at zero (or unknown) dollar volume."""
    if floor <= 0:
        return np.ones(len(dollar_volume))
    share = np.clip(np.nan_to_num(np.asarray(dollar_volume, dtype=np.float64) / floor, nan=0.0), 0.0, 1.0)
    return 1.0 - damping * (1.0 - share)


@dataclass(frozen=True)
class Composite:
    rating_percentile: np.ndarray
    alpha_percentile: np.ndarray
    score: np.ndarray


def composite(
    rating: np.ndarray,
    alpha: np.ndarray,
    dollar_volume: np.ndarray,
    mask: np.ndarray,
    weight: float,
    floor: float,
    damping: float,
) -> Composite:
    """The composite score (0-100) of every row in ``mask`` from its rating and alpha percentiles."""
    rp = percentile(rating, mask)
    ap = percentile(alpha, mask)
    ap_used = np.where(np.isfinite(ap), ap, 50.0)
    score = ((1.0 - weight) * rp + weight * ap_used) * liquidity_factor(dollar_volume, floor, damping)
    return Composite(rating_percentile=rp, alpha_percentile=ap, score=np.where(mask, score, np.nan))


@dataclass(frozen=True)
class WinProbCalibration:
    """P(forward return > 0) as a function of a model's prediction, from its calibration table."""

    model: str
    version: str
    centers: np.ndarray
    p_up: np.ndarray

    def __call__(self, prediction: np.ndarray) -> np.ndarray:
        x = np.asarray(prediction, dtype=np.float64)
        p = np.interp(np.nan_to_num(x, nan=0.0), self.centers, self.p_up)
        return np.where(np.isfinite(x), p, np.nan)

    @classmethod
    def from_table(
        cls, model: str, version: str, edges: Sequence[float], p_up: Sequence[float], source: str = "win_prob"
    ) -> WinProbCalibration:
        """The calibration of ``model`` (it must be WIN_PROB_MODEL); CalibrationError naming ``source``."""
        if model != WIN_PROB_MODEL:
            raise CalibrationError(
                f"{source} is for model {model!r}; the win probability is calibrated on {WIN_PROB_MODEL!r}"
            )
        try:
            e = np.asarray(edges, dtype=np.float64)
            p = np.asarray(p_up, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise CalibrationError(f"{source} is not numeric: {exc}") from None
        if e.ndim != 1 or p.ndim != 1 or len(p) < 1 or len(e) != len(p) + 1:
            raise CalibrationError(
                f"{source} needs len(edges) == len(p_up) + 1 >= 2, got {len(e)} edges and {len(p)} probabilities"
            )
        if np.any(np.isnan(e)) or np.any(np.diff(e) <= 0) or not np.all(np.isfinite(p)) or np.any((p < 0) | (p > 1)):
            raise CalibrationError(f"{source}: edges must increase and p_up lie in [0, 1]")
        lo, hi = e[:-1], e[1:]
        closed = np.isfinite(lo) & np.isfinite(hi)
        # An open-ended outer bin is centred half a typical bin width beyond its finite edge.
        half = float(np.median(hi[closed] - lo[closed])) / 2.0 if closed.any() else 0.5
        with np.errstate(invalid="ignore"):  # a bin open at both ends has no centre: refused below
            centers = np.where(closed, (lo + hi) / 2.0, np.where(np.isfinite(lo), lo + half, hi - half))
            increasing = np.all(np.diff(centers) > 0)
        if not np.all(np.isfinite(centers)) or not increasing:
            raise CalibrationError(f"{source}: bins must have finite, increasing centres")
        return cls(model=model, version=version, centers=centers, p_up=p)


@dataclass(frozen=True)
class Regime:
    trend: str
    volatility: str
    benchmark_close: float
    benchmark_sma_200: float
    benchmark_volatility: float

    @property
    def label(self) -> str:
        if self.trend == "unknown":
            return "unknown"
        return f"{self.trend} / {self.volatility} volatility"


UNKNOWN_REGIME = Regime("unknown", "unknown", float("nan"), float("nan"), float("nan"))


def market_regime(closes: np.ndarray) -> Regime:
    """Trend x volatility of the benchmark from its closes (oldest first); unknown when too short.

    Trend: "uptrend" when the close is above the SMA200 (the mean of all closes when fewer than
    200) and the SMA50 rose over the last SLOPE_SESSIONS sessions, "downtrend" when both point
    down, else "sideways".
    """
    c = np.asarray(closes, dtype=np.float64).ravel()
    c = c[np.isfinite(c) & (c > 0)]
    if len(c) < MIN_REGIME_SESSIONS:
        return UNKNOWN_REGIME
    close = float(c[-1])
    sma200 = float(c[-200:].mean())
    slope = float(c[-50:].mean() - c[-50 - SLOPE_SESSIONS : -SLOPE_SESSIONS].mean())
    if close > sma200 and slope > 0:
        trend = "uptrend"
    elif close < sma200 and slope < 0:
        trend = "downtrend"
    else:
        trend = "sideways"
    vol = float(np.std(np.diff(np.log(c[-VOL_SESSIONS - 1 :])), ddof=1) * np.sqrt(252) * 100.0)
    return Regime(trend, volatility_level(vol), close, sma200, vol)


def volatility_level(vol: float) -> str:
    """The volatility level: "low" below VOL_LOW, "high" above VOL_HIGH, else "normal" (edges included)."""
    return "low" if vol < VOL_LOW else "high" if vol > VOL_HIGH else "normal"
