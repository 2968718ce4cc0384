"""Alpha blend, composite, win-probability calibration, market regime and trade plans."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from services.ranker.plan import rationales, trade_plans
from services.ranker.scoring import (
    CalibrationError,
    WinProbCalibration,
    alpha_score,
    composite,
    liquidity_factor,
    load_calibration,
    market_regime,
)
from services.ranker.styles import STYLE_NAMES, UnknownStyleError, style_for
from technic.v1 import scan_pb2
from tests.ranker.conftest import write_metadata

DAY, POSITION = style_for("Day"), style_for("Position")


def test_style_table_lookups() -> None:
    assert style_for(scan_pb2.TRADE_STYLE_UNSPECIFIED).name == "Short-term swing"
    assert style_for("medium-term swing").enum_value == scan_pb2.TRADE_STYLE_MEDIUM_TERM_SWING
    assert style_for(None).name == "Short-term swing"
    for name in STYLE_NAMES:
        spec = style_for(name)
        assert sum(spec.weights.values()) == pytest.approx(1.0)
        assert style_for(spec.enum_value) is spec
    assert DAY.blend_5d > 0.5 > POSITION.blend_5d
    with pytest.raises(UnknownStyleError, match="allowed: Day, Short-term swing"):
        style_for("Scalping")


def test_alpha_blend_leans_by_style() -> None:
    a5 = np.array([1.0, 0.0, -1.0, np.nan])
    a10 = np.array([-1.0, 0.0, 1.0, 2.0])
    mask = np.ones(4, dtype=bool)
    day, position = alpha_score(a5, a10, mask, DAY), alpha_score(a5, a10, mask, POSITION)
    assert day[0] > 0 > position[0]  # the 5-session model dominates Day, the 10-session one Position
    assert np.isfinite(day[3])  # one model missing: the other one alone
    assert np.isnan(alpha_score(np.array([np.nan]), np.array([np.nan]), np.ones(1, bool), DAY)[0])


def test_composite_weights_and_liquidity_damping() -> None:
    rating = np.array([10.0, 20.0, 30.0])
    alpha = np.array([3.0, 2.0, 1.0])
    liquid = np.full(3, 1e9)
    c = composite(rating, alpha, liquid, np.ones(3, bool), 0.35, 20e6, 0.3)
    assert c.score.tolist() == pytest.approx([0.65 * 0 + 0.35 * 100, 50.0, 0.65 * 100])
    thin = composite(rating, alpha, np.array([0.0, 10e6, np.nan]), np.ones(3, bool), 0.35, 20e6, 0.3)
    assert (thin.score / c.score).tolist() == pytest.approx([0.7, 0.85, 0.7])
    assert liquidity_factor(np.array([40e6]), 20e6, 0.3)[0] == 1.0


def test_win_probability_interpolates_the_calibration_table(calibration: WinProbCalibration) -> None:
    centers = calibration.centers
    p = calibration(np.array([centers[0] - 5, centers[2], (centers[2] + centers[3]) / 2, 1e12, np.nan]))
    assert p[:4].tolist() == pytest.approx([0.40, 0.51, 0.53, 0.62])
    assert np.isnan(p[4])
    grid = calibration(np.linspace(-3, 3, 101))
    assert (np.diff(grid) >= 0).all()


def test_calibration_with_infinite_outer_edges() -> None:
    cal = WinProbCalibration.from_metadata(
        {"win_prob": {"edges": [-np.inf, 0.0, np.inf], "p_up": [0.4, 0.6]}}, "inline"
    )
    assert cal(np.array([-1.0, 0.0, 1.0])).tolist() == pytest.approx([0.4, 0.5, 0.6])


def test_missing_or_bad_metadata_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(CalibrationError, match=r"alpha_10d\.json not found.*TECHNIC_MODEL_DIR"):
        load_calibration(tmp_path / "nowhere")
    write_metadata(tmp_path / "short", {"edges": [0, 1], "p_up": [0.5, 0.6]})
    with pytest.raises(CalibrationError, match="len\\(edges\\) == len\\(p_up\\) \\+ 1"):
        load_calibration(tmp_path / "short")
    write_metadata(tmp_path / "none", None)
    with pytest.raises(CalibrationError, match="no win_prob table"):
        load_calibration(tmp_path / "none")
    write_metadata(tmp_path / "range", {"edges": [0, 1, 2], "p_up": [0.5, 1.6]})
    with pytest.raises(CalibrationError, match="lie in \\[0, 1\\]"):
        load_calibration(tmp_path / "range")


def test_market_regime() -> None:
    t = np.arange(260)
    up = 100 * np.exp(0.002 * t + 0.003 * np.sin(t))
    regime = market_regime(up)
    assert (regime.trend, regime.volatility) == ("uptrend", "low")
    assert regime.label == "uptrend / low volatility"
    assert regime.benchmark_sma_200 == pytest.approx(up[-200:].mean())
    down = 100 * np.exp(-0.002 * t + 0.03 * np.sin(t * 2.0))
    regime = market_regime(down)
    assert (regime.trend, regime.volatility) == ("downtrend", "high")
    assert market_regime(np.full(260, 50.0)).trend == "sideways"
    assert market_regime(up[:30]).label == "unknown"


def test_trade_plans_long_and_short() -> None:
    style = style_for("Short-term swing")  # stop 1.5 ATR, reward/risk 2
    p = trade_plans(
        np.array([100.0, 100.0, 100.0]), np.array([2.0, 2.0, np.nan]), np.array([False, True, False]), style, 1000.0
    )
    assert p.stop[:2].tolist() == [97.0, 103.0]
    assert p.target[:2].tolist() == [106.0, 94.0]
    assert p.reward_risk[:2].tolist() == pytest.approx([2.0, 2.0])
    assert p.position_size[:2].tolist() == [333.0, 333.0]
    assert np.isnan([p.stop[2], p.target[2], p.position_size[2]]).all()
    cheap = trade_plans(np.array([1.0]), np.array([1.0]), np.array([True]), style, 1000.0)
    assert cheap.target[0] == 0.01


def test_rationale_names_strongest_subscores_and_models() -> None:
    subs = np.array([[81.0, 74.0, 50.0, 40.0, 60.0, 32.0], [50.0, 50.0, 50.0, 50.0, 50.0, 50.0]])
    nan = float("nan")
    text = rationales(["Long", "Neutral"], subs, np.array([0.8, nan]), np.array([1.3, nan]), np.array([1.1, nan]))
    assert text[0] == "Long: trend 81 and momentum 74 lead, breakout weakest (32); models +1.10 (5d +0.80, 10d +1.30)"
    assert text[1] == "Neutral: trend 50 and momentum 50 lead, breakout weakest (50); models n/a"
    inf = rationales(["Neutral"], subs[1:], np.array([1.0]), np.array([1.0]), np.array([float("inf")]))
    assert inf[0].endswith("models n/a")  # an infinite blend is no score either
