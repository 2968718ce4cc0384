"""The named, versioned feature list, computed from a (symbols, sessions, 5) panel block.

Every feature is unit-free (returns, ratios to price, oscillators) so that one model serves a
$2 stock and a $2,000 stock alike. Indicators come from :mod:`services.compute.indicators` and
follow its missing-session policy: a session without a complete bar is skipped, so each feature
at a session is computed over the symbol's present sessions up to it. A feature that is undefined
(warm-up, division by zero) is NaN, which the models treat as missing.

Two entry points share one Numba kernel per symbol:

- :func:`score_features` for scoring: features and price levels at the as-of session (the last one
  of the axis), plus the sparkline closes and a state per symbol;
- :func:`training_features`: features at chosen sessions, for training.

Panels hold float32 bars, but prices are decimals (cents; hundredths of a cent below $1), and
float32 rounding breaks their ties: an up-move and a down-move that are equal in the real prices
differ after rounding, so +DM/-DM and the like take the other branch. The gathers therefore widen
each price to the float64 decimal it was rounded from (:func:`_restore_decimal`): the most decimals
that float32 still tells apart at that magnitude, 4 below 1024, 3 below 8192, 2 below 131072, and
none above. The result is exactly the double a JSON parser gives for the decimal, so the kernels
see the bars TA-Lib sees. A price that float32 cannot place on that grid is widened as it is: a
split-adjusted price off the grid, any price above 131072, and sub-penny prices above 1024, whose
decimals float32 no longer separates. Volumes are widened as they are.

Changing any definition here changes :data:`FEATURE_VERSION`; models trained on another version
are refused at load time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum

import numpy as np
from numba import njit, prange

from services.compute.indicators import (
    _EPS,
    _atr_dense,
    _bollinger_dense,
    _cci_dense,
    _cci_value,
    _directional_move,
    _dmi_dense,
    _dollar_volume_dense,
    _ema_dense,
    _is_zero,
    _macd_dense,
    _obv_dense,
    _realized_vol_dense,
    _relative_volume_dense,
    _roc_dense,
    _rolling_max_dense,
    _rolling_min_dense,
    _rsi_dense,
    _sma_dense,
    _stochastic_dense,
    _true_range,
    _williams_r_dense,
    _window_deviation,
)
from services.contract.features import FEATURE_LABELS as FEATURE_LABELS  # re-exported
from services.contract.features import FEATURE_VERSION as FEATURE_VERSION  # re-exported
from services.contract.features import FEATURES as FEATURES  # re-exported
from services.contract.features import LEVEL_FIELDS as LEVEL_FIELDS  # re-exported
from services.contract.features import (
    MIN_HISTORY,
    N_FEATURES,
    N_LEVELS,
    PANEL_FIELDS,
    SPARKLINE_LENGTH,
)


class SymbolState(IntEnum):
    """Per-symbol outcome; the numbers are those of technic.v1.SymbolState."""

    OK = 1
    INSUFFICIENT_HISTORY = 2
    NO_DATA = 3
    STALE = 4


# Rows of the per-symbol indicator scratch block, named in INDICATORS.
_SMA10, _SMA20, _SMA50, _SMA100, _SMA200, _EMA20, _EMA50, _HH252, _LL252, _RSI = range(10)
_MACD, _MACDS, _MACDH, _BBU, _BBM, _BBL, _ATR, _ADX, _PDI, _MDI = range(10, 20)
_STK, _STD, _CCI, _WILLR, _OBV, _RV21, _RV63, _RELVOL, _DV20, _AVGV20, _ROC10 = range(20, 31)
_N_ROWS = 31
# What the scoring kernel derives the features from, at the as-of session (see as_of_indicators).
INDICATORS: tuple[str, ...] = (
    "sma_10", "sma_20", "sma_50", "sma_100", "sma_200", "ema_20", "ema_50", "high_252", "low_252", "rsi_14",
    "macd", "macd_signal", "macd_hist", "bb_upper", "bb_middle", "bb_lower", "atr_14", "adx_14", "plus_di_14",
    "minus_di_14", "stoch_k", "stoch_d", "cci_20", "willr_14", "obv_change_21", "realized_vol_21",
    "realized_vol_63", "rel_volume_20", "dollar_volume_20", "avg_volume_20", "roc_10",
)  # fmt: skip


@njit(cache=True)
def _indicators(o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray, v: np.ndarray, first: int) -> np.ndarray:
    """Every indicator the features use, over one symbol's present sessions (rows: _SMA10, ...)."""
    m = c.size
    s = np.full((_N_ROWS, m), np.nan)
    _sma_dense(c, 10, s[_SMA10])
    _sma_dense(c, 20, s[_SMA20])
    _sma_dense(c, 50, s[_SMA50])
    _sma_dense(c, 100, s[_SMA100])
    _sma_dense(c, 200, s[_SMA200])
    _ema_dense(c, 20, 19, s[_EMA20])
    _ema_dense(c, 50, 49, s[_EMA50])
    _rolling_max_dense(h, 252, s[_HH252])
    _rolling_min_dense(lo, 252, s[_LL252])
    _rsi_dense(c, 14, s[_RSI])
    _macd_dense(c, 12, 26, 9, s[_MACD], s[_MACDS], s[_MACDH])
    _bollinger_dense(c, 20, 2.0, s[_BBU], s[_BBM], s[_BBL])
    _atr_dense(h, lo, c, 14, s[_ATR])
    _dmi_dense(h, lo, c, 14, s[_ADX], s[_PDI], s[_MDI])
    _stochastic_dense(h, lo, c, 14, 3, 3, s[_STK], s[_STD])
    _cci_dense(h, lo, c, 20, first, s[_CCI])
    _williams_r_dense(h, lo, c, 14, s[_WILLR])
    _obv_dense(c, v, s[_OBV])
    _realized_vol_dense(c, 21, s[_RV21])
    _realized_vol_dense(c, 63, s[_RV63])
    _relative_volume_dense(v, 20, s[_RELVOL])
    _dollar_volume_dense(c, v, 20, s[_DV20])
    _sma_dense(v, 20, s[_AVGV20])
    _roc_dense(c, 10, s[_ROC10])
    return s


@njit(cache=True, inline="always")
def _ratio(a: float, b: float) -> float:
    """a / b - 1, NaN when b is 0 or either is NaN."""
    return a / b - 1.0 if b != 0.0 else np.nan


@njit(cache=True, inline="always")
def _div(a: float, b: float) -> float:
    return a / b if b != 0.0 else np.nan


@njit(cache=True)
def _write_features(
    val: np.ndarray, o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray, v: np.ndarray, t: int, out: np.ndarray
) -> None:
    """Features at present-session ``t`` into ``out`` (FEATURES order) from the indicator values
    ``val`` at ``t`` (indexed by the scratch rows; ``val[_OBV]`` holds the 21-session OBV change)."""
    x = c[t]
    k = 0
    for lag in (1, 5, 21, 63, 126, 252):
        out[k] = _ratio(x, c[t - lag]) if t >= lag else np.nan
        k += 1
    for row in (_SMA10, _SMA20, _SMA50, _SMA100, _SMA200):
        out[k] = _ratio(x, val[row])
        k += 1
    out[11] = _ratio(val[_EMA20], val[_EMA50])
    out[12] = _ratio(x, val[_HH252])
    out[13] = _ratio(x, val[_LL252])
    out[14] = val[_RSI]
    out[15] = _div(val[_MACD], x)
    out[16] = _div(val[_MACDS], x)
    out[17] = _div(val[_MACDH], x)
    band = val[_BBU] - val[_BBL]
    out[18] = _div(x - val[_BBL], band)
    out[19] = _div(band, val[_BBM])
    out[20] = _div(val[_ATR], x) * 100.0
    out[21] = val[_ADX]
    out[22] = val[_PDI]
    out[23] = val[_MDI]
    out[24] = val[_STK]
    out[25] = val[_STD]
    out[26] = val[_CCI]
    out[27] = val[_WILLR]
    out[28] = _div(val[_OBV], 21.0 * val[_AVGV20])
    out[29] = val[_RV21]
    out[30] = val[_RV63]
    out[31] = val[_RELVOL]
    dv = val[_DV20]
    out[32] = math.log10(dv) if dv > 0.0 else np.nan
    rng = h[t] - lo[t]
    out[33] = _div(x - o[t], rng)
    out[34] = _div(h[t] - max(o[t], x), rng)
    out[35] = _div(min(o[t], x) - lo[t], rng)
    out[36] = _ratio(o[t], c[t - 1]) if t >= 1 else np.nan
    out[37] = val[_ROC10]
    for i in range(out.size):
        if not np.isfinite(out[i]):
            out[i] = np.nan


@njit(cache=True)
def _values_at(s: np.ndarray, t: int) -> np.ndarray:
    """Column ``t`` of the scratch block, with the OBV row turned into the 21-session change."""
    val = s[:, t].copy()
    val[_OBV] = s[_OBV, t] - s[_OBV, t - 21] if t >= 21 else np.nan
    return val


@njit(cache=True, inline="always")
def _window_extremes(h: np.ndarray, lo: np.ndarray, t: int, n: int) -> tuple[float, float]:
    """Highest ``h`` and lowest ``lo`` of the ``n`` sessions ending at ``t``.

    Four interleaved running extremes per series cut the loop's dependency chain to a quarter; max
    and min are exact, so the result does not depend on the order.
    """
    h0 = h1 = h2 = h3 = h[t]
    l0 = l1 = l2 = l3 = lo[t]
    j = t - n + 1
    while j + 3 < t:
        h0 = max(h0, h[j])
        h1 = max(h1, h[j + 1])
        h2 = max(h2, h[j + 2])
        h3 = max(h3, h[j + 3])
        l0 = min(l0, lo[j])
        l1 = min(l1, lo[j + 1])
        l2 = min(l2, lo[j + 2])
        l3 = min(l3, lo[j + 3])
        j += 4
    while j < t:
        h0 = max(h0, h[j])
        l0 = min(l0, lo[j])
        j += 1
    return max(max(h0, h1), max(h2, h3)), min(min(l0, l1), min(l2, l3))


@njit(cache=True)
def _window_values(
    o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray, v: np.ndarray, tp: np.ndarray, val: np.ndarray
) -> None:
    """Window indicators at the last present session into ``val``: they read only their last window.

    ``tp`` is a scratch of at least 20 values (CCI's typical prices). The recursive indicators
    (EMA, MACD, RSI, ATR, ADX/DI) come from :func:`_last_recursive`.
    """
    m = c.size
    t = m - 1
    # Moving averages of the close, from the last session backwards: one loop per window length,
    # each going on from where the shorter one stopped.
    total = 0.0
    for j in range(min(m, 20)):
        total += c[t - j]
        if j == 9:
            val[_SMA10] = total / 10
    if m >= 20:
        mid = total / 20
        sd = _window_deviation(c, t - 19, 20)
        val[_SMA20] = mid
        val[_BBM] = mid
        val[_BBU] = mid + 2.0 * sd
        val[_BBL] = mid - 2.0 * sd
    for j in range(20, min(m, 50)):
        total += c[t - j]
    if m >= 50:
        val[_SMA50] = total / 50
    for j in range(50, min(m, 100)):
        total += c[t - j]
    if m >= 100:
        val[_SMA100] = total / 100
    for j in range(100, min(m, 200)):
        total += c[t - j]
    if m >= 200:
        val[_SMA200] = total / 200
    if m >= 252:
        val[_HH252], val[_LL252] = _window_extremes(h, lo, t, 252)
    if m >= 14:
        hh, ll = _window_extremes(h, lo, t, 14)
        diff = (hh - ll) * (-0.01)
        val[_WILLR] = (hh - c[t]) / diff if diff != 0.0 else 0.0
    if m >= 18:
        k0 = k1 = k2 = 0.0
        for q in range(5):
            hh, ll = _window_extremes(h, lo, t - 4 + q, 14)
            diff = (hh - ll) / 100.0
            raw = (c[t - 4 + q] - ll) / diff if diff != 0.0 else 0.0
            # Slow %K at t - 2, t - 1, t: SMA 3 of the raw %K, summed in TA-Lib's order.
            if q <= 2:
                k0 += raw
            if 1 <= q <= 3:
                k1 += raw
            if q >= 2:
                k2 += raw
        k0 /= 3
        k1 /= 3
        k2 /= 3
        val[_STK] = k2
        val[_STD] = (k0 + k1 + k2) / 3
    if m >= 20:
        start = t - 19
        for q in range(20):
            tp[q] = (h[start + q] + lo[start + q] + c[start + q]) / 3
        # TA-Lib's circular buffer: slot j holds the session s of the window with s % 20 == j,
        # so the sums start at the window position of slot 0.
        first = (-start) % 20
        avg = 0.0
        q = first
        for _ in range(20):
            avg += tp[q]
            q = q + 1 if q < 19 else 0
        avg /= 20
        dev = 0.0
        q = first
        for _ in range(20):
            dev += abs(tp[q] - avg)
            q = q + 1 if q < 19 else 0
        diff = tp[19] - avg
        val[_CCI] = _cci_value(diff, dev / 20, avg)
        vol = 0.0
        dollars = 0.0
        for j in range(t - 19, t + 1):
            vol += v[j]
            dollars += c[j] * v[j]
        val[_AVGV20] = vol / 20
        val[_DV20] = dollars / 20
    if m >= 21:
        prev_vol = 0.0
        for j in range(t - 20, t):
            prev_vol += v[j]
        base = prev_vol / 20
        val[_RELVOL] = v[t] / base if base > 0.0 else np.nan
    if m >= 22:
        delta = 0.0
        for j in range(t - 20, t + 1):
            if c[j] > c[j - 1]:
                delta += v[j]
            elif c[j] < c[j - 1]:
                delta -= v[j]
        val[_OBV] = delta
    if m >= 11:
        old = c[t - 10]
        val[_ROC10] = (c[t] - old) / old if old != 0.0 else 0.0
    # Realized volatility from the last 63 log returns (sample deviation, annualised).
    s1 = 0.0
    s2 = 0.0
    log_next = math.log(c[t]) if t > 0 else 0.0
    for j in range(min(63, t)):
        log_prev = math.log(c[t - j - 1])
        r = log_next - log_prev  # log(c[t - j] / c[t - j - 1]) without the division
        log_next = log_prev
        s1 += r
        s2 += r * r
        if j == 20 or j == 62:
            n = j + 1
            var = (s2 - s1 * s1 / n) / (n - 1)
            val[_RV21 if j == 20 else _RV63] = math.sqrt(var * 252.0) if var > 0.0 else 0.0


@njit(cache=True, inline="always")
def _dmi_step(
    pdm: float, mdm: float, tr: float, h: np.ndarray, lo: np.ndarray, c: np.ndarray, i: int
) -> tuple[float, float, float, float, float]:
    """One Wilder step of +DM, -DM and TR at session ``i``: (pdm, mdm, tr, DX or -1, TR_i).

    TA-Lib's DX is 100 |-DI - +DI| / (+DI + -DI) with each DI = 100 DM / TR; TR cancels, so DX takes
    one division instead of three (the divider is this loop's bottleneck), and the zero test of
    +DI + -DI is made without dividing by TR (which is positive once it is not zero).
    """
    plus, minus = _directional_move(h, lo, i)
    r = _true_range(h[i], lo[i], c[i - 1])
    pdm = pdm - pdm * _INV14 + plus
    mdm = mdm - mdm * _INV14 + minus
    tr = tr - tr * _INV14 + r
    dx = -1.0
    total = pdm + mdm
    if not _is_zero(tr) and abs(total) * 100.0 >= _EPS * tr:
        dx = 100.0 * (abs(mdm - pdm) / total)
    return pdm, mdm, tr, dx, r


@njit(cache=True, inline="always")
def _directional_indicators(pdm: float, mdm: float, tr: float) -> tuple[float, float]:
    """(+DI, -DI) from the smoothed +DM, -DM and TR; 0 while TR is 0, as in TA-Lib."""
    if _is_zero(tr):
        return 0.0, 0.0
    inv_tr = 100.0 / tr
    return pdm * inv_tr, mdm * inv_tr


_INV14 = 1.0 / 14
_STEADY = 50  # every recursive indicator below is seeded before this session


@njit(cache=True, inline="always")
def _wilder3(gain: float, loss: float, atr: float, d: float, r: float) -> tuple[float, float, float]:
    """One Wilder step (period 14) of RSI's average gain and loss and of the ATR."""
    return ((gain * 13 + max(d, 0.0)) * _INV14, (loss * 13 + max(-d, 0.0)) * _INV14, (atr * 13 + r) * _INV14)


@njit(cache=True, fastmath={"contract"})
def _last_recursive(h: np.ndarray, lo: np.ndarray, c: np.ndarray, val: np.ndarray) -> None:
    """EMA 20/50, MACD 12/26/9, RSI 14, ATR 14 and ADX/DI 14 at the last session, one pass.

    Sessions before ``_STEADY`` seed the indicators the way TA-Lib does (a simple mean, then the
    recursion), one short loop per phase so that no loop tests the session number; the rest run one
    loop of the EMA and Wilder steps of every indicator. Each ``a * b + c`` of those steps may run
    as one fused multiply-add (``contract``): one rounding instead of two, fewer instructions in the
    loop that dominates the kernel, and results within TA-Lib's tolerance like the reordered DX.
    """
    m = c.size
    seed = min(m, _STEADY)
    k20, k50, k26, k12, k9 = 2.0 / 21, 2.0 / 51, 2.0 / 27, 2.0 / 13, 2.0 / 10
    # EMA 20 and 50: the mean of the first n closes, then the recursion.
    e20 = 0.0
    for i in range(min(seed, 20)):
        e20 += c[i]
    e20 /= 20
    for i in range(20, seed):
        e20 = (c[i] - e20) * k20 + e20
    e50 = 0.0
    for i in range(seed):
        e50 += c[i]
    e50 /= 50
    # MACD: EMA 26 from the mean of sessions 0-25, EMA 12 from the mean of sessions 14-25 (TA-Lib
    # aligns both on the slow one); the signal line from the mean of the first 9 MACD values.
    slow = fast = sig = 0.0
    for i in range(min(seed, 26)):
        slow += c[i]
    for i in range(14, min(seed, 26)):
        fast += c[i]
    slow /= 26
    fast /= 12
    line_sum = fast - slow
    for i in range(26, min(seed, 34)):
        slow = (c[i] - slow) * k26 + slow
        fast = (c[i] - fast) * k12 + fast
        line_sum += fast - slow
    sig = line_sum / 9
    for i in range(34, seed):
        slow = (c[i] - slow) * k26 + slow
        fast = (c[i] - fast) * k12 + fast
        sig = ((fast - slow) - sig) * k9 + sig
    # DMI, RSI and ATR: sums of the first 13 (DM, TR) or 14 (gains, losses, TR) moves, then Wilder
    # steps; ADX from the mean of the first 14 DX values.
    gain = loss = atr = pdm = mdm = tr = adx = sum_dx = 0.0
    for i in range(1, min(seed, 14)):
        plus, minus = _directional_move(h, lo, i)
        pdm += plus
        mdm += minus
        r = _true_range(h[i], lo[i], c[i - 1])
        tr += r
        d = c[i] - c[i - 1]
        gain += max(d, 0.0)
        loss += max(-d, 0.0)
        atr += r
    if seed > 14:
        pdm, mdm, tr, dx, r = _dmi_step(pdm, mdm, tr, h, lo, c, 14)
        sum_dx += max(dx, 0.0)
        d = c[14] - c[13]
        gain = (gain + max(d, 0.0)) / 14
        loss = (loss + max(-d, 0.0)) / 14
        atr = (atr + r) / 14
    for i in range(15, min(seed, 27)):
        pdm, mdm, tr, dx, r = _dmi_step(pdm, mdm, tr, h, lo, c, i)
        sum_dx += max(dx, 0.0)
        gain, loss, atr = _wilder3(gain, loss, atr, c[i] - c[i - 1], r)
    if seed > 27:
        pdm, mdm, tr, dx, r = _dmi_step(pdm, mdm, tr, h, lo, c, 27)
        adx = (sum_dx + max(dx, 0.0)) / 14
        gain, loss, atr = _wilder3(gain, loss, atr, c[27] - c[26], r)
    for i in range(28, seed):
        pdm, mdm, tr, dx, r = _dmi_step(pdm, mdm, tr, h, lo, c, i)
        if dx >= 0.0:
            adx = (adx * 13 + dx) * _INV14
        gain, loss, atr = _wilder3(gain, loss, atr, c[i] - c[i - 1], r)
    for i in range(_STEADY, m):
        x = c[i]
        e20 = (x - e20) * k20 + e20
        e50 = (x - e50) * k50 + e50
        slow = (x - slow) * k26 + slow
        fast = (x - fast) * k12 + fast
        sig = ((fast - slow) - sig) * k9 + sig
        d = x - c[i - 1]
        pdm, mdm, tr, dx, r = _dmi_step(pdm, mdm, tr, h, lo, c, i)
        if dx >= 0.0:
            adx = (adx * 13 + dx) * _INV14
        gain, loss, atr = _wilder3(gain, loss, atr, d, r)
    if m >= 20:
        val[_EMA20] = e20
    if m >= 50:
        val[_EMA50] = e50
    if m >= 34:
        line = fast - slow
        val[_MACD] = line
        val[_MACDS] = sig
        val[_MACDH] = line - sig
    if m >= 15:
        s = gain + loss
        val[_RSI] = 100.0 * (gain / s) if not _is_zero(s) else 0.0
        val[_ATR] = atr
        val[_PDI], val[_MDI] = _directional_indicators(pdm, mdm, tr)
    if m >= 28:
        val[_ADX] = adx


# Below each bound (exclusive) float32 separates prices that differ in the given decimal place.
_FOUR_DECIMALS = 1024.0
_THREE_DECIMALS = 8192.0
_TWO_DECIMALS = 131072.0
_HALF_ULP32 = 2.0**-24  # half a float32 unit in the last place, relative to the value, at most


@njit(cache=True, inline="always")
def _on_grid(x: float, scale: float, step: float) -> float:
    """``x`` as the nearest multiple of ``step`` (= 1 / ``scale``) when that decimal rounds to ``x`` in
    float32, else ``x``.

    ``x * scale`` is exact (24 by at most 10 significant bits), so is its distance ``e`` to the nearest
    integer k, and ``x + e * step`` is k / scale correctly rounded (checked for every k of each
    grid by the tests), without a division. ``e`` is within half a float32 unit of ``x`` exactly when
    ``x`` is the decimal's float32, up to the unit's size: a value off the grid is never moved further
    than float32 rounding moved it.
    """
    y = x * scale
    e = np.rint(y) - y
    return x + e * step if abs(e) <= abs(y) * _HALF_ULP32 else x


@njit(cache=True, inline="always")
def _restore_decimal(x: float) -> float:
    """A float32 price (widened) as the float64 of the decimal it was rounded from, when float32 can
    tell; NaN and infinities pass through."""
    a = abs(x)
    four = a < _FOUR_DECIMALS
    three = a < _THREE_DECIMALS
    d = _on_grid(x, 1e4 if four else (1e3 if three else 1e2), 1e-4 if four else (1e-3 if three else 1e-2))
    return d if a < _TWO_DECIMALS else x


@njit(cache=True, inline="always")
def _magnitude(a: float, b: float, c: float, top: float) -> float:
    """The largest of ``top``, |a|, |b| and |c|, NaN left out (every comparison with it is false)."""
    m = abs(a) if abs(a) > abs(b) else abs(b)
    m = m if m > abs(c) else abs(c)
    return m if m > top else top


@njit(cache=True)
def _restore_rows(buf: np.ndarray, first: int, last: int, n: int, top: float) -> None:
    """:func:`_restore_decimal` over ``buf[first:last, :n]`` in place, one contiguous row at a time
    (the loops vectorise). ``top`` bounds the magnitudes: below 1024 every price has the same grid,
    and the loop skips choosing one per price."""
    for k in range(first, last):
        if top < _FOUR_DECIMALS:
            for i in range(n):
                buf[k, i] = _on_grid(buf[k, i], 1e4, 1e-4)
        else:
            for i in range(n):
                buf[k, i] = _restore_decimal(buf[k, i])


@njit(cache=True)
def _gather_row(panel: np.ndarray, r: int, buf: np.ndarray) -> tuple[int, int, bool]:
    """Row ``r``'s complete bars (all five fields finite) into ``buf[field, :n]`` as float64.

    Returns (n complete bars, finite closes, whether the as-of session is complete). Branch-free:
    every bar is written at the next slot, which advances only past a complete one (the sum of the
    five is finite exactly when all five are). High, low and close are restored to their decimals;
    the open only at the last bar, the one session whose open the scoring features read.
    """
    n = 0
    closes = 0
    ok = False
    top = 0.0
    for j in range(panel.shape[1]):
        o = np.float64(panel[r, j, 0])
        hi = np.float64(panel[r, j, 1])
        low = np.float64(panel[r, j, 2])
        x = np.float64(panel[r, j, 3])
        vol = np.float64(panel[r, j, 4])
        buf[0, n] = o
        buf[1, n] = hi
        buf[2, n] = low
        buf[3, n] = x
        buf[4, n] = vol
        ok = np.isfinite(o + hi + low + x + vol)
        n += ok
        closes += np.isfinite(x)
        top = _magnitude(hi, low, x, top)
    _restore_rows(buf, 1, 4, n, top)
    if n > 0:
        buf[0, n - 1] = _restore_decimal(buf[0, n - 1])
    return n, closes, ok


@njit(cache=True)
def _put_symbol(
    r: int,
    buf: np.ndarray,
    n: int,
    closes: int,
    last: bool,
    val: np.ndarray,
    row: np.ndarray,
    feats: np.ndarray,
    levels: np.ndarray,
    spark: np.ndarray,
) -> None:
    """Row ``r`` of the outputs from its gathered bars and its indicator values at the as-of session."""
    levels[r, N_LEVELS - 1] = closes
    o, h, lo, c, v = buf[0, :n], buf[1, :n], buf[2, :n], buf[3, :n], buf[4, :n]
    for i in range(min(n, SPARKLINE_LENGTH)):
        spark[r, SPARKLINE_LENGTH - 1 - i] = c[n - 1 - i]
    if n == 0 or not last:
        return
    t = n - 1
    _write_features(val, o, h, lo, c, v, t, row)
    for k in range(N_FEATURES):
        feats[r, k] = row[k]
    lv = (
        c[t],
        c[t - 1] if t >= 1 else np.nan,
        o[t],
        h[t],
        lo[t],
        v[t],
        val[_ATR],
        val[_SMA20],
        val[_SMA50],
        val[_SMA200],
        val[_HH252],
        val[_LL252],
        val[_AVGV20],
        val[_DV20],
    )
    for k in range(N_LEVELS - 1):
        levels[r, k] = lv[k]


@njit(cache=True)
def _as_of_values(panel: np.ndarray, r: int, buf: np.ndarray, tp: np.ndarray, val: np.ndarray) -> tuple[int, int, bool]:
    """Row ``r`` gathered into ``buf`` (see :func:`_gather_row`, whose result this returns) and its
    indicator values at the as-of session into ``val`` (NaN when that session's bar is missing)."""
    n, closes, last = _gather_row(panel, r, buf)
    val[:] = np.nan
    if n > 0 and last:
        _last_recursive(buf[1, :n], buf[2, :n], buf[3, :n], val)
        _window_values(buf[0, :n], buf[1, :n], buf[2, :n], buf[3, :n], buf[4, :n], tp, val)
    return n, closes, last


_BLOCK = 64  # symbols per parallel task: scratch buffers are allocated once per block


@njit(cache=True, parallel=True)
def _score_kernel(panel: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n_sym, n_ses = panel.shape[0], panel.shape[1]
    feats = np.full((n_sym, N_FEATURES), np.nan, dtype=np.float32)
    levels = np.full((n_sym, N_LEVELS), np.nan, dtype=np.float32)
    spark = np.full((n_sym, SPARKLINE_LENGTH), np.nan, dtype=np.float32)
    for b in prange((n_sym + _BLOCK - 1) // _BLOCK):
        buf = np.empty((5, max(n_ses, 1)))
        val = np.empty(_N_ROWS)
        tp = np.empty(20)
        row = np.empty(N_FEATURES)
        for r in range(b * _BLOCK, min(n_sym, (b + 1) * _BLOCK)):
            n, closes, last = _as_of_values(panel, r, buf, tp, val)
            _put_symbol(r, buf, n, closes, last, val, row, feats, levels, spark)
    return feats, levels, spark


@njit(cache=True, parallel=True)
def _as_of_kernel(panel: np.ndarray) -> np.ndarray:
    n_sym, n_ses = panel.shape[0], panel.shape[1]
    out = np.empty((n_sym, _N_ROWS))
    for b in prange((n_sym + _BLOCK - 1) // _BLOCK):
        buf = np.empty((5, max(n_ses, 1)))
        tp = np.empty(20)
        for r in range(b * _BLOCK, min(n_sym, (b + 1) * _BLOCK)):
            _as_of_values(panel, r, buf, tp, out[r])
    return out


@njit(cache=True)
def _decimal_block(panel: np.ndarray) -> np.ndarray:
    out = np.empty(panel.shape)
    for r in range(panel.shape[0]):
        for j in range(panel.shape[1]):
            for k in range(4):
                out[r, j, k] = _restore_decimal(np.float64(panel[r, j, k]))
            out[r, j, 4] = panel[r, j, 4]
    return out


@njit(cache=True)
def _gather(panel: np.ndarray, r: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Row ``r``'s complete bars (all five fields finite) as float64 series, prices restored to their
    decimals, and their positions."""
    t = panel.shape[1]
    buf = np.empty((5, t))
    idx = np.empty(t, dtype=np.int64)
    n = 0
    top = 0.0
    for j in range(t):
        o, h, lo, c, v = panel[r, j, 0], panel[r, j, 1], panel[r, j, 2], panel[r, j, 3], panel[r, j, 4]
        if np.isfinite(o) and np.isfinite(h) and np.isfinite(lo) and np.isfinite(c) and np.isfinite(v):
            buf[0, n] = o
            buf[1, n] = h
            buf[2, n] = lo
            buf[3, n] = c
            buf[4, n] = v
            idx[n] = j
            n += 1
            top = _magnitude(_magnitude(o, h, lo, top), c, c, top)
    _restore_rows(buf, 0, 4, n, top)
    return buf[0, :n], buf[1, :n], buf[2, :n], buf[3, :n], buf[4, :n], idx[:n]


@njit(cache=True, parallel=True)
def _training_kernel(panel: np.ndarray, sessions: np.ndarray) -> np.ndarray:
    n_sym, n_ses = panel.shape[0], panel.shape[1]
    out = np.full((n_sym, sessions.size, N_FEATURES), np.nan, dtype=np.float32)
    for r in prange(n_sym):
        o, h, lo, c, v, idx = _gather(panel, r)
        if idx.size == 0:
            continue
        # Position of each session among the present ones (-1 where the bar is missing).
        pos = np.full(n_ses, -1, dtype=np.int64)
        for i in range(idx.size):
            pos[idx[i]] = i
        s = _indicators(o, h, lo, c, v, 0)
        row = np.empty(N_FEATURES)
        for k in range(sessions.size):
            t = pos[sessions[k]]
            if t >= 0:
                _write_features(_values_at(s, t), o, h, lo, c, v, t, row)
                out[r, k] = row.astype(np.float32)
    return out


@dataclass(frozen=True)
class PanelFeatures:
    """Features, levels, sparklines and states of one panel at its as-of session (rows = symbols)."""

    features: np.ndarray  # float32 (symbols, N_FEATURES)
    levels: np.ndarray  # float32 (symbols, N_LEVELS)
    sparklines: np.ndarray  # float32 (symbols, SPARKLINE_LENGTH)
    states: np.ndarray  # int8 SymbolState values


def check_panel(panel: np.ndarray) -> None:
    """Raise ValueError naming the defect unless ``panel`` is a (symbols, sessions, 5) float array."""
    if panel.ndim != 3 or panel.shape[2] != len(PANEL_FIELDS):
        raise ValueError(f"panel must have shape (symbols, sessions, {len(PANEL_FIELDS)}), got {panel.shape}")
    if panel.dtype.kind != "f":
        raise ValueError(f"panel must hold floats, got {panel.dtype}")


def symbol_states(closes: np.ndarray, last_close: np.ndarray) -> np.ndarray:
    """SymbolState per row from its count of finite closes and its close at the as-of session:
    NO_DATA, then INSUFFICIENT_HISTORY (< MIN_HISTORY closes), then STALE (no as-of close)."""
    states = np.full(closes.shape[0], SymbolState.OK, dtype=np.int8)
    states[~np.isfinite(last_close)] = SymbolState.STALE
    states[closes < MIN_HISTORY] = SymbolState.INSUFFICIENT_HISTORY
    states[closes == 0] = SymbolState.NO_DATA
    return states


def score_features(panel: np.ndarray) -> PanelFeatures:
    """Features and levels at the last session of the axis for every symbol of ``panel``."""
    check_panel(panel)
    feats, levels, spark = _score_kernel(np.ascontiguousarray(panel, dtype=np.float32))
    last_close = panel[:, -1, PANEL_FIELDS.index("close")] if panel.shape[1] else np.full(panel.shape[0], np.nan)
    states = symbol_states(levels[:, N_LEVELS - 1], last_close)
    return PanelFeatures(features=feats, levels=levels, sparklines=spark, states=states)


def as_of_indicators(panel: np.ndarray) -> np.ndarray:
    """Float64 (symbols, len(INDICATORS)): the indicator values :func:`score_features` derives the
    features from, through the same kernels; NaN in warm-up and where the as-of bar is missing."""
    check_panel(panel)
    return _as_of_kernel(np.ascontiguousarray(panel, dtype=np.float32))


def decimal_prices(panel: np.ndarray) -> np.ndarray:
    """The float32 ``panel`` as float64, open, high, low and close restored to their decimals as the
    gathers restore them (volume widened as it is): the bars the kernels compute on."""
    check_panel(panel)
    return _decimal_block(np.ascontiguousarray(panel, dtype=np.float32))


def training_features(panel: np.ndarray, sessions: np.ndarray) -> np.ndarray:
    """Features (symbols, len(sessions), N_FEATURES) at the given session positions of the axis."""
    check_panel(panel)
    sessions = np.asarray(sessions, dtype=np.int64)
    if sessions.size and (sessions.min() < 0 or sessions.max() >= panel.shape[1]):
        raise ValueError(f"session positions must lie in [0, {panel.shape[1]})")
    return _training_kernel(np.ascontiguousarray(panel, dtype=np.float32), sessions)


def warm_up() -> None:
    """Compile (or load from the disk cache) every kernel on a tiny panel."""
    rng = np.random.default_rng(0)
    close = 10.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, (2, 300)), axis=1))
    panel = np.stack([close, close * 1.01, close * 0.99, close, np.full_like(close, 1e5)], axis=2)
    panel = panel.astype(np.float32)
    score_features(panel)
    training_features(panel, np.array([299]))
