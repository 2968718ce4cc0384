"""Trade plans (vectorised) and the one-line rationale of a row.

Long: entry = last close, stop = entry - k * ATR(14), target = entry + m * k * ATR, where k is the
style's stop multiple and m its reward/risk multiple. Short sides mirror it (a target is never
below one cent). Position size: whole shares risking the configured account risk between entry
and stop.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from services.contract.styles import SUBSCORES, TradeStyleSpec

MIN_PRICE = 0.01


@dataclass(frozen=True)
class Plans:
    entry: np.ndarray
    stop: np.ndarray
    target: np.ndarray
    reward_risk: np.ndarray
    position_size: np.ndarray


def trade_plans(
    close: np.ndarray, atr: np.ndarray, short: np.ndarray, style: TradeStyleSpec, account_risk: float
) -> Plans:
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


def rationales(
    signals: Sequence[str], subscores: np.ndarray, alpha_5d: np.ndarray, alpha_10d: np.ndarray, alpha_score: np.ndarray
) -> list[str]:
    """Per row: ``"Long: trend 81 and momentum 74 lead, breakout weakest (32); models +1.10 (5d +0.80, 10d +1.30)"``.

    ``subscores`` is (rows, len(SUBSCORES)); ties keep the SUBSCORES order.
    """
    subs = np.asarray(subscores, dtype=np.float64)
    rank = np.argsort(-subs, axis=1, kind="stable")
    picks = np.take_along_axis(subs, rank[:, [0, 1, -1]], axis=1).tolist()
    names = [[SUBSCORES[i] for i in r] for r in rank[:, [0, 1, -1]].tolist()]
    out = []
    for signal, (a, b, low), (va, vb, vlow), s, a5, a10 in zip(
        signals,
        names,
        picks,
        np.asarray(alpha_score).tolist(),
        np.asarray(alpha_5d).tolist(),
        np.asarray(alpha_10d).tolist(),
        strict=True,
    ):
        models = f"models {s:+.2f} (5d {a5:+.2f}, 10d {a10:+.2f})" if math.isfinite(s) else "models n/a"
        out.append(f"{signal}: {a} {va:.0f} and {b} {vb:.0f} lead, {low} weakest ({vlow:.0f}); {models}")
    return out
