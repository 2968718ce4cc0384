"""Trade plans (vectorised) and the one-line rationale of a row.

Long: entry = last close, stop = entry - k * ATR(14), target = entry + m * k * ATR, where k is the
style's stop multiple and m its reward/risk multiple. Short sides mirror it (a target is never
below one cent). Position size: whole shares risking the configured account risk between entry
and stop.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from services.ranker.styles import TradeStyleSpec

MIN_PRICE = 0.01


@dataclass(frozen=True)
class Plans:
    entry: np.ndarray
    stop: np.ndarray
    target: np.ndarray
    reward_risk: np.ndarray
    position_size: np.ndarray


def trade_plans(close: np.ndarray, atr: np.ndarray, short: np.ndarray, style: TradeStyleSpec,
                account_risk: float) -> Plans:
    """Entry, stop, target, reward/risk and position size per row; NaN where ATR is unusable."""
    entry = np.asarray(close, dtype=np.float64)
    risk = style.stop_atr * np.asarray(atr, dtype=np.float64)
    risk = np.where(np.isfinite(risk) & (risk > 0), risk, np.nan)
    sign = np.where(short, -1.0, 1.0)
    stop = entry - sign * risk
    target = np.maximum(entry + sign * style.reward_risk * risk, MIN_PRICE)
    with np.errstate(invalid="ignore", divide="ignore"):
        reward_risk = (target - entry) / (entry - stop)
        size = np.floor(account_risk / risk)
    return Plans(entry=entry, stop=stop, target=target, reward_risk=reward_risk, position_size=size)


def rationale(signal: str, subscores: Mapping[str, float], alpha_5d: float, alpha_10d: float,
              alpha_score: float) -> str:
    """``"Long: trend 81 and momentum 74 lead, breakout weakest (32); models +1.10 (5d +0.80, 10d +1.30)"``."""
    ranked = sorted(subscores.items(), key=lambda kv: kv[1], reverse=True)
    (a, va), (b, vb) = ranked[0], ranked[1]
    low, vlow = ranked[-1]
    models = ("models n/a" if not np.isfinite(alpha_score)
              else f"models {alpha_score:+.2f} (5d {alpha_5d:+.2f}, 10d {alpha_10d:+.2f})")
    return f"{signal}: {a} {va:.0f} and {b} {vb:.0f} lead, {low} weakest ({vlow:.0f}); {models}"
