"""One symbol's split-adjusted daily history (the symbol detail page).

Gathered from the raw sessions when the store holds the whole window, else from one per-ticker
request; adjusted with the symbol's own split events.
"""

from __future__ import annotations

import numpy as np

from services.common.codec import encode_block
from services.fetcher.calendar import day_str
from services.fetcher.downloads import Downloads
from services.fetcher.gather import Gatherer, overlay
from services.fetcher.polygon import PolygonError, TickerRange, counting
from services.fetcher.request import RequestStats, normalise
from services.fetcher.splits import Splits, adjust, split_factors
from services.fetcher.store import PANEL_FIELDS, BarStore

BARS_FIELDS = PANEL_FIELDS


class SymbolBars:
    """Single-symbol histories over the same downloads and split tables as the panels."""

    def __init__(self, downloads: Downloads, splits: Splits, store: BarStore) -> None:
        self.downloads = downloads
        self.splits = splits
        self.store = store

    async def bars(self, symbol: str, days: int, as_of: str, stats: RequestStats) -> tuple[bytes, bool, str]:
        """(block, has_data, as_of): rows are the ``days`` sessions to the as-of session, oldest first."""
        symbol = normalise(symbol)
        with counting() as http:
            stats.http = http
            with stats.phase("resolve"):
                as_of_day = await self.downloads.resolve_as_of(as_of)
                window = self.downloads.window(as_of_day, days)
            with stats.phase("store"):
                stored = await self.store.get_sessions(list(window))
            stats.cache_hits += len(stored)
            with stats.phase("fetch"):
                ranges: dict[str, TickerRange] = {}
                if len(stored) < len(window):
                    ranges, failed = await self.downloads.ticker_ranges([symbol], window, stats)
                    if failed:
                        raise PolygonError(f"bars for {symbol} could not be fetched", path="ticker range")
                splits = await self.splits.table(window[0], window[-1], stats, ticker=symbol)
            with stats.phase("assemble"):
                ids = self.store.index.ids([symbol], add=False)
                block = Gatherer([stored.get(d) for d in window]).chunk(ids)
                overlay(block, window, [(0, ranges[symbol])] if symbol in ranges else [])
                split_rows, factors = split_factors(splits, [symbol], window)
                adjust(block, split_rows, factors)
                has_data = bool(np.isfinite(block[0, :, 3]).any())
                raw = encode_block(
                    block[0],
                    rows=[day_str(d) for d in window],
                    fields=BARS_FIELDS,
                    meta={"symbol": symbol, "as_of": day_str(as_of_day)},
                )
        return raw, has_data, day_str(as_of_day)
