"""Bars on a tick grid, as an exchange prints them: decimals with many exactly equal moves.

Prices are whole ticks (1/100 cent below $1, cents above), built from a few move sizes so that an
up-move of the high often equals the down-move of the low, closes repeat, bars go flat for a run
and some sessions are missing. :func:`tick_bars` returns the float64 decimal prices a JSON parser
gives for those ticks (the oracle's input) and the float32 panel row the fetcher would store.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PANEL_FIELDS = ("open", "high", "low", "close", "volume")


@dataclass(frozen=True)
class Regime:
    """A price level in ticks and the tick's number of decimals."""

    name: str
    decimals: int
    level: tuple[int, int]  # range of the first close, in ticks


# Below these prices float32 keeps a tick of that many decimals apart from its neighbours, so the
# scan can give the decimal back; above them it cannot (a documented limit of the scan's gather).
RECOVERABLE_BELOW = {4: 1024.0, 3: 8192.0, 2: 131072.0}

REGIMES = (
    Regime("sub-penny below $1", 4, (300, 9_000)),
    Regime("cents", 2, (150, 90_000)),
    Regime("cents above $1024", 2, (110_000, 700_000)),
    Regime("tenths of a cent above $1024", 3, (1_100_000, 6_000_000)),
    Regime("cents above $8192", 2, (900_000, 8_000_000)),
)


def tick_bars(seed: int, n: int, regime: Regime, gaps: int = 0, flat_runs: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(decimal float64 (n, 5), float32 (n, 5)) OHLCV bars; a missing session is NaN in every field,
    and a few more have one field missing."""
    rng = np.random.default_rng(seed)
    lo_level, hi_level = regime.level
    unit = max(1, int(rng.integers(lo_level, hi_level)) // int(rng.choice([80, 150, 300])))
    moves = np.array([-3, -2, -1, -1, 0, 0, 0, 1, 1, 2, 3])
    close = np.empty(n, dtype=np.int64)
    close[0] = rng.integers(lo_level, hi_level)
    close[1:] = rng.choice(moves, n - 1) * unit
    close = np.cumsum(close)
    # The open gaps a little from the last close; high and low reach past the body by a few units
    # drawn from one small set, so the high's up-move and the low's down-move often tie.
    prev = np.concatenate([[close[0]], close[:-1]])
    open_ = prev + rng.choice([-1, 0, 0, 0, 1], n) * unit
    reach = np.array([0, 0, 1, 1, 2, 3])
    high = np.maximum(open_, close) + rng.choice(reach, n) * unit
    low = np.minimum(open_, close) - rng.choice(reach, n) * unit
    for _ in range(flat_runs):
        start = int(rng.integers(0, n))
        stop = min(n, start + int(rng.integers(2, 30)))
        open_[start:stop] = high[start:stop] = low[start:stop] = close[start:stop] = close[start]
    floor = max(1, lo_level // 10)
    shift = np.maximum(floor - low.min(), 0)  # keep every price positive
    ticks = np.stack([open_, high, low, close], axis=1) + shift
    scale = 10.0**regime.decimals
    # A walk that drifts past the regime's recoverable range is held inside it (clipping is monotone,
    # so every bar keeps low <= open, close <= high).
    ticks = np.clip(ticks, floor, int(RECOVERABLE_BELOW[regime.decimals] * scale) - 1)
    decimal = np.empty((n, 5))
    decimal[:, :4] = ticks / scale  # an integer over a power of ten: the double of that decimal
    decimal[:, 4] = np.where(rng.random(n) < 0.03, 0.0, rng.integers(100, 3_000_000, n))
    if gaps:
        decimal[rng.choice(n, min(gaps, n), replace=False)] = np.nan
        holes = rng.choice(n, min(gaps // 3, n), replace=False)
        decimal[holes, rng.integers(0, 5, holes.size)] = np.nan
    return decimal, decimal.astype(np.float32)


def complete(decimal: np.ndarray) -> np.ndarray:
    """Rows of a (sessions, 5) block whose five fields are all finite: the sessions the scan uses."""
    return np.asarray(np.isfinite(decimal).all(axis=1))


def panel_of(rows: list[np.ndarray]) -> np.ndarray:
    """Float32 (symbols, sessions, 5) panel from equally long (sessions, 5) blocks."""
    return np.ascontiguousarray(np.stack(rows), dtype=np.float32)
