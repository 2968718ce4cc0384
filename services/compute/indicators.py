"""Technical indicators as Numba kernels over float64 series and (symbols, sessions) blocks.

Layout (the vectorbt way): every indicator has a ``_<name>_dense`` kernel that follows TA-Lib's C
code step for step (seeding, warm-up length, order of floating-point operations, TA-Lib's zero
guards as of TA-Lib 0.8, whose flat-window tests for CCI and BBANDS differ from earlier releases)
on a series without gaps, a public 1-D kernel ``<name>(...)`` that applies
the missing-session policy below, and a 2-D driver ``<name>_2d(...)`` that runs rows (symbols) in
``prange``. Everything is float64 inside; results are new arrays.

Missing sessions: a session is missing for a kernel when any input it reads is NaN there. Missing
sessions are *skipped*: the kernel runs on the sessions that have data, as if the missing ones had
never existed, and writes NaN at the missing ones. So for every present session the result equals
TA-Lib's on the series with the gaps removed, a one-day gap does not restart a 200-session warm-up,
and nothing is ever carried forward into a session that has no bar. Outputs are NaN during the
warm-up (TA-Lib's lookback, counted in present sessions).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

# TA-Lib's TA_IS_ZERO / TA_IS_ZERO_OR_NEG threshold.
_EPS = 1e-8
ANNUALISATION = 252.0


@njit(cache=True, inline="always")
def _is_zero(v: float) -> bool:
    return -_EPS < v < _EPS


# TA-Lib's TA_EPSILON for its scale-relative zero test TA_IS_ZERO_SCALED.
_EPS_SCALED = 1e-14


@njit(cache=True, inline="always")
def _cci_value(diff: float, dev: float, avg: float) -> float:
    """CCI from the typical price's distance ``diff`` to the window mean ``avg`` and the mean
    absolute deviation ``dev``: 0 when either is within TA-Lib's relative band of the mean, so a
    window of identical prices gives 0 whatever residue the mean's rounding leaves."""
    band = _EPS_SCALED * abs(avg)
    return diff / (0.015 * dev) if (abs(diff) > band and abs(dev) > band) else 0.0


# --------------------------------------------------------------------------------------------
# Dense kernels: input without NaN, ``out`` pre-filled with NaN, written from the warm-up on.
# --------------------------------------------------------------------------------------------


@njit(cache=True)
def _sma_dense(x: np.ndarray, n: int, out: np.ndarray) -> None:
    m = x.size
    if m < n:
        return
    total = 0.0
    for i in range(n - 1):
        total += x[i]
    for i in range(n - 1, m):
        total += x[i]
        out[i] = total / n
        total -= x[i - n + 1]


@njit(cache=True)
def _ema_dense(x: np.ndarray, n: int, start: int, out: np.ndarray) -> None:
    """EMA seeded at ``start`` with the mean of the ``n`` values ending there (TA-Lib INT_EMA)."""
    m = x.size
    if start >= m or start < n - 1:
        return
    k = 2.0 / (n + 1)
    total = 0.0
    for i in range(start - n + 1, start + 1):
        total += x[i]
    prev = total / n
    out[start] = prev
    for i in range(start + 1, m):
        prev = (x[i] - prev) * k + prev
        out[i] = prev


@njit(cache=True)
def _rsi_dense(x: np.ndarray, n: int, out: np.ndarray) -> None:
    m = x.size
    if m <= n:
        return
    gain = 0.0
    loss = 0.0
    for i in range(1, n + 1):
        d = x[i] - x[i - 1]
        if d < 0:
            loss -= d
        else:
            gain += d
    loss /= n
    gain /= n
    s = gain + loss
    out[n] = 100.0 * (gain / s) if not _is_zero(s) else 0.0
    for i in range(n + 1, m):
        d = x[i] - x[i - 1]
        loss *= n - 1
        gain *= n - 1
        if d < 0:
            loss -= d
        else:
            gain += d
        loss /= n
        gain /= n
        s = gain + loss
        out[i] = 100.0 * (gain / s) if not _is_zero(s) else 0.0


@njit(cache=True, inline="always")
def _true_range(h: float, lo: float, prev_close: float) -> float:
    tr = h - lo
    a = abs(h - prev_close)
    if a > tr:
        tr = a
    a = abs(lo - prev_close)
    if a > tr:
        tr = a
    return tr


@njit(cache=True, inline="always")
def _directional_move(h: np.ndarray, lo: np.ndarray, i: int) -> tuple[float, float]:
    """(+DM, -DM) of session ``i``: the larger of the up and down moves, if positive; the other is 0."""
    diff_p = h[i] - h[i - 1]
    diff_m = lo[i - 1] - lo[i]
    plus = diff_p if (diff_p > 0 and diff_p > diff_m) else 0.0
    minus = diff_m if (diff_m > 0 and diff_p < diff_m) else 0.0
    return plus, minus


@njit(cache=True)
def _atr_dense(h: np.ndarray, lo: np.ndarray, c: np.ndarray, n: int, out: np.ndarray) -> None:
    m = c.size
    if m <= n:
        return
    total = 0.0
    for i in range(1, n + 1):
        total += _true_range(h[i], lo[i], c[i - 1])
    prev = total / n
    out[n] = prev
    for i in range(n + 1, m):
        prev *= n - 1
        prev += _true_range(h[i], lo[i], c[i - 1])
        prev /= n
        out[i] = prev


@njit(cache=True)
def _dmi_dense(
    h: np.ndarray, lo: np.ndarray, c: np.ndarray, n: int, adx: np.ndarray, plus_di: np.ndarray, minus_di: np.ndarray
) -> None:
    """ADX, +DI, -DI (TA-Lib ADX / PLUS_DI / MINUS_DI): DI from index n, ADX from 2n - 1."""
    m = c.size
    pdm = 0.0
    mdm = 0.0
    tr = 0.0
    sum_dx = 0.0
    prev_adx = 0.0
    for i in range(1, m):
        plus, minus = _directional_move(h, lo, i)
        r = _true_range(h[i], lo[i], c[i - 1])
        if i < n:
            pdm += plus
            mdm += minus
            tr += r
            continue
        pdm = pdm - pdm / n + plus
        mdm = mdm - mdm / n + minus
        tr = tr - tr / n + r
        dx = -1.0
        if not _is_zero(tr):
            pdi = 100.0 * (pdm / tr)
            mdi = 100.0 * (mdm / tr)
            s = pdi + mdi
            if not _is_zero(s):
                dx = 100.0 * (abs(mdi - pdi) / s)
        else:
            pdi = 0.0
            mdi = 0.0
        plus_di[i] = pdi
        minus_di[i] = mdi
        if i < 2 * n - 1:
            if dx >= 0.0:
                sum_dx += dx
        elif i == 2 * n - 1:
            if dx >= 0.0:
                sum_dx += dx
            prev_adx = sum_dx / n
            adx[i] = prev_adx
        else:
            if dx >= 0.0:
                prev_adx = ((prev_adx * (n - 1)) + dx) / n
            adx[i] = prev_adx


@njit(cache=True)
def _macd_dense(
    x: np.ndarray, fast: int, slow: int, signal: int, line: np.ndarray, sig: np.ndarray, hist: np.ndarray
) -> None:
    """TA-Lib MACD: both EMAs are seeded at index slow - 1, the signal EMA seeds on the line."""
    m = x.size
    start = slow - 1
    if m <= start + signal - 1:
        return
    fast_ema = np.full(m, np.nan)
    slow_ema = np.full(m, np.nan)
    _ema_dense(x, slow, start, slow_ema)
    _ema_dense(x, fast, start, fast_ema)
    raw = np.empty(m - start)
    for i in range(raw.size):
        raw[i] = fast_ema[start + i] - slow_ema[start + i]
    seeded = np.full(raw.size, np.nan)
    _ema_dense(raw, signal, signal - 1, seeded)
    for i in range(start + signal - 1, m):
        j = i - start
        line[i] = raw[j]
        sig[i] = seeded[j]
        hist[i] = raw[j] - seeded[j]


@njit(cache=True, inline="always")
def _window_deviation(x: np.ndarray, start: int, n: int) -> float:
    """Population standard deviation of ``x[start:start + n]`` in two passes (mean, then squared
    distances), as TA-Lib 0.8 computes it; 0 within TA-Lib's relative band of the mean, so a window
    of equal prices gives 0 whatever residue the mean's rounding leaves."""
    mean = 0.0
    for j in range(start, start + n):
        mean += x[j]
    mean /= n
    var = 0.0
    for j in range(start, start + n):
        d = x[j] - mean
        var += d * d
    sd = math.sqrt(var / n)
    return sd if sd > _EPS_SCALED * abs(mean) else 0.0


@njit(cache=True)
def _bollinger_dense(x: np.ndarray, n: int, k: float, upper: np.ndarray, middle: np.ndarray, lower: np.ndarray) -> None:
    """TA-Lib BBANDS with an SMA middle and the window's population deviation (see
    :func:`_window_deviation`)."""
    m = x.size
    if m < n:
        return
    _sma_dense(x, n, middle)
    for i in range(n - 1, m):
        width = _window_deviation(x, i - n + 1, n) * k
        upper[i] = middle[i] + width
        lower[i] = middle[i] - width


@njit(cache=True)
def _rolling_max_dense(x: np.ndarray, n: int, out: np.ndarray) -> None:
    """TA-Lib MAX: keeps the index of the highest value and rescans only when it leaves the window."""
    best_idx = -1
    best = 0.0
    for i in range(n - 1, x.size):
        trailing = i - n + 1
        if best_idx < trailing:
            best_idx = trailing
            best = x[trailing]
            for j in range(trailing + 1, i + 1):
                if x[j] > best:
                    best_idx = j
                    best = x[j]
        elif x[i] >= best:
            best_idx = i
            best = x[i]
        out[i] = best


@njit(cache=True)
def _rolling_min_dense(x: np.ndarray, n: int, out: np.ndarray) -> None:
    """TA-Lib MIN, the mirror of :func:`_rolling_max_dense`."""
    best_idx = -1
    best = 0.0
    for i in range(n - 1, x.size):
        trailing = i - n + 1
        if best_idx < trailing:
            best_idx = trailing
            best = x[trailing]
            for j in range(trailing + 1, i + 1):
                if x[j] < best:
                    best_idx = j
                    best = x[j]
        elif x[i] <= best:
            best_idx = i
            best = x[i]
        out[i] = best


@njit(cache=True)
def _stochastic_dense(
    h: np.ndarray,
    lo: np.ndarray,
    c: np.ndarray,
    fastk: int,
    slowk: int,
    slowd: int,
    k_out: np.ndarray,
    d_out: np.ndarray,
) -> None:
    """TA-Lib STOCH with SMA smoothing: raw %K from index fastk - 1, slow %K and %D both start at
    fastk - 1 + (slowk - 1) + (slowd - 1)."""
    m = c.size
    first = fastk - 1 + slowk - 1 + slowd - 1
    if m <= first:
        return
    hh = np.full(m, np.nan)
    ll = np.full(m, np.nan)
    _rolling_max_dense(h, fastk, hh)
    _rolling_min_dense(lo, fastk, ll)
    raw = np.empty(m - fastk + 1)
    for i in range(fastk - 1, m):
        diff = (hh[i] - ll[i]) / 100.0
        raw[i - fastk + 1] = (c[i] - ll[i]) / diff if diff != 0.0 else 0.0
    k_smooth = np.full(raw.size, np.nan)
    _sma_dense(raw, slowk, k_smooth)
    d_smooth = np.full(raw.size, np.nan)
    _sma_dense(k_smooth[slowk - 1 :], slowd, d_smooth[slowk - 1 :])
    for i in range(first, m):
        j = i - fastk + 1
        k_out[i] = k_smooth[j]
        d_out[i] = d_smooth[j]


@njit(cache=True)
def _williams_r_dense(h: np.ndarray, lo: np.ndarray, c: np.ndarray, n: int, out: np.ndarray) -> None:
    m = c.size
    if m < n:
        return
    hh = np.full(m, np.nan)
    ll = np.full(m, np.nan)
    _rolling_max_dense(h, n, hh)
    _rolling_min_dense(lo, n, ll)
    for i in range(n - 1, m):
        diff = (hh[i] - ll[i]) * (-0.01)
        out[i] = (hh[i] - c[i]) / diff if diff != 0.0 else 0.0


@njit(cache=True)
def _cci_dense(h: np.ndarray, lo: np.ndarray, c: np.ndarray, n: int, first: int, out: np.ndarray) -> None:
    """TA-Lib CCI (mean deviation), written from index max(first, n - 1) on.

    Sums run in the order of TA-Lib's circular buffer so that degenerate windows (constant prices)
    give TA-Lib's exact result, not a rounding artefact of another order.
    """
    m = c.size
    if m < n:
        return
    tp = np.empty(m)
    for i in range(m):
        tp[i] = (h[i] + lo[i] + c[i]) / 3
    for i in range(max(first, n - 1), m):
        start = i - n + 1
        # Slot j of TA-Lib's buffer holds the session s of the window with s % n == j.
        avg = 0.0
        for j in range(n):
            avg += tp[start + (j - start) % n]
        avg /= n
        dev = 0.0
        for j in range(n):
            dev += abs(tp[start + (j - start) % n] - avg)
        out[i] = _cci_value(tp[i] - avg, dev / n, avg)


@njit(cache=True)
def _obv_dense(c: np.ndarray, v: np.ndarray, out: np.ndarray) -> None:
    m = c.size
    if m == 0:
        return
    prev = v[0]
    out[0] = prev
    for i in range(1, m):
        if c[i] > c[i - 1]:
            prev += v[i]
        elif c[i] < c[i - 1]:
            prev -= v[i]
        out[i] = prev


@njit(cache=True)
def _roc_dense(x: np.ndarray, n: int, out: np.ndarray) -> None:
    """TA-Lib ROCP: (x - x[n ago]) / x[n ago] as a fraction, 0 where the old value is 0."""
    for i in range(n, x.size):
        old = x[i - n]
        out[i] = (x[i] - old) / old if old != 0.0 else 0.0


@njit(cache=True)
def _realized_vol_dense(c: np.ndarray, n: int, out: np.ndarray) -> None:
    """Annualised sample standard deviation (ddof 1) of the last ``n`` daily log returns.

    Running sums leave rounding residue once earlier, larger moves leave the window: a window with
    no move at all (a flat stretch, counted exactly) is 0, and one whose variance comes out tiny
    against its mean square (equal moves) is computed again in two passes.
    """
    m = c.size
    if m <= n or n < 2:
        return
    r = np.empty(m)
    r[0] = 0.0
    for i in range(1, m):
        r[i] = math.log(c[i] / c[i - 1])
    s1 = 0.0
    s2 = 0.0
    moves = 0
    for i in range(1, n):
        s1 += r[i]
        s2 += r[i] * r[i]
        moves += r[i] != 0.0
    scale = math.sqrt(ANNUALISATION)
    for i in range(n, m):
        s1 += r[i]
        s2 += r[i] * r[i]
        moves += r[i] != 0.0
        var = (s2 - s1 * s1 / n) / (n - 1)
        if moves == 0:
            var = 0.0
        elif var <= 1e-9 * abs(s2) / n:
            var = _window_variance(r, i - n + 1, i + 1)
        out[i] = math.sqrt(var) * scale if var > 0.0 else 0.0
        old = r[i - n + 1]
        s1 -= old
        s2 -= old * old
        moves -= old != 0.0


@njit(cache=True)
def _window_variance(x: np.ndarray, lo: int, hi: int) -> float:
    """Sample variance (ddof 1) of ``x[lo:hi]`` in two passes: mean, then squared deviations."""
    n = hi - lo
    mean = 0.0
    for i in range(lo, hi):
        mean += x[i]
    mean /= n
    ss = 0.0
    for i in range(lo, hi):
        d = x[i] - mean
        ss += d * d
    return ss / (n - 1)


@njit(cache=True)
def _relative_volume_dense(v: np.ndarray, n: int, out: np.ndarray) -> None:
    """Volume over the average volume of the ``n`` previous sessions (NaN when that average is 0)."""
    m = v.size
    avg = np.full(m, np.nan)
    _sma_dense(v, n, avg)
    for i in range(n, m):
        base = avg[i - 1]
        out[i] = v[i] / base if base > 0.0 else np.nan


@njit(cache=True)
def _dollar_volume_dense(c: np.ndarray, v: np.ndarray, n: int, out: np.ndarray) -> None:
    """Average of close * volume over ``n`` sessions."""
    _sma_dense(c * v, n, out)


# --------------------------------------------------------------------------------------------
# Missing-session policy: keep the sessions where every input is finite, run, scatter back.
# --------------------------------------------------------------------------------------------


@njit(cache=True)
def present_index(*series: np.ndarray) -> np.ndarray:
    """Indices of the sessions where every given series is finite."""
    m = series[0].size
    keep = np.ones(m, dtype=np.bool_)
    for s in series:
        for i in range(m):
            if not np.isfinite(s[i]):
                keep[i] = False
    return np.flatnonzero(keep)


@njit(cache=True)
def _scatter(idx: np.ndarray, dense: np.ndarray, m: int) -> np.ndarray:
    out = np.full(m, np.nan)
    out[idx] = dense
    return out


@njit(cache=True)
def sma(x: np.ndarray, n: int) -> np.ndarray:
    """Simple moving average over ``n`` sessions (TA-Lib SMA)."""
    idx = present_index(x)
    d = np.full(idx.size, np.nan)
    _sma_dense(x[idx], n, d)
    return _scatter(idx, d, x.size)


@njit(cache=True)
def ema(x: np.ndarray, n: int) -> np.ndarray:
    """Exponential moving average, k = 2 / (n + 1), seeded with the SMA of the first ``n`` (TA-Lib EMA)."""
    idx = present_index(x)
    d = np.full(idx.size, np.nan)
    _ema_dense(x[idx], n, n - 1, d)
    return _scatter(idx, d, x.size)


@njit(cache=True)
def rsi_wilder(x: np.ndarray, n: int) -> np.ndarray:
    """RSI with Wilder smoothing seeded by simple means of the first ``n`` changes (TA-Lib RSI)."""
    idx = present_index(x)
    d = np.full(idx.size, np.nan)
    _rsi_dense(x[idx], n, d)
    return _scatter(idx, d, x.size)


@njit(cache=True)
def true_range(h: np.ndarray, lo: np.ndarray, c: np.ndarray) -> np.ndarray:
    """True range from the second present session on (TA-Lib TRANGE)."""
    idx = present_index(h, lo, c)
    hh, ll, cc = h[idx], lo[idx], c[idx]
    d = np.full(idx.size, np.nan)
    for i in range(1, idx.size):
        d[i] = _true_range(hh[i], ll[i], cc[i - 1])
    return _scatter(idx, d, c.size)


@njit(cache=True)
def atr_wilder(h: np.ndarray, lo: np.ndarray, c: np.ndarray, n: int) -> np.ndarray:
    """Average true range, Wilder smoothing seeded by the mean of the first ``n`` ranges (TA-Lib ATR)."""
    idx = present_index(h, lo, c)
    d = np.full(idx.size, np.nan)
    _atr_dense(h[idx], lo[idx], c[idx], n, d)
    return _scatter(idx, d, c.size)


@njit(cache=True)
def adx_wilder(h: np.ndarray, lo: np.ndarray, c: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ADX, +DI, -DI) with Wilder smoothing (TA-Lib ADX, PLUS_DI, MINUS_DI)."""
    idx = present_index(h, lo, c)
    a = np.full(idx.size, np.nan)
    p = np.full(idx.size, np.nan)
    q = np.full(idx.size, np.nan)
    _dmi_dense(h[idx], lo[idx], c[idx], n, a, p, q)
    m = c.size
    return _scatter(idx, a, m), _scatter(idx, p, m), _scatter(idx, q, m)


@njit(cache=True)
def macd(x: np.ndarray, fast: int, slow: int, signal: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(MACD line, signal, histogram) as TA-Lib MACD computes them."""
    idx = present_index(x)
    a = np.full(idx.size, np.nan)
    b = np.full(idx.size, np.nan)
    h = np.full(idx.size, np.nan)
    _macd_dense(x[idx], fast, slow, signal, a, b, h)
    m = x.size
    return _scatter(idx, a, m), _scatter(idx, b, m), _scatter(idx, h, m)


@njit(cache=True)
def bollinger(x: np.ndarray, n: int, k: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(upper, middle, lower): SMA ``n`` +- ``k`` population deviations (TA-Lib BBANDS, matype SMA)."""
    idx = present_index(x)
    u = np.full(idx.size, np.nan)
    mid = np.full(idx.size, np.nan)
    lo = np.full(idx.size, np.nan)
    _bollinger_dense(x[idx], n, k, u, mid, lo)
    m = x.size
    return _scatter(idx, u, m), _scatter(idx, mid, m), _scatter(idx, lo, m)


@njit(cache=True)
def rolling_max(x: np.ndarray, n: int) -> np.ndarray:
    """Highest value of the last ``n`` present sessions (TA-Lib MAX)."""
    idx = present_index(x)
    d = np.full(idx.size, np.nan)
    _rolling_max_dense(x[idx], n, d)
    return _scatter(idx, d, x.size)


@njit(cache=True)
def rolling_min(x: np.ndarray, n: int) -> np.ndarray:
    """Lowest value of the last ``n`` present sessions (TA-Lib MIN)."""
    idx = present_index(x)
    d = np.full(idx.size, np.nan)
    _rolling_min_dense(x[idx], n, d)
    return _scatter(idx, d, x.size)


@njit(cache=True)
def stochastic(
    h: np.ndarray, lo: np.ndarray, c: np.ndarray, fastk: int, slowk: int, slowd: int
) -> tuple[np.ndarray, np.ndarray]:
    """(slow %K, slow %D), both smoothed with SMAs (TA-Lib STOCH, matype 0)."""
    idx = present_index(h, lo, c)
    k = np.full(idx.size, np.nan)
    d = np.full(idx.size, np.nan)
    _stochastic_dense(h[idx], lo[idx], c[idx], fastk, slowk, slowd, k, d)
    m = c.size
    return _scatter(idx, k, m), _scatter(idx, d, m)


@njit(cache=True)
def williams_r(h: np.ndarray, lo: np.ndarray, c: np.ndarray, n: int) -> np.ndarray:
    """Williams %R, -100..0 (TA-Lib WILLR)."""
    idx = present_index(h, lo, c)
    d = np.full(idx.size, np.nan)
    _williams_r_dense(h[idx], lo[idx], c[idx], n, d)
    return _scatter(idx, d, c.size)


@njit(cache=True)
def cci(h: np.ndarray, lo: np.ndarray, c: np.ndarray, n: int) -> np.ndarray:
    """Commodity channel index with the mean deviation of the typical price (TA-Lib CCI)."""
    idx = present_index(h, lo, c)
    d = np.full(idx.size, np.nan)
    _cci_dense(h[idx], lo[idx], c[idx], n, 0, d)
    return _scatter(idx, d, c.size)


@njit(cache=True)
def obv(c: np.ndarray, v: np.ndarray) -> np.ndarray:
    """On-balance volume starting at the first volume (TA-Lib OBV)."""
    idx = present_index(c, v)
    d = np.full(idx.size, np.nan)
    _obv_dense(c[idx], v[idx], d)
    return _scatter(idx, d, c.size)


@njit(cache=True)
def rate_of_change(x: np.ndarray, n: int) -> np.ndarray:
    """Fractional change over ``n`` present sessions (TA-Lib ROCP)."""
    idx = present_index(x)
    d = np.full(idx.size, np.nan)
    _roc_dense(x[idx], n, d)
    return _scatter(idx, d, x.size)


@njit(cache=True)
def realized_vol(c: np.ndarray, n: int) -> np.ndarray:
    """Annualised standard deviation of the last ``n`` daily log returns (fraction)."""
    idx = present_index(c)
    d = np.full(idx.size, np.nan)
    _realized_vol_dense(c[idx], n, d)
    return _scatter(idx, d, c.size)


@njit(cache=True)
def relative_volume(v: np.ndarray, n: int) -> np.ndarray:
    """Volume / average volume of the ``n`` previous present sessions."""
    idx = present_index(v)
    d = np.full(idx.size, np.nan)
    _relative_volume_dense(v[idx], n, d)
    return _scatter(idx, d, v.size)


@njit(cache=True)
def average_dollar_volume(c: np.ndarray, v: np.ndarray, n: int) -> np.ndarray:
    """Average close * volume over ``n`` present sessions."""
    idx = present_index(c, v)
    d = np.full(idx.size, np.nan)
    _dollar_volume_dense(c[idx], v[idx], n, d)
    return _scatter(idx, d, c.size)


# --------------------------------------------------------------------------------------------
# 2-D drivers: rows are symbols, columns sessions; rows run in parallel.
# --------------------------------------------------------------------------------------------


@njit(cache=True, parallel=True)
def sma_2d(x: np.ndarray, n: int) -> np.ndarray:
    out = np.empty(x.shape)
    for r in prange(x.shape[0]):
        out[r] = sma(x[r], n)
    return out


@njit(cache=True, parallel=True)
def ema_2d(x: np.ndarray, n: int) -> np.ndarray:
    out = np.empty(x.shape)
    for r in prange(x.shape[0]):
        out[r] = ema(x[r], n)
    return out


@njit(cache=True, parallel=True)
def rsi_wilder_2d(x: np.ndarray, n: int) -> np.ndarray:
    out = np.empty(x.shape)
    for r in prange(x.shape[0]):
        out[r] = rsi_wilder(x[r], n)
    return out


@njit(cache=True, parallel=True)
def atr_wilder_2d(h: np.ndarray, lo: np.ndarray, c: np.ndarray, n: int) -> np.ndarray:
    out = np.empty(c.shape)
    for r in prange(c.shape[0]):
        out[r] = atr_wilder(h[r], lo[r], c[r], n)
    return out


@njit(cache=True, parallel=True)
def adx_wilder_2d(h: np.ndarray, lo: np.ndarray, c: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    a = np.empty(c.shape)
    p = np.empty(c.shape)
    q = np.empty(c.shape)
    for r in prange(c.shape[0]):
        a[r], p[r], q[r] = adx_wilder(h[r], lo[r], c[r], n)
    return a, p, q


@njit(cache=True, parallel=True)
def macd_2d(x: np.ndarray, fast: int, slow: int, signal: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    a = np.empty(x.shape)
    b = np.empty(x.shape)
    h = np.empty(x.shape)
    for r in prange(x.shape[0]):
        a[r], b[r], h[r] = macd(x[r], fast, slow, signal)
    return a, b, h


@njit(cache=True, parallel=True)
def bollinger_2d(x: np.ndarray, n: int, k: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    u = np.empty(x.shape)
    mid = np.empty(x.shape)
    lo = np.empty(x.shape)
    for r in prange(x.shape[0]):
        u[r], mid[r], lo[r] = bollinger(x[r], n, k)
    return u, mid, lo


@njit(cache=True, parallel=True)
def stochastic_2d(
    h: np.ndarray, lo: np.ndarray, c: np.ndarray, fastk: int, slowk: int, slowd: int
) -> tuple[np.ndarray, np.ndarray]:
    k = np.empty(c.shape)
    d = np.empty(c.shape)
    for r in prange(c.shape[0]):
        k[r], d[r] = stochastic(h[r], lo[r], c[r], fastk, slowk, slowd)
    return k, d


@njit(cache=True, parallel=True)
def cci_2d(h: np.ndarray, lo: np.ndarray, c: np.ndarray, n: int) -> np.ndarray:
    out = np.empty(c.shape)
    for r in prange(c.shape[0]):
        out[r] = cci(h[r], lo[r], c[r], n)
    return out


@njit(cache=True, parallel=True)
def williams_r_2d(h: np.ndarray, lo: np.ndarray, c: np.ndarray, n: int) -> np.ndarray:
    out = np.empty(c.shape)
    for r in prange(c.shape[0]):
        out[r] = williams_r(h[r], lo[r], c[r], n)
    return out


@njit(cache=True, parallel=True)
def obv_2d(c: np.ndarray, v: np.ndarray) -> np.ndarray:
    out = np.empty(c.shape)
    for r in prange(c.shape[0]):
        out[r] = obv(c[r], v[r])
    return out


@njit(cache=True, parallel=True)
def rolling_max_2d(x: np.ndarray, n: int) -> np.ndarray:
    out = np.empty(x.shape)
    for r in prange(x.shape[0]):
        out[r] = rolling_max(x[r], n)
    return out


@njit(cache=True, parallel=True)
def rolling_min_2d(x: np.ndarray, n: int) -> np.ndarray:
    out = np.empty(x.shape)
    for r in prange(x.shape[0]):
        out[r] = rolling_min(x[r], n)
    return out


@njit(cache=True, parallel=True)
def realized_vol_2d(c: np.ndarray, n: int) -> np.ndarray:
    out = np.empty(c.shape)
    for r in prange(c.shape[0]):
        out[r] = realized_vol(c[r], n)
    return out
