"""Bars of chosen symbols across a window of raw sessions, as one (symbols, sessions, OHLCV) block.

Windows the session stack (services/fetcher/stack.py) cannot hold, snapshots and single-symbol
histories are gathered here: a Numba kernel copies each symbol's row of each session by index.
Per-ticker ranges are laid over a block by day (:func:`overlay`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numba import njit
from numba.typed import List

from services.fetcher.calendar import as_day
from services.fetcher.jsonbars import parse_results
from services.fetcher.polygon import TickerRange
from services.fetcher.store import PANEL_FIELDS, SessionData
from services.fetcher.tickers import TickerIndex


@njit(cache=True, nogil=True)
def _gather(sources: List[np.ndarray], rows: np.ndarray, present: np.ndarray, out: np.ndarray) -> None:
    n_fields = out.shape[2]
    for j in range(len(sources)):
        if present[j]:
            src = sources[j]
            for i in range(rows.shape[1]):
                r = rows[j, i]
                for f in range(n_fields):
                    out[i, j, f] = src[r, f]
        else:
            for i in range(rows.shape[1]):
                for f in range(n_fields):
                    out[i, j, f] = np.nan


class Gatherer:
    """The sessions of a window, ready to gather blocks of any symbols from (None: a missing session)."""

    def __init__(self, sessions: Sequence[SessionData | None]) -> None:
        self.sessions = list(sessions)
        self.present = np.array([s is not None for s in sessions], dtype=np.bool_)
        filler = np.full((1, 6), np.nan, dtype=np.float32)
        self.sources = List([s.padded if s is not None else filler for s in sessions])

    def chunk(self, ids: np.ndarray) -> np.ndarray:
        """Unadjusted (len(ids), sessions, 5) float32 block of the tickers ``ids``; NaN where a session
        lacks a ticker (and for ids -1)."""
        rows = np.zeros((len(self.sessions), len(ids)), dtype=np.int64)
        for j, data in enumerate(self.sessions):
            if data is not None:
                rows[j] = data.rows(ids)
        out = np.empty((len(ids), len(self.sessions), len(PANEL_FIELDS)), dtype=np.float32)
        _gather(self.sources, rows, self.present, out)
        return out


def overlay(block: np.ndarray, window: np.ndarray, ranges: Sequence[tuple[int, TickerRange]]) -> None:
    """Write per-ticker bars (row in ``block``, range) into ``block`` where their days fall in ``window``."""
    if not ranges:
        return
    rows = np.concatenate([np.full(len(r.days), i, dtype=np.int64) for i, r in ranges])
    days = np.concatenate([r.days for _, r in ranges])
    values = np.concatenate([r.values[:, : len(PANEL_FIELDS)] for _, r in ranges])
    cols = np.searchsorted(window, days)
    hit = (cols < len(window)) & (window[np.minimum(cols, len(window) - 1)] == days)
    block[rows[hit], cols[hit]] = values[hit]


def warm_kernels() -> None:
    """Compile (or load from the disk cache) the Numba kernels before the first request needs them."""
    parsed = parse_results(b'{"results":[{"T":"A","o":1.5,"h":2,"l":1,"c":2,"v":10,"vw":1.7,"t":1}]}')
    assert parsed is not None
    scratch = TickerIndex(capacity=4)
    scratch.ids(["B"])
    scratch.ids_of_spans(parsed.buf, parsed.spans)
    data = SessionData(day=as_day("2026-01-02"), ids=np.zeros(1, np.int64), padded=np.zeros((2, 6), np.float32))
    Gatherer([data, None]).chunk(np.array([0, -1]))
