"""Every feature against an independent definition, on tick-grid prices, scoring and training alike.

The oracle below is written from each feature's definition with TA-Lib, numpy and pandas over the
float64 decimal bars (the complete ones, as the scan keeps them), not with the code under test. It
is keyed by feature name, so a column written under another name's position fails it.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import talib
from hypothesis import given, settings
from hypothesis import strategies as st

from services.compute.features import FEATURES, score_features, training_features
from tests.compute.tickgrid import REGIMES, Regime, complete, panel_of, tick_bars

RTOL, ATOL = 2e-6, 1e-7  # the features are float32 (1e-7 is below their unit in the last place at 1)


def ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return a / b


def lagged(x: np.ndarray, lag: int) -> np.ndarray:
    out = np.full(x.size, np.nan)
    out[lag:] = x[:-lag] if lag else x
    return out


def oracle(decimal: np.ndarray) -> np.ndarray:
    """(complete sessions, FEATURES) by definition, over the complete bars of a (sessions, 5) block."""
    o, h, lo, c, v = (np.ascontiguousarray(decimal[complete(decimal), k]) for k in range(5))
    f: dict[str, np.ndarray] = {}
    for lag, name in ((1, "1d"), (5, "5d"), (21, "21d"), (63, "63d"), (126, "126d"), (252, "252d")):
        f[f"ret_{name}"] = ratio(c, lagged(c, lag)) - 1
    for n in (10, 20, 50, 100, 200):
        f[f"dist_sma_{n}"] = ratio(c, talib.SMA(c, n)) - 1
    f["ema_20_50_spread"] = ratio(talib.EMA(c, 20), talib.EMA(c, 50)) - 1
    f["dist_52w_high"] = ratio(c, talib.MAX(h, 252)) - 1
    f["dist_52w_low"] = ratio(c, talib.MIN(lo, 252)) - 1
    f["rsi_14"] = talib.RSI(c, 14)
    line, signal, hist = talib.MACD(c, 12, 26, 9)
    f["macd_pct"], f["macd_signal_pct"], f["macd_hist_pct"] = line / c, signal / c, hist / c
    upper, middle, lower = talib.BBANDS(c, 20, 2, 2, 0)
    f["bb_pct_b"] = ratio(c - lower, upper - lower)
    f["bb_width"] = ratio(upper - lower, middle)
    f["atr_14_pct"] = talib.ATR(h, lo, c, 14) / c * 100
    f["adx_14"] = talib.ADX(h, lo, c, 14)
    f["plus_di_14"] = talib.PLUS_DI(h, lo, c, 14)
    f["minus_di_14"] = talib.MINUS_DI(h, lo, c, 14)
    f["stoch_k"], f["stoch_d"] = talib.STOCH(h, lo, c, 14, 3, 0, 3, 0)
    f["cci_20"] = talib.CCI(h, lo, c, 20)
    f["willr_14"] = talib.WILLR(h, lo, c, 14)
    obv = talib.OBV(c, v)
    f["obv_slope_21"] = ratio(obv - lagged(obv, 21), 21 * talib.SMA(v, 20))
    log_returns = pd.Series(np.log(c)).diff()
    f["realized_vol_21"] = (log_returns.rolling(21).std() * math.sqrt(252)).to_numpy()
    f["realized_vol_63"] = (log_returns.rolling(63).std() * math.sqrt(252)).to_numpy()
    f["rel_volume_20"] = ratio(v, pd.Series(v).rolling(20).mean().shift(1).to_numpy())
    with np.errstate(divide="ignore"):
        f["log_dollar_volume_20"] = np.log10(pd.Series(c * v).rolling(20).mean().to_numpy())
    body = h - lo
    f["body_pct"] = ratio(c - o, body)
    f["upper_wick_pct"] = ratio(h - np.maximum(o, c), body)
    f["lower_wick_pct"] = ratio(np.minimum(o, c) - lo, body)
    f["gap_pct"] = ratio(o, lagged(c, 1)) - 1
    f["roc_10"] = talib.ROCP(c, 10)
    assert set(f) == set(FEATURES)
    out = np.stack([f[name] for name in FEATURES], axis=1)
    out[~np.isfinite(out)] = np.nan
    return out


def assert_features(ours: np.ndarray, expected: np.ndarray, where: str) -> None:
    for k, name in enumerate(FEATURES):
        mine, theirs = ours[:, k].astype(np.float64), expected[:, k]
        assert np.array_equal(np.isnan(mine), np.isnan(theirs)), f"{name} {where}: defined at other sessions"
        np.testing.assert_allclose(mine, theirs, rtol=RTOL, atol=ATOL, equal_nan=True, err_msg=f"{name} {where}")


def check_symbols(decimals: list[np.ndarray]) -> None:
    panel = panel_of([d.astype(np.float32) for d in decimals])
    scored = score_features(panel).features
    trained = training_features(panel, np.arange(panel.shape[1]))
    for row, decimal in enumerate(decimals):
        keep = complete(decimal)
        expected = oracle(decimal)
        if keep[-1]:
            assert_features(scored[row : row + 1], expected[-1:], "at the as-of session (scoring)")
        else:
            assert np.isnan(scored[row]).all()
        assert_features(trained[row, keep], expected, "at every session (training)")
        assert np.isnan(trained[row, ~keep]).all()


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 300),
    gaps=st.integers(0, 10),
    flat_runs=st.integers(0, 3),
)
def test_every_feature_follows_its_definition(seed: int, n: int, gaps: int, flat_runs: int) -> None:
    check_symbols([tick_bars(seed + k, n, regime, gaps, flat_runs)[0] for k, regime in enumerate(REGIMES)])


def fixed_symbols(regime: Regime, count: int = 6) -> list[np.ndarray]:
    return [tick_bars(1000 + k, 300, regime, gaps=3)[0] for k in range(count)]


def test_full_histories_follow_their_definitions() -> None:
    check_symbols([d for regime in REGIMES for d in fixed_symbols(regime, 2)])


def test_each_column_is_its_named_feature_and_no_other() -> None:
    """Columns come out in FEATURES order: putting any column at another's place fails the oracle."""
    decimals = fixed_symbols(REGIMES[1], 12)
    ours = score_features(panel_of([d.astype(np.float32) for d in decimals])).features.astype(np.float64)
    expected = np.stack([oracle(d)[-1] for d in decimals])
    assert np.isfinite(expected).all(), "every feature must be defined for this check"
    for i, name in enumerate(FEATURES):
        np.testing.assert_allclose(ours[:, i], expected[:, i], rtol=RTOL, atol=ATOL, err_msg=name)
        for j, other in enumerate(FEATURES):
            if j != i:
                assert not np.allclose(ours[:, i], expected[:, j], rtol=RTOL, atol=ATOL), f"{name} passes as {other}"
