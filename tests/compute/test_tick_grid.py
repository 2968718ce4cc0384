"""Indicators on tick-grid prices, computed the way a scan computes them, against TA-Lib on the decimals.

Random walks never tie; exchange prices do, and float32 rounding breaks their ties. Here bars are
whole ticks with many equal moves (tickgrid.py) stored as a float32 panel, and every indicator goes
through the scan's own path: the gather that restores the decimals, then the kernels. TA-Lib is fed
the float64 decimals a JSON parser gives, and must agree at the tolerance of test_indicators.py.
"""

from __future__ import annotations

import json
import math

import numpy as np
import orjson
import pytest
import talib
from hypothesis import example, given, settings
from hypothesis import strategies as st
from numba import njit

from services.compute.features import INDICATORS, _restore_decimal, as_of_indicators, decimal_prices
from tests.compute.test_indicators import RTOL, check_all
from tests.compute.tickgrid import REGIMES, complete, panel_of, tick_bars

# Each decimal grid the gathers restore: (decimals, bound below which float32 separates its steps).
GRIDS = ((4, 1024), (3, 8192), (2, 131072))


def last(values: np.ndarray) -> float:
    return float(values[-1]) if values.size else math.nan


def talib_as_of(decimal: np.ndarray) -> dict[str, float]:
    """Every INDICATORS value at the last session from TA-Lib (numpy where TA-Lib has none), over
    the complete bars as the scan keeps them; all NaN when the last bar is incomplete."""
    keep = complete(decimal)
    if not keep[-1]:
        return dict.fromkeys(INDICATORS, math.nan)
    _o, h, lo, c, v = (np.ascontiguousarray(decimal[keep, k]) for k in range(5))
    m = c.size
    out = {f"sma_{n}": last(talib.SMA(c, n)) for n in (10, 20, 50, 100, 200)}
    out |= {f"ema_{n}": last(talib.EMA(c, n)) for n in (20, 50)}
    out |= {"high_252": last(talib.MAX(h, 252)), "low_252": last(talib.MIN(lo, 252)), "rsi_14": last(talib.RSI(c, 14))}
    out |= dict(zip(("macd", "macd_signal", "macd_hist"), map(last, talib.MACD(c, 12, 26, 9)), strict=True))
    out |= dict(zip(("bb_upper", "bb_middle", "bb_lower"), map(last, talib.BBANDS(c, 20, 2, 2, 0)), strict=True))
    out |= {"atr_14": last(talib.ATR(h, lo, c, 14)), "adx_14": last(talib.ADX(h, lo, c, 14))}
    out |= {"plus_di_14": last(talib.PLUS_DI(h, lo, c, 14)), "minus_di_14": last(talib.MINUS_DI(h, lo, c, 14))}
    out |= dict(zip(("stoch_k", "stoch_d"), map(last, talib.STOCH(h, lo, c, 14, 3, 0, 3, 0)), strict=True))
    out |= {"cci_20": last(talib.CCI(h, lo, c, 20)), "willr_14": last(talib.WILLR(h, lo, c, 14))}
    obv = talib.OBV(c, v)
    out["obv_change_21"] = obv[-1] - obv[-22] if m >= 22 else math.nan
    returns = np.diff(np.log(c))
    for n in (21, 63):
        out[f"realized_vol_{n}"] = np.std(returns[-n:], ddof=1) * math.sqrt(252) if returns.size >= n else math.nan
    base = v[-21:-1].mean() if m >= 21 else 0.0
    out["rel_volume_20"] = v[-1] / base if base > 0 else math.nan
    out["dollar_volume_20"] = np.mean(c[-20:] * v[-20:]) if m >= 20 else math.nan
    out["avg_volume_20"] = np.mean(v[-20:]) if m >= 20 else math.nan
    out["roc_10"] = last(talib.ROCP(c, 10))
    assert set(out) == set(INDICATORS)
    return out


def assert_as_of_matches(decimals: list[np.ndarray]) -> None:
    ours = as_of_indicators(panel_of([d.astype(np.float32) for d in decimals]))
    for row, decimal in enumerate(decimals):
        theirs = talib_as_of(decimal)
        atol = 1e-9 * max(1.0, float(np.nanmax(np.abs(decimal[:, :4]), initial=0.0)))
        for k, name in enumerate(INDICATORS):
            mine, expected = ours[row, k], theirs[name]
            assert np.isnan(mine) == np.isnan(expected), f"{name}: {mine} vs TA-Lib {expected} (warm-up)"
            if not np.isnan(expected):
                assert math.isclose(mine, expected, rel_tol=RTOL, abs_tol=atol), f"{name}: {mine} vs TA-Lib {expected}"


bars_args = {
    "seed": st.integers(0, 2**32 - 1),
    "regime": st.sampled_from(REGIMES),
    "n": st.integers(1, 300),
    "gaps": st.integers(0, 12),
    "flat_runs": st.integers(0, 4),
}


@settings(max_examples=40, deadline=None)
@given(**bars_args)
@example(seed=1, regime=REGIMES[0], n=260, gaps=0, flat_runs=0)
@example(seed=2, regime=REGIMES[1], n=260, gaps=5, flat_runs=2)
@example(seed=3, regime=REGIMES[4], n=300, gaps=3, flat_runs=1)
@example(seed=12, regime=REGIMES[3], n=130, gaps=0, flat_runs=0)  # a walk past $8192 in tenths of a cent
def test_every_as_of_indicator_of_the_scan_matches_talib(
    seed: int, regime: object, n: int, gaps: int, flat_runs: int
) -> None:
    rows = [tick_bars(seed + k, n, r, gaps=gaps, flat_runs=flat_runs)[0] for k, r in enumerate((regime, *REGIMES))]
    assert_as_of_matches(rows)


@settings(max_examples=25, deadline=None)
@given(**bars_args)
@example(seed=4, regime=REGIMES[0], n=300, gaps=6, flat_runs=2)
def test_every_indicator_kernel_on_restored_bars_matches_talib_at_every_session(
    seed: int, regime: object, n: int, gaps: int, flat_runs: int
) -> None:
    decimal, stored = tick_bars(seed, n, regime, gaps=gaps, flat_runs=flat_runs)
    widened = decimal_prices(stored[None])[0]
    # The restored prices are the decimals exactly, so TA-Lib on them is TA-Lib on the decimals.
    np.testing.assert_array_equal(widened[:, :4], decimal[:, :4])
    check_all({"high": widened[:, 1], "low": widened[:, 2], "close": widened[:, 3], "volume": widened[:, 4]})


def test_ties_that_float32_breaks_are_kept() -> None:
    """Names whose ADX from float32 bars misses TA-Lib's on the decimals, as the scan's once did."""
    broken = []
    for seed in range(200):
        decimal, stored = tick_bars(seed, 260, REGIMES[seed % 2])
        h, lo, c = (np.ascontiguousarray(decimal[:, k]) for k in (1, 2, 3))
        h32, lo32, c32 = (stored[:, k].astype(np.float64) for k in (1, 2, 3))
        if not math.isclose(talib.ADX(h32, lo32, c32, 14)[-1], talib.ADX(h, lo, c, 14)[-1], rel_tol=1e-4):
            broken.append(decimal)
    assert len(broken) >= 10
    assert_as_of_matches(broken)


@njit(cache=True)
def _misses_on_grid(decimals: int, bound: int) -> int:
    """How many k / 10**decimals below ``bound`` do not come back from their float32 exactly."""
    scale = 10.0**decimals
    misses = 0
    for k in range(bound * 10**decimals):
        exact = k / scale
        if _restore_decimal(np.float64(np.float32(exact))) != exact:
            misses += 1
    return misses


@pytest.mark.parametrize(("decimals", "bound"), GRIDS)
def test_every_decimal_of_each_grid_comes_back_exactly(decimals: int, bound: int) -> None:
    assert _misses_on_grid(decimals, bound) == 0


@pytest.mark.parametrize(("decimals", "bound"), GRIDS)
def test_an_integer_over_a_power_of_ten_is_the_double_a_json_parser_gives(decimals: int, bound: int) -> None:
    rng = np.random.default_rng(decimals)
    k = np.concatenate(
        [np.arange(2000), bound * 10**decimals - np.arange(1, 2000), rng.integers(0, bound * 10**decimals, 200_000)]
    )
    text = "[" + ",".join(f"{q // 10**decimals}.{q % 10**decimals:0{decimals}d}" for q in k.tolist()) + "]"
    exact = k / 10.0**decimals
    np.testing.assert_array_equal(np.array(orjson.loads(text)), exact)
    np.testing.assert_array_equal(np.array(json.loads(text)), exact)
    panel = np.zeros((1, k.size, 5), dtype=np.float32)
    panel[0, :, :4] = exact[:, None].astype(np.float32)
    np.testing.assert_array_equal(decimal_prices(panel)[0, :, 3], exact)


def test_what_float32_cannot_place_on_a_grid_is_widened_as_it_is() -> None:
    prices = np.array([
        1234.5678,  # sub-penny above 1024: float32 no longer separates hundredths of a cent
        150_000.25,  # above 131072: not even cents
        30.01 / 3,  # split-adjusted by 3: on no decimal grid
        math.nan, math.inf, -math.inf,
    ])  # fmt: skip
    stored = prices.astype(np.float32)
    panel = np.repeat(stored[None, :, None], 5, axis=2)
    widened = decimal_prices(panel)[0, :, 0]
    np.testing.assert_array_equal(widened, stored.astype(np.float64))
    # Volumes are widened as they are, even on a grid.
    widened = decimal_prices(np.full((1, 1, 5), 12.3456, np.float32))[0, 0]
    assert list(widened[:4]) == [12.3456] * 4 and widened[4] == np.float64(np.float32(12.3456)) != 12.3456
