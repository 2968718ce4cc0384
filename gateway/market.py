"""The gateway's view of the market: universe, session snapshots, ticker details, the benchmark,
and the prefilter result of a request over them.

Each is kept as long as it is trusted: the universe and the ticker details for
``gateway_universe_ttl_seconds``; the latest session's snapshot for ``gateway_as_of_ttl_seconds``
(one request for it at a time); a past session's snapshot for good once every session of its
window was fetched; a prefilter result while the snapshot's bytes and the universe are the same
(a warm scan asks the same again, and filtering 11,000 tickers and building a message per issue
cost tens of milliseconds).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import structlog
from cachetools import LRUCache

from gateway.backends import Backends
from gateway.errors import ScanError, Unavailable
from gateway.prefilter import DEFAULT_TYPES, EXCLUDED_EXCHANGES, Prefiltered, PrefilterSpec, lookup, prefilter
from gateway.settings import GatewaySettings
from services.common.codec import Block, BlockError, decode_block
from services.common.singleflight import SingleFlight
from technic.v1 import common_pb2, fetcher_pb2, ranker_pb2, scan_pb2

log = structlog.get_logger(__name__)
BENCHMARK = "SPY"
BENCHMARK_DAYS = 260
# Snapshots of pinned (past) as-of sessions kept in process (each ~1 MB for 11,000 tickers).
PINNED_SNAPSHOTS = 8
# Prefilter results kept in process, by request rules (each ~1 MB: the snapshot bytes it was made from).
PREFILTERS = 8


@dataclass
class Snapshot:
    """One session's snapshot block (last close and average dollar volume of every ticker)."""

    as_of: str
    block: Block
    fetched: float
    raw: bytes = b""  # the block as the fetcher sent it: an identical answer is not decoded again


@dataclass
class PrefilterResult:
    """A prefilter result and the ranker header parts derived from it."""

    snapshot: bytes
    universe: fetcher_pb2.GetUniverseResponse
    kept: Prefiltered
    issues: tuple[np.ndarray, np.ndarray, np.ndarray]
    header: bytes = b""  # a serialized RankHeader holding the issues
    info: tuple[fetcher_pb2.GetUniverseResponse, bytes] | None = None  # details -> RankHeader with their info

    def issues_header(self) -> bytes:
        """The issues as a serialized RankHeader, to merge into the scan's header (built once)."""
        if not self.header:
            symbols, buckets, reasons = (column.tolist() for column in self.issues)
            self.header = ranker_pb2.RankHeader(
                issues=[
                    common_pb2.SymbolIssue(symbol=s, bucket=b, reason=r)
                    for s, b, r in zip(symbols, buckets, reasons, strict=True)
                ]
            ).SerializeToString()
        return self.header

    def info_header(self, details: fetcher_pb2.GetUniverseResponse) -> bytes:
        """The survivors' reference columns as a serialized RankHeader (built once per details answer)."""
        if self.info is None or self.info[0] is not details:
            info = aligned_info(details, self.kept.survivors)
            self.info = (details, ranker_pb2.RankHeader(info=info).SerializeToString())
        return self.info[1]


def aligned_info(details: fetcher_pb2.GetUniverseResponse, symbols: np.ndarray) -> ranker_pb2.SymbolInfo:
    """Reference columns of ``symbols`` in their order ("Unknown" / NaN where the fetcher has none)."""
    idx = lookup(details.symbols, symbols)
    found = idx >= 0

    def column(values: Iterable[object], missing: object, dtype: type) -> list[Any]:
        arr: np.ndarray = np.asarray(list(values), dtype=dtype)
        if not len(arr):
            return [missing] * len(symbols)
        filler: np.ndarray = np.asarray(missing, dtype=dtype)
        return list(np.where(found, arr[np.clip(idx, 0, None)], filler).tolist())

    return ranker_pb2.SymbolInfo(
        symbols=symbols.tolist(),
        names=column(details.names, "", object),
        sectors=column(details.sectors, "Unknown", object),
        industries=column(details.industries, "Unknown", object),
        market_caps=column(details.market_caps, float("nan"), np.float64),
    )


class MarketView:
    """Universe, snapshots, details and benchmark bars, each kept while it is trusted."""

    def __init__(self, backends: Backends, settings: GatewaySettings) -> None:
        self.backends = backends
        self.settings = settings
        self.latest: Snapshot | None = None
        self._snapshot_calls: SingleFlight[str, Snapshot] = SingleFlight()
        self._pinned: LRUCache[str, Snapshot] = LRUCache(PINNED_SNAPSHOTS)
        self._prefilters: LRUCache[tuple[object, ...], PrefilterResult] = LRUCache(PREFILTERS)
        self._universe: tuple[fetcher_pb2.GetUniverseResponse, float] | None = None
        self._columns: tuple[fetcher_pb2.GetUniverseResponse, tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None
        # The last ticker details answer and when it came (see survivor_details).
        self._known_details: tuple[fetcher_pb2.GetUniverseResponse, float] | None = None
        self._benchmark: dict[str, bytes] = {}

    def fresh_as_of(self) -> str:
        """The latest as-of session while it is trusted without asking the fetcher, else ""."""
        snap = self.latest
        if snap is not None and time.monotonic() - snap.fetched < self.settings.gateway_as_of_ttl_seconds:
            return snap.as_of
        return ""

    async def universe(self) -> fetcher_pb2.GetUniverseResponse:
        cached = self._universe
        if cached and time.monotonic() - cached[1] < self.settings.gateway_universe_ttl_seconds:
            return cached[0]
        universe = await self.backends.universe()
        self._universe = (universe, time.monotonic())
        return universe

    def universe_columns(self, universe: fetcher_pb2.GetUniverseResponse) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Symbols, types and exchanges of ``universe`` as arrays, converted once per universe answer
        (numpy reads a protobuf repeated field an element at a time)."""
        cached = self._columns
        if cached is None or cached[0] is not universe:
            symbols, types, exchanges = (
                np.asarray(list(column), dtype=object)
                for column in (universe.symbols, universe.types, universe.exchanges)
            )
            cached = self._columns = (universe, (symbols, types, exchanges))
        return cached[1]

    async def snapshot(self, as_of: str, refresh: bool) -> Snapshot:
        """The snapshot of ``as_of`` (empty: the latest session)."""
        snap = self.latest
        if snap is not None and not refresh and (as_of == snap.as_of or (not as_of and self.fresh_as_of())):
            return snap
        if as_of:
            pinned = self._pinned.get(as_of)
            if pinned is not None:
                return pinned
        # One request per session at a time: concurrent scans wait for the same answer.
        return await self._snapshot_calls.run(as_of, lambda: self._fetch_snapshot(as_of))

    async def _fetch_snapshot(self, as_of: str) -> Snapshot:
        response = await self.backends.snapshot(as_of)
        raw = response.block
        previous = self.latest if not as_of else None
        if previous is not None and previous.as_of == response.as_of and previous.raw == raw:
            block = previous.block  # the same answer again (a refresh while nothing changed)
        else:
            try:
                block = decode_block(raw)
            except BlockError as exc:
                raise Unavailable(f"snapshot block is malformed: {exc}") from None
        fresh = Snapshot(as_of=response.as_of, block=block, fetched=time.monotonic(), raw=raw)
        if not as_of:
            self.latest = fresh
        elif fresh.as_of == as_of and not response.failed_sessions:
            # A completed session asked by its own date: its snapshot never changes. (A date that
            # resolves to an earlier session, e.g. today before the close, may resolve later to itself.)
            self._pinned[as_of] = fresh
        return fresh

    async def benchmark(self, as_of: str) -> bytes:
        """SPY's bars for the market regime; empty when the market has no such ticker."""
        if as_of in self._benchmark:
            return self._benchmark[as_of]
        try:
            response = await self.backends.bars(BENCHMARK, BENCHMARK_DAYS, as_of)
        except ScanError as exc:  # the regime is optional: a scan never fails for it
            log.warning("benchmark bars unavailable, regime left out", error=str(exc))
            return b""
        self._benchmark = {as_of: response.block}
        return response.block

    async def prefilter(
        self, opts: scan_pb2.ScanOptions, universe: fetcher_pb2.GetUniverseResponse, snapshot: Snapshot
    ) -> PrefilterResult:
        """The prefilter result of ``opts`` over this universe and snapshot (kept while both stay the same)."""
        explicit = bool(opts.universe)
        types = None if explicit else (DEFAULT_TYPES | {"ETF"} if opts.include_etfs else DEFAULT_TYPES)
        spec = PrefilterSpec(
            universe=tuple(opts.universe),
            min_price=opts.min_price if opts.HasField("min_price") else 0.0,
            min_dollar_volume=opts.min_dollar_volume if opts.HasField("min_dollar_volume") else 0.0,
            types=types,
            exclude_exchanges=frozenset() if explicit else EXCLUDED_EXCHANGES,
        )
        key = (spec, tuple(opts.sectors), opts.max_symbols, snapshot.as_of)
        entry = self._prefilters.get(key)
        if entry is not None and entry.universe is universe and snapshot.raw and entry.snapshot == snapshot.raw:
            return entry
        block = snapshot.block
        names, kinds, exchanges = self.universe_columns(universe)
        kept = prefilter(
            names, kinds, exchanges, block.rows, block.column("close"), block.column("avg_dollar_volume"), spec
        )
        if opts.sectors:
            details = await self.backends.details(kept.survivors.tolist())
            kept.keep_sectors(aligned_info(details, kept.survivors).sectors, opts.sectors)
        kept.cap(opts.max_symbols)
        entry = PrefilterResult(snapshot=snapshot.raw, universe=universe, kept=kept, issues=kept.issues())
        self._prefilters[key] = entry
        return entry

    async def survivor_details(self, entry: PrefilterResult) -> fetcher_pb2.GetUniverseResponse:
        """Ticker details covering the prefilter's survivors, trusted as long as the universe is.

        The answers are kept and grown: the fetcher is asked only for survivors they lack (the next
        session's survivors are mostly the same names), and for all of them again once too old.
        """
        survivors = entry.kept.survivors
        known = self._known_details
        if known is None or time.monotonic() - known[1] >= self.settings.gateway_universe_ttl_seconds:
            details = await self.backends.details(survivors.tolist())
            self._known_details = (details, time.monotonic())
            return details
        covered = lookup([*known[0].symbols, *known[0].not_found], survivors) >= 0
        if covered.all():
            return known[0]
        new = await self.backends.details(survivors[~covered].tolist())
        grown = fetcher_pb2.GetUniverseResponse()
        grown.CopyFrom(known[0])
        grown.MergeFrom(new)  # appends every per-symbol column (and not_found)
        self._known_details = (grown, known[1])
        return grown
