"""Panel chunks: a request's symbols as split-adjusted (symbols x sessions x OHLCV) float32 blocks
(the panel layout of services/contract/features.py), written to Redis and handed out one by one
while the request's symbols still arrive.

The sessions of the window are looked up in the store; missing ones are fetched either by grouped
daily (one request per session, every ticker) or per ticker (one request per symbol, the whole
window), whichever costs fewer requests, so a 20-symbol watchlist never costs 252 requests and a
6,000-symbol scan never costs 6,000. Telling which needs only to know whether the request has as
many symbols as sessions are missing, so grouped downloads start once that many have arrived.

Chunks cut the request's symbols (normalised, first occurrence kept) in order: chunk i holds the
symbols from i x chunk_size on and is built as soon as they have arrived, the last, partial one when
the stream ends; boundaries, contents, keys and digests do not depend on how the symbols were
batched. A chunk is one numpy take from the session stack (services/fetcher/stack.py), or gathered
from the sessions when the window is too long to stack, split-adjusted, and written under a key that
carries its content digest (:func:`chunk_digest`); each write overlaps the next chunk's assembly when
the next chunk's symbols are already there. Sessions that fail after retries stay NaN, are named in
the report and are fetched again by the next request, because they are not stored. A chunk defined
exactly as a recent one is handed out again without being gathered while Redis still holds it
(services/fetcher/memo.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncGenerator, AsyncIterable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

import numpy as np

from services.common.codec import encode_block
from services.fetcher.calendar import TradingCalendar, day_str
from services.fetcher.downloads import Downloads
from services.fetcher.feed import SymbolFeed
from services.fetcher.gather import Gatherer, overlay
from services.fetcher.memo import ChunkMemo, Remembered
from services.fetcher.polygon import SplitTable, TickerRange, counting
from services.fetcher.request import RequestStats
from services.fetcher.splits import Splits, adjust, split_factors
from services.fetcher.stack import SessionStack
from services.fetcher.store import PANEL_FIELDS, BarStore, SessionData, panel_key

# Panel chunks live until the next session closes, within these bounds (seconds).
PANEL_TTL_MIN = 600.0
PANEL_TTL_MAX = 4 * 24 * 3600.0


@dataclass(frozen=True)
class PanelChunk:
    """One written chunk: its Redis key, or the block itself when Redis could not take it."""

    index: int
    key: str
    inline: bytes
    symbols: list[str]
    no_data: list[str]
    n_sessions: int
    as_of: str
    digest: str


@dataclass
class PanelReport:
    """What a panel request did, filled while its chunks are produced."""

    as_of: str = ""
    sessions: list[str] = field(default_factory=list)
    failed_sessions: list[str] = field(default_factory=list)
    failed_symbols: list[str] = field(default_factory=list)
    strategy: str = ""
    degraded: bool = False
    stats: RequestStats = field(default_factory=RequestStats)


def chunk_digest(
    as_of: str,
    lookback: int,
    symbols: Sequence[str],
    present: np.ndarray,
    volatile: Sequence[bytes],
    split_rows: np.ndarray,
    factors: np.ndarray,
    ranged: np.ndarray,
) -> str:
    """Content digest of a chunk, from what defines it rather than its 2.6 MB of bytes.

    The as-of session, lookback, symbols (in order), which sessions of the window are present, the
    bytes of any present session still in progress (``volatile``: its bars may change), the split
    factors applied per row, and which rows were filled from per-ticker ranges. Raw sessions are
    immutable, so equal digests mean equal chunks; a session that failed and was fetched later, a
    new split or another symbol set changes it.
    """
    digest = hashlib.blake2b(digest_size=16)
    parts = [
        f"{as_of}\n{lookback}".encode(),
        "\n".join(symbols).encode(),
        np.packbits(present).tobytes(),
        *volatile,
        np.ascontiguousarray(split_rows, dtype=np.int64).tobytes(),
        np.ascontiguousarray(factors, dtype=np.float64).tobytes(),
        np.ascontiguousarray(ranged, dtype=np.int64).tobytes(),
    ]
    for part in parts:
        digest.update(len(part).to_bytes(8, "little"))
        digest.update(part)
    return digest.hexdigest()


@dataclass
class _Pending:
    """A chunk handed out once its write finished (``write`` None: already in Redis)."""

    write: asyncio.Future[bool] | None
    chunk: PanelChunk
    raw: bytes
    memo_key: tuple[object, ...] | None  # where to remember it once stored
    remembered: Remembered | None = None  # its memo entry, when it is handed out again


@dataclass
class _Request:
    """One panel request once its sessions, split table and per-ticker ranges are known."""

    window: np.ndarray
    days: list[SessionData | None]
    volatile_days: list[SessionData]  # present sessions still in progress (their bars may change)
    splits: SplitTable
    ranges: dict[str, TickerRange]
    lookback: int
    chunk_size: int
    ttl: float
    report: PanelReport
    last: Remembered | None = None  # the memo entry of the chunk handed out last

    def __post_init__(self) -> None:
        # Raw sessions are immutable: the same symbols at the same position over the same session
        # objects, split table and in-progress sessions give the same chunk, so a request asking for
        # it again (a warm scan) is handed it while Redis still holds it. Ranges are not remembered.
        self.defined_by: tuple[object, ...] | None = None
        if not self.ranges:
            serials = tuple(0 if d is None else d.serial for d in self.days)
            self.defined_by = (self.window[-1], self.lookback, serials, tuple(d.serial for d in self.volatile_days))


class _Assembly:
    """What the chunks of one request are built from; made when the first chunk must be built."""

    def __init__(self, stack: SessionStack, store: BarStore, calendar: TradingCalendar, request: _Request) -> None:
        self.stack = stack
        self.window = request.window
        self.days = request.days
        self.first = calendar.index(request.window[0])
        stacked = stack.load(self.first, request.days, len(store.index))
        self.gatherer = None if stacked else Gatherer(request.days)
        self.present = np.array([d is not None for d in request.days])
        self.volatile = [d.padded.tobytes() for d in request.volatile_days]

    def block(self, ids: np.ndarray) -> np.ndarray:
        """Unadjusted (len(ids), sessions, 5) block of the tickers ``ids``."""
        if self.gatherer is None and not self.stack.holds(self.first, self.days):
            # Another request moved the stack's span (or refreshed a session) at an await: this one
            # gathers its remaining chunks rather than move it back.
            self.gatherer = Gatherer(self.days)
        if self.gatherer is None:
            return self.stack.take(ids, self.first, len(self.window))
        return self.gatherer.chunk(ids)


class Panels:
    """Panel requests: the sessions they need, then their chunks as the symbols arrive."""

    def __init__(
        self,
        downloads: Downloads,
        splits: Splits,
        store: BarStore,
        calendar: TradingCalendar,
        *,
        now: Callable[[], datetime],
        stack_sessions: int = 300,
    ) -> None:
        self.downloads = downloads
        self.splits = splits
        self.store = store
        self.calendar = calendar
        self.now = now
        self.stack = SessionStack(stack_sessions)
        self.memo = ChunkMemo(store)

    def _stacker(
        self, window: np.ndarray, stored: dict[np.datetime64, SessionData]
    ) -> Callable[[SessionData], object] | None:
        """Something that puts each fetched session of ``window`` into the session stack on arrival, so a
        cold request's stacking overlaps its downloads (None for windows too long to stack). Assembling
        loads the whole window again, which skips the slots already holding their session."""
        first = self.calendar.index(window[0])
        if not self.stack.load(first, [stored.get(d) for d in window], len(self.store.index)):
            return None
        return lambda data: self.stack.load(self.calendar.index(data.day), [data], len(self.store.index))

    def _panel_ttl(self, as_of: np.datetime64) -> float:
        until = (self.calendar.next_close_after(as_of) - self.now()).total_seconds()
        return min(max(until, PANEL_TTL_MIN), PANEL_TTL_MAX)

    async def panels(
        self,
        batches: AsyncIterable[Sequence[str]],
        as_of: str,
        lookback: int,
        chunk_size: int,
        report: PanelReport,
    ) -> AsyncGenerator[PanelChunk, None]:
        """Yield the chunks of the symbols in ``batches`` as each is written; ``report`` is filled along
        the way. Nothing is done until the first symbol arrives; no symbol at all yields nothing."""
        feed = SymbolFeed(batches)
        stats = report.stats
        try:
            if not await feed.wait(1):
                return
            with counting() as http:
                stats.http = http
                with stats.phase("resolve"):
                    as_of_day = await self.downloads.resolve_as_of(as_of)
                    window = self.downloads.window(as_of_day, lookback)
                report.as_of = day_str(as_of_day)
                report.sessions = [day_str(d) for d in window]
                with stats.phase("store"):
                    stored = await self.store.get_sessions(list(window))
                stats.cache_hits += len(stored)
                missing = [d for d in window if d not in stored]
                ranges: dict[str, TickerRange] = {}
                report.strategy = "cached"
                splits_task = asyncio.ensure_future(self.splits.table(window[0], window[-1], stats))
                try:
                    # Per ticker when the request has fewer symbols than sessions are missing, which is
                    # known once that many have arrived or the stream has ended.
                    few = bool(missing) and await feed.wait(len(missing)) < len(missing)
                    with stats.phase("fetch"):
                        if few:
                            report.strategy = "per_ticker"
                            ranges, report.failed_symbols = await self.downloads.ticker_ranges(
                                feed.symbols, window, stats
                            )
                        elif missing:
                            report.strategy = "grouped"
                            fetched, failed = await self.downloads.fetch(missing, self._stacker(window, stored))
                            stored.update(fetched)
                            report.failed_sessions = [day_str(d) for d in failed]
                        splits = await splits_task
                finally:
                    splits_task.cancel()
                stats.extra["sessions_fetched"] = len(missing) if report.strategy == "grouped" else 0
                stats.extra["tickers_fetched"] = len(ranges)
                settled = self.calendar.latest_completed(self.now())
                days = [stored.get(d) for d in window]
                request = _Request(
                    window=window,
                    days=days,
                    volatile_days=[
                        d for d in days if d is not None and d.day > settled and self.downloads.unfinished(d.day)
                    ],
                    splits=splits,
                    ranges=ranges,
                    lookback=lookback,
                    chunk_size=chunk_size,
                    ttl=self._panel_ttl(as_of_day),
                    report=report,
                )
                chunks = self._chunks_of(feed, request)
                async with contextlib.aclosing(chunks):
                    async for chunk in chunks:
                        yield chunk
            report.degraded = report.degraded or self.store.degraded
        finally:
            await feed.aclose()

    async def _chunks_of(self, feed: SymbolFeed, request: _Request) -> AsyncGenerator[PanelChunk, None]:
        """Build (or hand out again) and write each chunk as its symbols arrive, in order."""
        size = request.chunk_size
        assembly: _Assembly | None = None
        pending: _Pending | None = None
        held: dict[int, Remembered] = {}  # remembered chunks ahead that Redis was found to hold
        index, lo = 0, 0
        try:
            while True:
                if pending is not None and not feed.ready(lo + size):
                    # The next chunk's symbols are not all here yet: hand this one out before waiting.
                    yield await self._hand_out(request, pending)
                    pending = None
                hi = min(lo + size, await feed.wait(lo + size))
                if hi <= lo:
                    break
                names = feed.symbols[lo:hi]
                reused = held.pop(index, None)
                if request.defined_by is not None and (reused is None or reused.chunk.symbols != names):
                    # Not looked for yet, or another chunk than the one that followed last time.
                    held = await self.memo.held(
                        request.defined_by, request.splits, index, lo, request.chunk_size, feed, request.report.stats
                    )
                    reused = held.pop(index, None)
                if reused is not None:
                    item = _Pending(None, reused.chunk, b"", None, reused)
                else:
                    if assembly is None:
                        with request.report.stats.phase("assemble"):
                            assembly = _Assembly(self.stack, self.store, self.calendar, request)
                    item = await self._build(request, assembly, names, index)
                # The write runs while the next chunk is assembled; chunks are handed out in order.
                if pending is not None:
                    yield await self._hand_out(request, pending)
                pending = item
                index, lo = index + 1, hi
            if pending is not None:
                yield await self._hand_out(request, pending)
                pending = None
        finally:
            if pending is not None and pending.write is not None:
                pending.write.cancel()

    async def _build(self, request: _Request, assembly: _Assembly, names: list[str], index: int) -> _Pending:
        """Assemble chunk ``index`` (``names``) and start its write unless Redis holds it already."""
        report, stats = request.report, request.report.stats
        with stats.phase("assemble"):
            ids = self.store.index.ids(names, add=False)
            split_rows, factors = split_factors(request.splits, names, request.window)
            ranged = [(i, request.ranges[s]) for i, s in enumerate(names) if s in request.ranges]
            ranged_rows = np.array([i for i, _ in ranged], dtype=np.int64)
            digest = chunk_digest(
                report.as_of,
                request.lookback,
                names,
                assembly.present,
                assembly.volatile,
                split_rows,
                factors,
                ranged_rows,
            )
        key = panel_key(request.window[-1], request.lookback, digest, index)
        with stats.phase("write"):
            written = await self.store.has_panel(key)
        with stats.phase("assemble"):
            block = assembly.block(ids)
            overlay(block, request.window, ranged)
            adjust(block, split_rows, factors)
            no_data = np.isnan(block[:, :, 3]).all(axis=1)
            meta = {"as_of": report.as_of, "sessions": report.sessions, "lookback": request.lookback}
            # Already in Redis under its content digest: the same bytes, not written again.
            raw = (
                b""
                if written
                else encode_block(block, rows=names, fields=PANEL_FIELDS, meta={**meta, "chunk_index": index})
            )
        chunk = PanelChunk(
            index=index,
            key=key,
            inline=b"",
            symbols=names,
            no_data=[n for n, m in zip(names, no_data, strict=True) if m],
            n_sessions=len(request.window),
            as_of=report.as_of,
            digest=digest,
        )
        write = None if written else asyncio.ensure_future(self.store.put_panel(key, raw, request.ttl))
        memo_key = None if request.defined_by is None else (request.defined_by, index, tuple(names))
        return _Pending(write, chunk, raw, memo_key)

    async def _hand_out(self, request: _Request, pending: _Pending) -> PanelChunk:
        """The chunk once its write finished: by key, or inline when Redis could not take it. A chunk in
        Redis is remembered (with the split table it used) for a request that asks for it again."""
        stats = request.report.stats
        if pending.write is None:
            stats.extra["chunks_reused"] = stats.extra.get("chunks_reused", 0) + 1
            chunk = pending.chunk
        else:
            with stats.phase("write"):
                stored_ok = await pending.write
            if stored_ok:
                chunk = pending.chunk
            else:
                request.report.degraded = True
                chunk = replace(pending.chunk, key="", inline=pending.raw)
        remembered = pending.remembered
        if remembered is None and pending.memo_key is not None and chunk.key:
            remembered = self.memo.remember(pending.memo_key, request.splits, chunk)
        if request.last is not None:
            request.last.next_names = tuple(chunk.symbols)
        request.last = remembered
        return chunk
