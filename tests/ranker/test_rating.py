"""Each subscore, the risk damping and the signal bands on hand-built feature rows."""

from __future__ import annotations

import numpy as np
import pytest

from services.contract.styles import SUBSCORES, style_for
from services.ranker import rating
from tests.ranker.synthetic import FEATURES

DAY, POSITION = style_for("Day"), style_for("Position")


def row(**values: float) -> dict[str, np.ndarray]:
    """One row with every feature NaN except ``values``."""
    out = {name: np.array([np.nan]) for name in FEATURES}
    out.update({k: np.array([v], dtype=np.float64) for k, v in values.items()})
    return out


def sub(name: str, **values: float) -> float:
    return float(rating.subscores(row(**values))[name][0])


def test_no_finite_input_is_neutral() -> None:
    subs = rating.subscores(row())
    assert {k: float(v[0]) for k, v in subs.items()} == dict.fromkeys(SUBSCORES, 50.0)


def test_trend() -> None:
    assert sub(
        "trend", dist_sma_50=0.10, dist_sma_200=0.20, ema_20_50_spread=0.05, plus_di_14=30, minus_di_14=10
    ) == pytest.approx(100)
    assert sub(
        "trend", dist_sma_50=-0.5, dist_sma_200=-0.2, ema_20_50_spread=-0.05, plus_di_14=10, minus_di_14=30
    ) == pytest.approx(0)
    assert sub("trend", dist_sma_50=0.05) == pytest.approx(75)
    assert sub("trend", dist_sma_50=3.0) == pytest.approx(100)  # clipped


def test_momentum() -> None:
    assert sub("momentum", ret_21d=0.15, ret_63d=0.3, ret_126d=0.5, roc_10=0.1, macd_hist_pct=0.01) == 100
    assert sub("momentum", ret_21d=-0.075) == pytest.approx(25)
    assert sub("momentum", ret_21d=-0.15, ret_63d=0.30) == pytest.approx(50)


def test_volume_signs_relative_volume_by_the_day() -> None:
    assert sub("volume", ret_1d=0.02, rel_volume_20=2.5) == pytest.approx(100)
    assert sub("volume", ret_1d=-0.02, rel_volume_20=2.5) == pytest.approx(0)
    assert sub("volume", obv_slope_21=0.25) == pytest.approx(75)


def test_volatility_prefers_calm() -> None:
    assert sub("volatility", realized_vol_21=0.15) == pytest.approx(100)
    assert sub("volatility", realized_vol_21=0.80) == pytest.approx(0)
    assert sub("volatility", bb_width=0.225) == pytest.approx(50)
    # Contracting volatility (21-session well below 63-session) scores high.
    contracting = sub("volatility", realized_vol_21=0.3, realized_vol_63=0.45)
    expanding = sub("volatility", realized_vol_21=0.3, realized_vol_63=0.2)
    assert contracting > expanding


def test_oscillator_peaks_in_the_strong_zone() -> None:
    assert sub("oscillator", rsi_14=60) == pytest.approx(100)
    assert sub("oscillator", rsi_14=80) == pytest.approx(50)
    assert sub("oscillator", rsi_14=20) == pytest.approx(0)
    assert sub("oscillator", cci_20=0) == pytest.approx(50)


def test_breakout() -> None:
    assert sub("breakout", dist_52w_high=0.0, bb_pct_b=1.0, body_pct=1.0) == pytest.approx(100)
    assert sub("breakout", dist_52w_high=-0.3) == pytest.approx(0)
    assert sub("breakout", body_pct=0.0) == pytest.approx(50)


def test_rating_weights_and_risk_damping() -> None:
    subs = {name: np.array([100.0, 100.0, 0.0]) for name in SUBSCORES}
    r = rating.tech_rating(subs, np.array([2.0, 10.0, np.nan]), DAY)
    assert r.tolist() == pytest.approx([100.0, 75.0, 0.0])
    only_trend = {name: np.array([100.0 if name == "trend" else 50.0]) for name in SUBSCORES}
    assert rating.tech_rating(only_trend, np.array([1.0]), POSITION)[0] == pytest.approx(50 + 50 * 0.40)
    assert rating.tech_rating(only_trend, np.array([1.0]), DAY)[0] == pytest.approx(50 + 50 * 0.10)


@pytest.mark.parametrize(
    ("value", "day", "position"),
    [
        (100, "Strong Long", "Strong Long"),
        (70, "Strong Long", "Strong Long"),
        (69.9, "Long", "Long"),
        (58, "Long", "Long"),
        (50, "Neutral", "Neutral"),
        (42, "Neutral", "Neutral"),
        (41.9, "Short", "Avoid"),
        (30, "Short", "Avoid"),
        (29.9, "Strong Short", "Avoid"),
        (0, "Strong Short", "Avoid"),
    ],
)
def test_bands(value: float, day: str, position: str) -> None:
    labels, sides = rating.signals(np.array([value]), DAY)
    assert labels[0] == day
    assert sides[0] == ("short" if "Short" in day else "long" if "Long" in day else "flat")
    assert rating.signals(np.array([value]), POSITION)[0][0] == position


def test_every_style_has_one_band_per_rating() -> None:
    for style in (DAY, POSITION):
        lowers = [b.lower for b in rating.bands_for(style)]
        assert lowers == sorted(lowers, reverse=True) and lowers[-1] == -np.inf
