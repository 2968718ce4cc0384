"""The read-only queries of the public APIs: a page of a finished scan, one symbol, the universe."""

from __future__ import annotations

import asyncio

import numpy as np

from gateway.backends import Backends
from gateway.caches import DEFAULT_DAYS, ResultStore
from gateway.errors import NotFound, ScanError
from gateway.market import MarketView
from services.common.codec import decode_block
from technic.v1 import ranker_pb2, scan_pb2, scanner_pb2

# Rows of the latest ranking read at once to find one symbol's row in it.
LATEST_ROWS = 10_000


class Queries:
    """Answers built from the ranker's cached scans and the fetcher's data."""

    def __init__(self, backends: Backends, market: MarketView, results: ResultStore) -> None:
        self.backends = backends
        self.market = market
        self.results = results
        self._latest_rows: tuple[str, dict[str, scan_pb2.ScanRow]] | None = None

    async def get_scan(self, request: scanner_pb2.GetScanRequest) -> scan_pb2.ScanResult:
        """A page of a finished scan, by id or fingerprint."""
        forward = ranker_pb2.GetResultsRequest(
            offset=request.offset,
            limit=request.limit,
            sort_by=request.sort_by,
            ascending=request.ascending,
            include_issues=request.include_issues,
        )
        if request.WhichOneof("ref") == "scan_id":
            forward.scan_id = request.scan_id
        else:
            forward.fingerprint = request.fingerprint
        return await self.backends.results(forward)

    async def latest_row(self, symbol: str) -> scan_pb2.ScanRow | None:
        """The symbol's row in the latest scan (the whole ranking is read once per scan)."""
        latest = self.results.latest
        if latest is None:
            return None
        for row in latest.rows:
            if row.symbol == symbol:
                return row
        if self._latest_rows is None or self._latest_rows[0] != latest.fingerprint:
            try:
                full = await self.backends.results(
                    ranker_pb2.GetResultsRequest(fingerprint=latest.fingerprint, limit=LATEST_ROWS)
                )
            except ScanError:
                return None
            self._latest_rows = (latest.fingerprint, {row.symbol: row for row in full.rows})
        return self._latest_rows[1].get(symbol)

    async def symbol(self, symbol: str, days: int = DEFAULT_DAYS, as_of: str = "") -> scanner_pb2.SymbolDetail:
        """History up to ``as_of`` (empty: the fetcher's latest session), reference data and the
        latest ranking row of one symbol; NotFound when unknown."""
        ticker = symbol.strip().upper()
        bars, info = await asyncio.gather(
            self.backends.bars(ticker, days or DEFAULT_DAYS, as_of), self.backends.details([ticker])
        )
        known = ticker in info.symbols
        history: list[scanner_pb2.Bar] = []
        if bars.block:
            block = decode_block(bars.block)
            values = {
                name: block.column(name).astype(np.float64) for name in ("open", "high", "low", "close", "volume")
            }
            ok = np.isfinite(values["close"])
            dates = np.asarray(block.rows, dtype=object)[ok].tolist()
            cols = {name: col[ok].tolist() for name, col in values.items()}
            history = [
                scanner_pb2.Bar(date=d, open=o, high=h, low=lo, close=c, volume=v)
                for d, o, h, lo, c, v in zip(
                    dates, cols["open"], cols["high"], cols["low"], cols["close"], cols["volume"], strict=True
                )
            ]
        if not known and not history:
            raise NotFound(f"unknown symbol {ticker}")
        detail = scanner_pb2.SymbolDetail(symbol=ticker, history=history)
        if known:
            i = list(info.symbols).index(ticker)
            detail.name, detail.sector = info.names[i], info.sectors[i]
            detail.industry, detail.market_cap = info.industries[i], info.market_caps[i]
        if history:
            detail.last_price = history[-1].close
            if len(history) > 1 and history[-2].close:
                detail.change_pct = (history[-1].close / history[-2].close - 1) * 100
        row = await self.latest_row(ticker)
        if row is not None:
            detail.latest.CopyFrom(row)
            detail.in_latest_scan = True
        return detail

    async def universe_stats(self) -> scanner_pb2.UniverseStats:
        """Sectors and industries of the universe with their counts."""
        universe = await self.market.universe()
        latest = self.market.latest
        stats = scanner_pb2.UniverseStats(total=len(universe.symbols), as_of=latest.as_of if latest else "")
        for target, values in ((stats.sectors, universe.sectors), (stats.industries, universe.industries)):
            names, counts = np.unique(np.asarray(list(values), dtype=str), return_counts=True)
            order = np.lexsort((names, -counts))
            target.extend(scanner_pb2.SectorCount(name=str(names[i]), count=int(counts[i])) for i in order)
        if self.results.latest is not None:
            stats.last_scan.CopyFrom(self.results.latest.accounting)
        return stats
