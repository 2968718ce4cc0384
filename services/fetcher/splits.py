"""Split events and the adjustment they call for.

Raw bars are stored unadjusted; every block the fetcher hands out is adjusted backwards with the
split table of its window (:func:`split_factors`, :func:`adjust`). The market-wide table is asked
``SPLITS_AHEAD`` past a window's end (splits are announced ahead of their execution) and kept in
memory for ``SPLITS_MEMO_TTL``, so a window moved on by a new session needs no request; tables are
also stored in Redis for other processes. Concurrent requests for the same table share one load.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from cachetools import TTLCache

from services.common.singleflight import SingleFlight
from services.fetcher.calendar import day_str
from services.fetcher.polygon import PolygonClient, SplitTable
from services.fetcher.request import RequestStats
from services.fetcher.store import BarStore

SPLITS_AHEAD = np.timedelta64(14, "D")
SPLITS_MEMO_TTL = 6 * 3600.0
MARKET = "all"


def split_factors(table: SplitTable, symbols: Sequence[str], sessions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``symbols`` with a split inside the window and their (rows, sessions) factors.

    Bars before a split's execution date are divided (prices) or multiplied (volume) by the
    product of split_to / split_from of every later split up to the last session. A row's factors
    depend only on its own symbol, so the rows of a slice of ``symbols`` get the same factors.
    """
    n_sessions = len(sessions)
    if not table.tickers or not len(symbols):
        return np.zeros(0, np.int64), np.ones((0, n_sessions))
    position = dict(zip(symbols, range(len(symbols)), strict=True))
    row = np.array([position.get(t, -1) for t in table.tickers], dtype=np.int64)
    k = np.searchsorted(sessions, table.dates, side="left")
    keep = (row >= 0) & (k > 0) & (table.dates <= sessions[-1])
    if not keep.any():
        return np.zeros(0, np.int64), np.ones((0, n_sessions))
    rows, inverse = np.unique(row[keep], return_inverse=True)
    points = np.ones((len(rows), n_sessions + 1))
    np.multiply.at(points, (inverse, k[keep]), table.split_to[keep] / table.split_from[keep])
    # factor[:, t] = product of the ratios at positions > t.
    factors = np.cumprod(points[:, ::-1], axis=1)[:, ::-1][:, 1:]
    return rows, factors


def adjust(block: np.ndarray, rows: np.ndarray, factors: np.ndarray) -> None:
    """Apply split factors in place: prices divided, volume multiplied."""
    if len(rows):
        block[rows, :, :4] /= factors[:, :, None].astype(np.float32)
        block[rows, :, 4] *= factors.astype(np.float32)


class Splits:
    """Split tables by window: the market-wide one from memory while it covers the window, else Redis,
    else the source."""

    def __init__(self, client: PolygonClient, store: BarStore) -> None:
        self.client = client
        self.store = store
        # The latest market-wide table and the span it covers: (from, to, table).
        self._market: TTLCache[str, tuple[np.datetime64, np.datetime64, SplitTable]] = TTLCache(
            maxsize=1, ttl=SPLITS_MEMO_TTL
        )
        self._loads: SingleFlight[tuple[str, np.datetime64, np.datetime64], tuple[SplitTable, bool]] = SingleFlight()

    async def table(
        self, start: np.datetime64, end: np.datetime64, stats: RequestStats, ticker: str | None = None
    ) -> SplitTable:
        """Split events of ``start``..``end`` for ``ticker`` or the market (a superset is fine:
        :func:`split_factors` keeps the window's). The same object is returned while the memo holds,
        so callers can tell an unchanged table by identity."""
        scope = ticker or MARKET
        memo = self._market.get(MARKET) if ticker is None else None
        if memo is not None:
            lo, hi, table = memo
            if lo <= start and end <= hi:
                stats.cache_hits += 1
                return table
        table, stored = await self._loads.run((scope, start, end), lambda: self._load(scope, start, end, ticker))
        if stored:
            stats.cache_hits += 1
        return table

    async def _load(
        self, scope: str, start: np.datetime64, end: np.datetime64, ticker: str | None
    ) -> tuple[SplitTable, bool]:
        """(table, whether Redis had it)."""
        table = await self.store.get_splits(scope, start, end)
        if table is not None:
            if ticker is None:
                # Kept like a fetched one (for the window it was stored under): the same table object
                # next time also lets the snapshot memo recognise it.
                self._market[MARKET] = (start, end, table)
            return table, True
        until = end + SPLITS_AHEAD if ticker is None else end
        table = await self.client.splits(day_str(start), day_str(until), ticker=ticker)
        # Stored under the window asked for, the key the lookup above reads; the table may reach further.
        await self.store.put_splits(scope, start, end, table)
        if ticker is None:
            self._market[MARKET] = (start, until, table)
        return table, False
