"""Every indicator against TA-Lib within 1e-6 relative after warm-up: random walks, gaps, flat prices, zero volume.

With gaps, the kernels skip missing sessions (see indicators.py), so the oracle is TA-Lib on the
series with the gaps removed, and the result is NaN at every missing session.
"""

from __future__ import annotations

import numpy as np
import pytest
import talib
from hypothesis import given, settings
from hypothesis import strategies as st

from services.compute import indicators as ind

RTOL = 1e-6


def bars(seed: int, n: int, gaps: int = 0, flat: bool = False, zero_volume: bool = False) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    close = np.full(n, 42.5) if flat else 50 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
    spread = 0.0 if flat else 0.02
    high = close * (1 + rng.uniform(0, spread, n))
    low = close * (1 - rng.uniform(0, spread, n))
    volume = np.zeros(n) if zero_volume else rng.integers(1_000, 1_000_000, n).astype(float)
    b = {"high": high, "low": low, "close": close, "volume": volume}
    if gaps:
        holes = rng.choice(n, gaps, replace=False)
        for v in b.values():
            v[holes] = np.nan
    return b


def assert_matches(ours: np.ndarray, theirs_dense: np.ndarray, present: np.ndarray) -> None:
    """ours at present sessions == TA-Lib on the compressed series; NaN elsewhere."""
    assert np.isnan(ours[~present]).all()
    mine = ours[present]
    assert np.array_equal(np.isnan(mine), np.isnan(theirs_dense)), "warm-up lengths differ"
    ok = ~np.isnan(theirs_dense)
    np.testing.assert_allclose(mine[ok], theirs_dense[ok], rtol=RTOL, atol=1e-9)


def check_all(b: dict[str, np.ndarray]) -> None:
    h, lo, c, v = b["high"], b["low"], b["close"], b["volume"]
    p1 = np.isfinite(c)
    p3 = np.isfinite(h) & np.isfinite(lo) & p1
    p4 = p1 & np.isfinite(v)
    cc, hh, ll, vv = c[p1], h[p3], lo[p3], v[p4]
    c3 = c[p3]
    for n in (10, 20, 50, 100, 200):
        assert_matches(ind.sma(c, n), talib.SMA(cc, n), p1)
        assert_matches(ind.ema(c, n), talib.EMA(cc, n), p1)
    assert_matches(ind.rsi_wilder(c, 14), talib.RSI(cc, 14), p1)
    for ours, theirs in zip(ind.macd(c, 12, 26, 9), talib.MACD(cc, 12, 26, 9), strict=True):
        assert_matches(ours, theirs, p1)
    for ours, theirs in zip(ind.bollinger(c, 20, 2.0), talib.BBANDS(cc, 20, 2.0, 2.0, 0), strict=True):
        assert_matches(ours, theirs, p1)
    assert_matches(ind.true_range(h, lo, c), talib.TRANGE(hh, ll, c3), p3)
    assert_matches(ind.atr_wilder(h, lo, c, 14), talib.ATR(hh, ll, c3, 14), p3)
    adx, pdi, mdi = ind.adx_wilder(h, lo, c, 14)
    assert_matches(adx, talib.ADX(hh, ll, c3, 14), p3)
    assert_matches(pdi, talib.PLUS_DI(hh, ll, c3, 14), p3)
    assert_matches(mdi, talib.MINUS_DI(hh, ll, c3, 14), p3)
    for ours, theirs in zip(ind.stochastic(h, lo, c, 14, 3, 3), talib.STOCH(hh, ll, c3, 14, 3, 0, 3, 0), strict=True):
        assert_matches(ours, theirs, p3)
    assert_matches(ind.cci(h, lo, c, 20), talib.CCI(hh, ll, c3, 20), p3)
    assert_matches(ind.williams_r(h, lo, c, 14), talib.WILLR(hh, ll, c3, 14), p3)
    assert_matches(ind.rolling_max(h, 252), talib.MAX(h[np.isfinite(h)], 252), np.isfinite(h))
    assert_matches(ind.rolling_min(lo, 252), talib.MIN(lo[np.isfinite(lo)], 252), np.isfinite(lo))
    assert_matches(ind.obv(c, v), talib.OBV(c[p4], vv), p4)
    assert_matches(ind.rate_of_change(c, 10), talib.ROCP(cc, 10), p1)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 320), gaps=st.integers(0, 12))
def test_random_walks_with_gaps_match_talib(seed: int, n: int, gaps: int) -> None:
    check_all(bars(seed, n, gaps=min(gaps, n)))


@pytest.mark.parametrize("gaps", [0, 7])
def test_constant_prices_and_zero_volume_match_talib(gaps: int) -> None:
    check_all(bars(3, 300, gaps=gaps, flat=True, zero_volume=True))


def test_random_walk_with_zero_volume_matches_talib() -> None:
    check_all(bars(5, 300, zero_volume=True))


def test_a_gap_does_not_restart_the_warm_up() -> None:
    b = bars(11, 260, gaps=0)
    c = b["close"].copy()
    c[150] = np.nan
    out = ind.sma(c, 200)
    assert np.isnan(out[150]) and np.isfinite(out[-1])
    np.testing.assert_allclose(out[-1], np.mean(np.delete(c, 150)[-200:]), rtol=1e-12)


def test_realized_vol_relative_volume_and_dollar_volume_match_pandas() -> None:
    import pandas as pd

    b = bars(9, 300)
    c, v = pd.Series(b["close"]), pd.Series(b["volume"])
    rv = np.log(c).diff().rolling(21).std() * np.sqrt(252)
    np.testing.assert_allclose(ind.realized_vol(b["close"], 21), rv.to_numpy(), rtol=1e-9, equal_nan=True)
    rel = v / v.rolling(20).mean().shift(1)
    np.testing.assert_allclose(ind.relative_volume(b["volume"], 20), rel.to_numpy(), rtol=1e-9, equal_nan=True)
    dv = (c * v).rolling(20).mean()
    np.testing.assert_allclose(
        ind.average_dollar_volume(b["close"], b["volume"], 20), dv.to_numpy(), rtol=1e-9, equal_nan=True
    )


def test_2d_drivers_equal_the_1d_kernels_per_row() -> None:
    rows = [bars(s, 270, gaps=s) for s in range(4)]
    close = np.stack([r["close"] for r in rows])
    high = np.stack([r["high"] for r in rows])
    low = np.stack([r["low"] for r in rows])
    for r in range(4):
        np.testing.assert_array_equal(ind.rsi_wilder_2d(close, 14)[r], ind.rsi_wilder(close[r], 14))
        np.testing.assert_array_equal(
            ind.adx_wilder_2d(high, low, close, 14)[0][r], ind.adx_wilder(high[r], low[r], close[r], 14)[0]
        )
        np.testing.assert_array_equal(ind.cci_2d(high, low, close, 20)[r], ind.cci(high[r], low[r], close[r], 20))
