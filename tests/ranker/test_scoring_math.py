"""Scoring by hand: the alpha blend, the composite, the liquidity factor, calibration errors and the regime
against a plain-Python transcription of its documented rule."""

from __future__ import annotations

import math
import statistics
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.contract.styles import style_for
from services.ranker.scoring import (
    MIN_REGIME_SESSIONS,
    CalibrationError,
    WinProbCalibration,
    alpha_score,
    composite,
    liquidity_factor,
    market_regime,
    volatility_level,
)

DAY, POSITION = style_for("Day"), style_for("Position")
Z = math.sqrt(1.5)  # z-scores of 1, 2, 3 (population std sqrt(2/3)) are -Z, 0, Z


def test_alpha_blend_by_hand() -> None:
    a5, a10 = np.array([1.0, 2.0, 3.0, 9.0]), np.array([3.0, 1.0, 2.0, 9.0])
    mask = np.array([True, True, True, False])
    got = alpha_score(a5, a10, mask, DAY)
    b = DAY.blend_5d
    z5, z10 = np.array([-Z, 0.0, Z]), np.array([Z, -Z, 0.0])
    np.testing.assert_allclose(got[:3], b * z5 + (1 - b) * z10, rtol=1e-12)
    assert np.isnan(got[3])


def test_a_row_with_one_model_uses_the_other() -> None:
    a5, a10 = np.array([1.0, 2.0, 3.0, np.nan]), np.array([np.nan, 1.0, 2.0, 3.0])
    got = alpha_score(a5, a10, np.ones(4, dtype=bool), POSITION)
    assert got[0] == pytest.approx(-Z)  # 5-session only
    assert got[3] == pytest.approx(Z)  # 10-session only
    assert np.isfinite(got[1:3]).all()
    assert np.isnan(alpha_score(np.array([np.nan]), np.array([np.nan]), np.array([True]), DAY)).all()


def test_composite_by_hand() -> None:
    rating = np.array([10.0, 20.0, 30.0, 40.0])
    alpha = np.array([np.nan, 1.0, 2.0, 5.0])
    mask = np.array([True, True, True, False])
    c = composite(rating, alpha, np.full(4, 1e9), mask, weight=0.25, floor=0.0, damping=0.5)
    np.testing.assert_array_equal(c.rating_percentile, [0.0, 50.0, 100.0, np.nan])
    np.testing.assert_array_equal(c.alpha_percentile, [np.nan, 0.0, 100.0, np.nan])
    # A missing alpha counts as the median: 0.75 * 0 + 0.25 * 50.
    np.testing.assert_array_equal(c.score, [12.5, 37.5, 100.0, np.nan])


@pytest.mark.parametrize(
    ("dollars", "floor", "expected"),
    [
        ([0.0, 5.0, 10.0, 20.0, np.nan, -3.0], 10.0, [0.6, 0.8, 1.0, 1.0, 0.6, 0.6]),
        ([0.0, 0.25, 1.0], 0.5, [0.6, 0.8, 1.0]),
        ([0.0, 7.0], 0.0, [1.0, 1.0]),  # no floor: no damping, not even at zero
        ([0.0], -1.0, [1.0]),
    ],
)
def test_liquidity_factor_by_hand(dollars: list[float], floor: float, expected: list[float]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = liquidity_factor(np.array(dollars), floor, damping=0.4)
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_calibration_errors_name_the_source_and_the_rule() -> None:
    def refused(model: str, edges: list[float], p_up: list[float]) -> str:
        with pytest.raises(CalibrationError) as err:
            WinProbCalibration.from_table(model, "v1", edges, p_up, source="header.win_prob")
        return str(err.value)

    assert refused("alpha_5d", [0, 1], [0.5]) == (
        "header.win_prob is for model 'alpha_5d'; the win probability is calibrated on 'alpha_10d'"
    )
    assert refused("alpha_10d", [0, 1, 2], [0.5]) == (
        "header.win_prob needs len(edges) == len(p_up) + 1 >= 2, got 3 edges and 1 probabilities"
    )
    assert refused("alpha_10d", [0, 1], [2.0]) == "header.win_prob: edges must increase and p_up lie in [0, 1]"
    assert refused("alpha_10d", [1, 0], [0.5]) == "header.win_prob: edges must increase and p_up lie in [0, 1]"
    assert refused("alpha_10d", [-np.inf, np.inf], [0.5]) == (
        "header.win_prob: bins must have finite, increasing centres"
    )
    ok = WinProbCalibration.from_table("alpha_10d", "v1", [-np.inf, 0.0, 1.0, np.inf], [0.2, 0.5, 0.8])
    np.testing.assert_allclose(ok.centers, [-0.5, 0.5, 1.5])
    np.testing.assert_allclose(ok(np.array([-5.0, 0.5, 1.0, np.nan])), [0.2, 0.5, 0.65, np.nan])


def regime_by_rule(closes: list[float]) -> tuple[str, str]:
    """The documented rule, in plain Python over the positive finite closes."""
    c = [x for x in closes if math.isfinite(x) and x > 0]
    if len(c) < MIN_REGIME_SESSIONS:
        return "unknown", "unknown"
    close, sma200 = c[-1], statistics.fmean(c[-200:])
    slope = statistics.fmean(c[-50:]) - statistics.fmean(c[-60:-10])
    trend = "uptrend" if close > sma200 and slope > 0 else "downtrend" if close < sma200 and slope < 0 else "sideways"
    returns = [math.log(b / a) for a, b in zip(c[-21:-1], c[-20:], strict=True)]
    vol = statistics.stdev(returns) * math.sqrt(252) * 100.0
    return trend, "low" if vol < 12.0 else "high" if vol > 25.0 else "normal"


@st.composite
def benchmark(draw: st.DrawFn) -> list[float]:
    n = draw(st.integers(MIN_REGIME_SESSIONS - 2, 230))
    level = draw(st.sampled_from([0.5, 1.5, 100.0]))
    drift = draw(st.floats(-0.004, 0.004))
    noise = draw(st.sampled_from([0.002, 0.01, 0.03]))
    shocks = draw(st.lists(st.floats(-1, 1), min_size=n, max_size=n))
    closes = [level * math.exp(drift * i + noise * sum(shocks[: i + 1])) for i in range(n)]
    for _ in range(draw(st.integers(0, 3))):  # missing or broken closes are skipped
        closes[draw(st.integers(0, n - 1))] = draw(st.sampled_from([math.nan, 0.0, -5.0, math.inf]))
    return closes


@settings(max_examples=120, deadline=None)
@given(benchmark())
def test_market_regime_follows_its_rule(closes: list[float]) -> None:
    regime = market_regime(np.array(closes))
    assert (regime.trend, regime.volatility) == regime_by_rule(closes)
    kept = [x for x in closes if math.isfinite(x) and x > 0]
    if regime.trend != "unknown":
        returns = [math.log(b / a) for a, b in zip(kept[-21:-1], kept[-20:], strict=True)]
        assert regime.benchmark_volatility == pytest.approx(statistics.stdev(returns) * math.sqrt(252) * 100)
        assert regime.benchmark_close == kept[-1]
        assert regime.benchmark_sma_200 == pytest.approx(statistics.fmean(kept[-200:]), rel=1e-12)


def test_market_regime_edges() -> None:
    flat = [100.0] * 200
    assert market_regime(np.array(flat[:MIN_REGIME_SESSIONS])).trend == "sideways"  # exactly enough closes
    assert market_regime(np.array(flat[: MIN_REGIME_SESSIONS - 1])).trend == "unknown"
    # The close above its average but the 50-session average flat, then rising: sideways, then uptrend.
    assert market_regime(np.array([*flat[:-60], *([100.0] * 59), 101.0])).trend == "uptrend"
    spike = [*flat[:-60], 105.0, *([100.0] * 58), 101.0]  # the spike leaves the older window: slope < 0
    assert market_regime(np.array(spike)).trend == "sideways"
    down = [*flat[:-60], 95.0, *([100.0] * 58), 99.0]  # below average, slope > 0
    assert market_regime(np.array(down)).trend == "sideways"
    assert market_regime(np.array([*flat[:-60], 101.0, *([100.0] * 58), 99.0])).trend == "downtrend"


def table(edges: object, p_up: object, model: str = "alpha_10d", version: str = "v7") -> WinProbCalibration:
    return WinProbCalibration.from_table(model, version, edges, p_up, source="src")  # type: ignore[arg-type]


def test_calibration_centres_by_hand() -> None:
    """Closed bins are centred; an open outer bin sits half the median closed width beyond its edge."""
    cal = table([-np.inf, -1.0, 0.0, 2.0, np.inf], [0.0, 0.4, 0.6, 1.0])
    assert (cal.model, cal.version) == ("alpha_10d", "v7")
    # Closed widths 1 and 2: median 1.5, half 0.75.
    assert cal.centers.tolist() == [-1.75, -0.5, 1.0, 2.75]
    assert cal(np.array([-0.5, 0.25, np.nan, -9.0])).tolist()[:2] == [0.4, 0.5]
    assert np.isnan(cal(np.array([np.nan]))[0]) and cal(np.array([9.0]))[0] == 1.0
    assert table([0, 1], [0.5]).centers.tolist() == [0.5]
    only_open = table([-np.inf, 0.0, np.inf], [0.2, 0.7])
    assert only_open.centers.tolist() == [-0.5, 0.5]  # no closed bin: half a unit


@pytest.mark.parametrize(
    ("edges", "p_up", "message"),
    [
        ([[0, 1], [1, 2]], [0.5], "src needs len(edges) == len(p_up) + 1 >= 2, got 2 edges and 1 probabilities"),
        ([0, 1], [[0.5]], "src needs len(edges) == len(p_up) + 1 >= 2, got 2 edges and 1 probabilities"),
        ([0], [], "src needs len(edges) == len(p_up) + 1 >= 2, got 1 edges and 0 probabilities"),
        ([0, 1, 1], [0.5, 0.5], "src: edges must increase and p_up lie in [0, 1]"),
        ([0, 1], [-0.1], "src: edges must increase and p_up lie in [0, 1]"),
        ([0, 1], [np.nan], "src: edges must increase and p_up lie in [0, 1]"),
        ([-np.inf, np.inf], [0.5], "src: bins must have finite, increasing centres"),
    ],
)
def test_bad_calibration_tables_are_named(edges: object, p_up: object, message: str) -> None:
    with pytest.raises(CalibrationError) as err:
        table(edges, p_up)
    assert str(err.value) == message


def test_calibration_bounds_are_allowed() -> None:
    assert table([0, 1, 2], [0.0, 1.0]).p_up.tolist() == [0.0, 1.0]
    for edges, p_up in ((["a", "b"], [0.5]), ([0, 1], ["x"])):
        with pytest.raises(CalibrationError) as err:
            table(edges, p_up)
        assert str(err.value).startswith("src is not numeric: ")
    with pytest.raises(CalibrationError) as err:
        table([0, 1], [0.5], model="alpha_5d")
    assert str(err.value) == "src is for model 'alpha_5d'; the win probability is calibrated on 'alpha_10d'"


@pytest.mark.parametrize(
    ("closes", "trend"),
    [
        # A spike 51 sessions back sits in the older 50-session window only: the slope is negative.
        ([*[100.0] * 149, 105.0, *[100.0] * 49, 101.0], "sideways"),
        # A spike 61 sessions back is in neither window: the slope is positive.
        ([*[100.0] * 139, 105.0, *[100.0] * 59, 101.0], "uptrend"),
        # The close equal to its 200-session average (sum 20,000 over 200 closes) with a rising average.
        ([*[100.0] * 140, *[99.0] * 9, 100.0, *[100.0] * 40, *[101.0] * 9, 100.0], "sideways"),
        ([*[100.0] * 140, *[101.0] * 9, 100.0, *[100.0] * 40, *[99.0] * 9, 100.0], "sideways"),
        # A slope of exactly zero: the same closes enter and leave the averages.
        ([*[100.0] * 140, 101.0, *[100.0] * 58, 101.0], "sideways"),
        ([*[100.0] * 140, 99.0, *[100.0] * 58, 99.0], "sideways"),
    ],
)
def test_market_regime_at_its_edges(closes: list[float], trend: str) -> None:
    assert len(closes) == 200
    assert market_regime(np.array(closes)).trend == trend == regime_by_rule(closes)[0]


def test_volatility_levels_at_their_edges() -> None:
    assert [volatility_level(v) for v in (11.99, 12.0, 18.0, 25.0, 25.01)] == [
        "low",
        "normal",
        "normal",
        "normal",
        "high",
    ]


def test_a_bin_open_at_both_ends_is_refused_without_a_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # -inf + inf is computed and dropped silently
        with pytest.raises(CalibrationError) as err:
            WinProbCalibration.from_table("alpha_10d", "v1", [-np.inf, np.inf], [0.5])
    assert str(err.value) == "win_prob: bins must have finite, increasing centres"  # the default source
