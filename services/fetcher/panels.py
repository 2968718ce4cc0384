"""Panels: which sessions a request lacks, the cheapest way to fetch them, and split-adjusted chunks.

For a request (symbols, lookback, as-of) the sessions of the window are looked up in the store;
the missing ones are fetched either with grouped daily (one request per session, every ticker) or
per ticker (one request per symbol, the whole window), whichever costs fewer requests, so a
20-symbol watchlist never costs 252 requests and a 6,000-symbol scan never costs 6,000. Chunks
(symbols x sessions x OHLCV, float32, contract 1) are gathered from the raw sessions with numpy
index arrays (one take from the in-memory session stack, services/fetcher/stack.py, when the window
fits it), split-adjusted backwards, written to Redis (each write overlapping the next chunk's
assembly) and yielded one by one, so the next stage starts on the first chunk while later ones are
built. Each chunk carries a content digest (:func:`chunk_digest`), also part of its Redis key.
Sessions that fail after retries stay NaN, are named in the report, and are fetched again by the
next request because they are not stored. A request defined exactly as a recent one (same symbols,
session objects, split table) yields that request's chunks again while Redis holds them all, and the
last snapshot is served again while its sessions and split table are the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial

import numpy as np
import structlog
from numba import njit
from numba.typed import List

from services.common.codec import encode_block
from services.fetcher.calendar import LatestSession, TradingCalendar, as_day, day_str
from services.fetcher.jsonbars import parse_results
from services.fetcher.polygon import (
    PolygonAuthError,
    PolygonClient,
    PolygonError,
    RequestCounters,
    SplitTable,
    TickerRange,
    counting,
    run_all,
)
from services.fetcher.stack import SessionStack
from services.fetcher.store import PANEL_FIELDS, BarStore, SessionData, panel_key
from services.fetcher.tickers import TickerIndex

log = structlog.get_logger(__name__)
SNAPSHOT_FIELDS = ("open", "high", "low", "close", "volume", "avg_volume", "avg_dollar_volume", "sessions",
                   "change_pct")
BARS_FIELDS = PANEL_FIELDS
# Panel chunks live until the next session closes, within these bounds (seconds).
PANEL_TTL_MIN = 600.0
PANEL_TTL_MAX = 4 * 24 * 3600.0
# A session the source should have but answered empty is asked again this many times.
EMPTY_SESSION_ATTEMPTS = 3
# When the latest-session probe fails in a fresh process, the newest stored session among this many
# calendar sessions stands in for the calendar's guess.
KNOWN_LOOKBACK = 30
# The market-wide split table is asked this far past the window (its end moves one session a day)
# and reused from memory for this long (seconds).
SPLITS_AHEAD = np.timedelta64(14, "D")
SPLITS_MEMO_TTL = 6 * 3600.0
# Panel requests whose chunk list is remembered (a warm scan asks the same again).
REQUEST_MEMO = 4


class RequestError(ValueError):
    """The request cannot be served as asked (a bad date, a window beyond the data); says why."""


@dataclass
class RequestStats:
    """Work done for one request: HTTP counters, cache hits, seconds per phase."""

    http: RequestCounters = field(default_factory=RequestCounters)
    cache_hits: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    extra: dict[str, int] = field(default_factory=dict)

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start

    def counters(self) -> dict[str, int]:
        return {**self.http.as_dict(), "cache_hits": self.cache_hits, **self.extra}


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


@dataclass(frozen=True)
class Snapshot:
    block: bytes
    as_of: str
    failed_sessions: list[str]


def unique(symbols: Sequence[str]) -> list[str]:
    """Symbols without repeats, first occurrence kept, order kept."""
    return list(dict.fromkeys(filter(None, map(str.upper, map(str.strip, symbols)))))


def split_factors(table: SplitTable, symbols: Sequence[str], sessions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``symbols`` with a split inside the window and their (rows, sessions) factors.

    Bars before a split's execution date are divided (prices) or multiplied (volume) by the
    product of split_to / split_from of every later split up to the last session.
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


@njit(cache=True, nogil=True)
def _gather(sources: List[np.ndarray], rows: np.ndarray, lo: int, hi: int, present: np.ndarray,
            out: np.ndarray) -> None:
    n_fields = out.shape[2]
    for j in range(len(sources)):
        if present[j]:
            src = sources[j]
            for i in range(lo, hi):
                r = rows[j, i]
                for f in range(n_fields):
                    out[i - lo, j, f] = src[r, f]
        else:
            for i in range(lo, hi):
                for f in range(n_fields):
                    out[i - lo, j, f] = np.nan


class Gatherer:
    """Row indices of every symbol in every session, then (symbols, sessions, 5) chunks on demand."""

    def __init__(self, sessions: Sequence[SessionData | None], ids: np.ndarray) -> None:
        self.present = np.array([s is not None for s in sessions], dtype=np.bool_)
        filler = np.full((1, 6), np.nan, dtype=np.float32)
        self.sources = List([s.padded if s is not None else filler for s in sessions])
        self.rows = np.zeros((len(sessions), len(ids)), dtype=np.int64)
        for j, data in enumerate(sessions):
            if data is not None:
                self.rows[j] = data.rows(ids)

    def chunk(self, lo: int, hi: int) -> np.ndarray:
        """Unadjusted (hi - lo, sessions, 5) float32 block; NaN where a session lacks a symbol."""
        out = np.empty((hi - lo, len(self.present), len(PANEL_FIELDS)), dtype=np.float32)
        _gather(self.sources, self.rows, lo, hi, self.present, out)
        return out


def chunk_digest(as_of: str, lookback: int, symbols: Sequence[str], present: np.ndarray,
                 volatile: Sequence[bytes], split_rows: np.ndarray, factors: np.ndarray,
                 ranged: np.ndarray) -> str:
    """Content digest of a chunk, from what defines it rather than its 2.6 MB of bytes.

    The as-of session, lookback, symbols (in order), which sessions of the window are present, the
    bytes of any present session still in progress (``volatile``: its bars may change), the split
    factors applied per row, and which rows were filled from per-ticker ranges. Raw sessions are
    immutable, so equal digests mean equal chunks; a session that failed and was fetched later, a
    new split or another symbol set changes it.
    """
    digest = hashlib.blake2b(digest_size=16)
    parts = [f"{as_of}\n{lookback}".encode(), "\n".join(symbols).encode(), np.packbits(present).tobytes(),
             *volatile, np.ascontiguousarray(split_rows, dtype=np.int64).tobytes(),
             np.ascontiguousarray(factors, dtype=np.float64).tobytes(),
             np.ascontiguousarray(ranged, dtype=np.int64).tobytes()]
    for part in parts:
        digest.update(len(part).to_bytes(8, "little"))
        digest.update(part)
    return digest.hexdigest()


def overlay(block: np.ndarray, window: np.ndarray, ranges: Sequence[tuple[int, TickerRange]]) -> None:
    """Write per-ticker bars (row in ``block``, range) into ``block`` where their days fall in ``window``."""
    if not ranges:
        return
    rows = np.concatenate([np.full(len(r.days), i, dtype=np.int64) for i, r in ranges])
    days = np.concatenate([r.days for _, r in ranges])
    values = np.concatenate([r.values[:, :len(PANEL_FIELDS)] for _, r in ranges])
    cols = np.searchsorted(window, days)
    hit = (cols < len(window)) & (window[np.minimum(cols, len(window) - 1)] == days)
    block[rows[hit], cols[hit]] = values[hit]


def adjust(block: np.ndarray, rows: np.ndarray, factors: np.ndarray) -> None:
    """Apply split factors in place: prices divided, volume multiplied."""
    if len(rows):
        block[rows, :, :4] /= factors[:, :, None].astype(np.float32)
        block[rows, :, 4] *= factors.astype(np.float32)


def warm_kernels() -> None:
    """Compile (or load from the disk cache) the Numba kernels before the first request needs them."""
    parsed = parse_results(b'{"results":[{"T":"A","o":1.5,"h":2,"l":1,"c":2,"v":10,"vw":1.7,"t":1}]}')
    assert parsed is not None
    scratch = TickerIndex(capacity=4)
    scratch.ids(["B"])
    scratch.ids_of_spans(parsed.buf, parsed.spans)
    data = SessionData(day=as_day("2026-01-02"), ids=np.zeros(1, np.int64),
                       padded=np.zeros((2, 6), np.float32))
    Gatherer([data, None], np.array([0, -1])).chunk(0, 2)


class PanelBuilder:
    """Fetch-and-assemble for panels, snapshots and single-symbol histories."""

    def __init__(self, client: PolygonClient, store: BarStore, calendar: TradingCalendar, *,
                 latest_ttl: float = 5.0, stack_sessions: int = 300) -> None:
        self.client = client
        self.store = store
        self.calendar = calendar
        self.stack = SessionStack(stack_sessions)
        # The latest market-wide split table: (from, to, fetched at (monotonic), table).
        self._all_splits: tuple[np.datetime64, np.datetime64, float, SplitTable] | None = None
        # The last snapshot, by what defines it (as-of, window, the serials of its sessions, the split
        # table): raw sessions are immutable, so the same inputs give the same block.
        self._snapshot: tuple[tuple[object, ...], SplitTable, Snapshot] | None = None
        # The chunks of recent panel requests, by what defines them (see panels).
        self._requests: OrderedDict[tuple[object, ...], tuple[SplitTable, list[PanelChunk]]] = OrderedDict()
        self.latest = LatestSession(calendar, self._probe, ttl=latest_ttl, known=self._newest_stored)
        self._downloads: dict[np.datetime64, asyncio.Future[SessionData | None]] = {}

    # --- sessions -------------------------------------------------------------------------------

    def _unfinished(self, day: np.datetime64) -> bool:
        return self.calendar.is_unfinished(day, datetime.now(UTC))

    async def _probe(self, day: np.datetime64) -> bool | None:
        """Whether the source serves ``day`` (fetching it stores it, so the probe is not wasted)."""
        if await self.store.get_sessions([day]):
            return True
        try:
            grouped = await self.client.grouped_daily(day_str(day), self.store.index)
        except PolygonAuthError:
            raise
        except PolygonError as exc:
            log.warning("latest-session probe failed", session=day_str(day), error=str(exc))
            return None
        if grouped is None:
            return False
        await self.store.put_session(day, grouped, unfinished=self._unfinished(day))
        return True

    async def _newest_stored(self, day: np.datetime64) -> np.datetime64 | None:
        """The newest raw session stored among the ``KNOWN_LOOKBACK`` sessions up to ``day``."""
        end = self.calendar.index(day) + 1
        return await self.store.newest_session(list(self.calendar.sessions[max(end - KNOWN_LOOKBACK, 0):end]))

    async def resolve_as_of(self, as_of: str) -> np.datetime64:
        """The as-of session: the source's latest when empty, else the session on or before ``as_of``."""
        latest = await self.latest.get()
        if not as_of:
            return latest
        try:
            day = as_day(as_of)
        except ValueError:
            raise RequestError(f"as_of {as_of!r} is not a date (YYYY-MM-DD)") from None
        if day > latest:
            # The source may have moved on since the answer was cached: ask it again once.
            self.latest.invalidate()
            latest = await self.latest.get()
        if day > latest:
            raise RequestError(f"as_of {as_of} is after the latest session the source has ({day_str(latest)})")
        try:
            return self.calendar.session_at(self.calendar.index(day))
        except ValueError as exc:
            raise RequestError(str(exc)) from None

    def window(self, as_of: np.datetime64, n: int) -> np.ndarray:
        try:
            return self.calendar.window(as_of, n)
        except ValueError as exc:
            raise RequestError(str(exc)) from None

    async def _fetch_session(self, day: np.datetime64) -> SessionData | None:
        """One session by grouped daily, stored; None when the source failed. One download per session at a
        time: concurrent requests for it (two cold scans, or a snapshot and a panel request) share it."""
        task = self._downloads.get(day)
        if task is None:
            task = asyncio.ensure_future(self._download_session(day))
            self._downloads[day] = task
            task.add_done_callback(partial(self._download_done, day))
        return await asyncio.shield(task)

    def _download_done(self, day: np.datetime64, task: asyncio.Future[SessionData | None]) -> None:
        if self._downloads.get(day) is task:
            del self._downloads[day]
        if not task.cancelled():
            task.exception()  # retrieved: a waiter that went away must not leave it "never retrieved"

    async def _download_session(self, day: np.datetime64) -> SessionData | None:
        for attempt in range(EMPTY_SESSION_ATTEMPTS):
            try:
                grouped = await self.client.grouped_daily(day_str(day), self.store.index)
            except PolygonAuthError:
                raise
            except PolygonError as exc:
                log.warning("session fetch failed", session=day_str(day), error=str(exc))
                return None
            if grouped is not None:
                return await self.store.put_session(day, grouped, unfinished=self._unfinished(day))
            await asyncio.sleep(self.client.backoff_base * (attempt + 1))
        log.warning("session answered empty", session=day_str(day), attempts=EMPTY_SESSION_ATTEMPTS)
        return None

    async def _fetch_sessions(self, days: Sequence[np.datetime64],
                              arrived: Callable[[SessionData], object] | None = None,
                              ) -> tuple[dict[np.datetime64, SessionData], list]:
        """Fetch ``days`` concurrently; (fetched, failed). An auth error cancels the rest and raises.

        ``arrived`` is called with each session as soon as it is stored, while the others download.
        """
        async def one(day: np.datetime64) -> SessionData | None:
            data = await self._fetch_session(day)
            if data is not None and arrived is not None:
                arrived(data)
            return data

        results = await run_all(one(d) for d in days)
        fetched = {d: r for d, r in zip(days, results, strict=True) if r is not None}
        return fetched, [d for d in days if d not in fetched]

    async def sessions(self, days: np.ndarray, stats: RequestStats) -> tuple[dict[np.datetime64, SessionData], list]:
        """Every session of ``days`` (stored or fetched by grouped daily); (sessions, failed days)."""
        with stats.phase("store"):
            stored = await self.store.get_sessions(list(days))
        stats.cache_hits += len(stored)
        missing = [d for d in days if d not in stored]
        if not missing:
            return stored, []
        with stats.phase("fetch"):
            fetched, failed = await self._fetch_sessions(missing)
        return {**stored, **fetched}, failed

    async def splits(self, start: np.datetime64, end: np.datetime64, stats: RequestStats,
                     ticker: str | None = None) -> SplitTable:
        """Split events of ``start``..``end`` (a superset is fine: split_factors keeps the window's).

        The market-wide table is fetched ``SPLITS_AHEAD`` past ``end`` (splits are announced ahead of
        their execution) and kept in memory, so the window moved on by a new session needs no request.
        """
        scope = ticker or "all"
        memo = self._all_splits
        if ticker is None and memo is not None:
            lo, hi, fetched, table = memo
            if lo <= start and end <= hi and time.monotonic() - fetched < SPLITS_MEMO_TTL:
                stats.cache_hits += 1
                return table
        table = await self.store.get_splits(scope, start, end)
        if table is not None:
            stats.cache_hits += 1
            if ticker is None:
                # Kept like a fetched one (for the window it was stored under): the same table object
                # next time also lets the snapshot memo recognise it.
                self._all_splits = (start, end, time.monotonic(), table)
            return table
        until = end + SPLITS_AHEAD if ticker is None else end
        table = await self.client.splits(day_str(start), day_str(until), ticker=ticker)
        # Stored under the window asked for, the key the lookup above reads; the table may reach further.
        await self.store.put_splits(scope, start, end, table)
        if ticker is None:
            self._all_splits = (start, until, time.monotonic(), table)
        return table

    async def _ticker_ranges(self, symbols: Sequence[str], window: np.ndarray,
                             stats: RequestStats) -> tuple[dict[str, TickerRange], list[str]]:
        """Per-ticker ranges covering the window, cached or fetched; (ranges, symbols that failed)."""
        start, end = window[0], window[-1]
        ranges = await self.store.get_ticker_ranges(symbols, start, end)
        stats.cache_hits += len(ranges)
        need = [s for s in symbols if s not in ranges]

        async def one(symbol: str) -> TickerRange | None:
            try:
                rng = await self.client.ticker_range(symbol, day_str(start), day_str(end))
            except PolygonAuthError:
                raise
            except PolygonError as exc:
                log.warning("ticker range failed", symbol=symbol, error=str(exc))
                return None
            await self.store.put_ticker_range(rng, start, end, unfinished=self._unfinished(end))
            return rng

        failed = []
        for symbol, rng in zip(need, await run_all(one(s) for s in need), strict=True):
            if rng is None:
                failed.append(symbol)
            else:
                ranges[symbol] = rng
        return ranges, failed

    # --- panels ---------------------------------------------------------------------------------

    def _stacker(self, window: np.ndarray, stored: dict[np.datetime64, SessionData],
                 ) -> Callable[[SessionData], object] | None:
        """Something that puts each fetched session of ``window`` into the session stack on arrival, so a
        cold request's stacking overlaps its downloads (None for windows too long to stack). Assembling
        loads the whole window again, which skips the slots already holding their session."""
        first = self.calendar.index(window[0])
        if not self.stack.load(first, [stored.get(d) for d in window], len(self.store.index)):
            return None
        return lambda data: self.stack.load(self.calendar.index(data.day), [data], len(self.store.index))

    def _panel_ttl(self, as_of: np.datetime64) -> float:
        until = (self.calendar.next_close_after(as_of) - datetime.now(UTC)).total_seconds()
        return min(max(until, PANEL_TTL_MIN), PANEL_TTL_MAX)

    async def panels(self, symbols: Sequence[str], as_of: str, lookback: int, chunk_size: int,
                     report: PanelReport) -> AsyncIterator[PanelChunk]:
        """Yield the request's panel chunks as each is written; ``report`` is filled along the way."""
        stats = report.stats
        with counting() as http:
            stats.http = http
            with stats.phase("resolve"):
                as_of_day = await self.resolve_as_of(as_of)
                window = self.window(as_of_day, lookback)
            report.as_of = day_str(as_of_day)
            report.sessions = [day_str(d) for d in window]

            with stats.phase("store"):
                stored = await self.store.get_sessions(list(window))
            stats.cache_hits += len(stored)
            missing = [d for d in window if d not in stored]
            ranges: dict[str, TickerRange] = {}
            report.strategy = "cached"
            if missing:
                symbols = unique(symbols)
            with stats.phase("fetch"):
                splits_task = asyncio.ensure_future(self.splits(window[0], window[-1], stats))
                try:
                    if missing and len(symbols) < len(missing):
                        report.strategy = "per_ticker"
                        ranges, report.failed_symbols = await self._ticker_ranges(symbols, window, stats)
                    elif missing:
                        report.strategy = "grouped"
                        fetched, failed = await self._fetch_sessions(missing, self._stacker(window, stored))
                        stored.update(fetched)
                        report.failed_sessions = [day_str(d) for d in failed]
                    splits = await splits_task
                finally:
                    splits_task.cancel()
            stats.extra["sessions_fetched"] = len(missing) if report.strategy == "grouped" else 0
            stats.extra["tickers_fetched"] = len(ranges)

            settled = self.calendar.latest_completed(datetime.now(UTC))
            days = [stored.get(d) for d in window]
            volatile_days = [d for d in days if d is not None and d.day > settled and self._unfinished(d.day)]
            # Raw sessions are immutable: the same symbols over the same session objects, splits and
            # in-progress sessions give the same chunks, so an identical request (a warm scan) yields
            # the chunks it yielded before when Redis still holds every one of them.
            memo_key = (as_of_day, lookback, chunk_size, tuple(symbols),
                        tuple(0 if d is None else d.serial for d in days), tuple(d.serial for d in volatile_days))
            memo = self._requests.get(memo_key) if not ranges else None
            if memo is not None and memo[0] is splits:
                with stats.phase("write"):
                    reuse = await self.store.has_panels([c.key for c in memo[1]])
                if reuse:
                    self._requests.move_to_end(memo_key)
                    stats.extra["chunks_reused"] = len(memo[1])
                    for chunk in memo[1]:
                        yield chunk
                    report.degraded = report.degraded or self.store.degraded
                    return
            symbols = unique(symbols)
            produced: list[PanelChunk] = []

            with stats.phase("assemble"):
                ids = self.store.index.ids(symbols, add=False)
                first = self.calendar.index(window[0])
                stacked = self.stack.load(first, days, len(self.store.index))
                gatherer = None if stacked else Gatherer(days, ids)
                split_rows, factors = split_factors(splits, symbols, window)
                range_rows = [(i, ranges[s]) for i, s in enumerate(symbols) if s in ranges]
                present = np.array([d is not None for d in days])
                volatile = [d.padded.tobytes() for d in volatile_days]
            meta_common = {"as_of": report.as_of, "sessions": report.sessions, "lookback": lookback}
            ttl = self._panel_ttl(as_of_day)
            pending: tuple[asyncio.Future[bool] | None, PanelChunk, bytes] | None = None
            try:
                for index, lo in enumerate(range(0, len(symbols), chunk_size)):
                    hi = min(lo + chunk_size, len(symbols))
                    names = symbols[lo:hi]
                    with stats.phase("assemble"):
                        in_chunk = (split_rows >= lo) & (split_rows < hi)
                        ranged = [(i - lo, r) for i, r in range_rows if lo <= i < hi]
                        digest = chunk_digest(report.as_of, lookback, names, present, volatile,
                                              split_rows[in_chunk] - lo, factors[in_chunk],
                                              np.array([i for i, _ in ranged], dtype=np.int64))
                    key = panel_key(as_of_day, lookback, digest, index)
                    with stats.phase("write"):
                        written = await self.store.has_panel(key)
                    with stats.phase("assemble"):
                        if gatherer is None and not self.stack.holds(first, days):
                            # Another request moved the stack's span (or refreshed a session) at an
                            # await: this one gathers its remaining chunks rather than move it back.
                            gatherer = Gatherer(days, ids)
                        if gatherer is None:
                            block = self.stack.take(ids[lo:hi], first, len(window))
                        else:
                            block = gatherer.chunk(lo, hi)
                        overlay(block, window, ranged)
                        adjust(block, split_rows[in_chunk] - lo, factors[in_chunk])
                        no_data = np.isnan(block[:, :, 3]).all(axis=1)
                        # Already in Redis under its content digest: the same bytes, not written again.
                        raw = b"" if written else encode_block(block, rows=names, fields=PANEL_FIELDS,
                                                                meta={**meta_common, "chunk_index": index})
                    chunk = PanelChunk(index=index, key=key, inline=b"", symbols=names,
                                       no_data=[n for n, m in zip(names, no_data, strict=True) if m],
                                       n_sessions=len(window), as_of=report.as_of, digest=digest)
                    # The write runs while the next chunk is assembled; chunks are yielded in order.
                    write = None if written else asyncio.ensure_future(self.store.put_panel(key, raw, ttl))
                    if pending is not None:
                        produced.append(await self._written(pending, report))
                        yield produced[-1]
                    pending = (write, chunk, raw)
                if pending is not None:
                    produced.append(await self._written(pending, report))
                    yield produced[-1]
                    pending = None
            finally:
                if pending is not None and pending[0] is not None:
                    pending[0].cancel()
        report.degraded = report.degraded or self.store.degraded
        if not ranges and all(c.key for c in produced):  # chunks sent inline are not in Redis to reuse
            self._requests[memo_key] = (splits, produced)
            while len(self._requests) > REQUEST_MEMO:
                self._requests.popitem(last=False)

    @staticmethod
    async def _written(pending: tuple[asyncio.Future[bool] | None, PanelChunk, bytes],
                       report: PanelReport) -> PanelChunk:
        """The chunk once its write finished (None: already stored): by key, or inline when Redis could
        not take it."""
        write, chunk, raw = pending
        if write is None:
            report.stats.extra["chunks_reused"] = report.stats.extra.get("chunks_reused", 0) + 1
            return chunk
        with report.stats.phase("write"):
            stored_ok = await write
        if stored_ok:
            return chunk
        report.degraded = True
        return replace(chunk, key="", inline=raw)

    # --- snapshot and single-symbol history -----------------------------------------------------

    async def snapshot(self, as_of: str, window_size: int, stats: RequestStats) -> Snapshot:
        """The as-of session's bar of every ticker it has, with averages over ``window_size`` sessions."""
        with counting() as http:
            stats.http = http
            with stats.phase("resolve"):
                as_of_day = await self.resolve_as_of(as_of)
                window = self.window(as_of_day, window_size + 1)
            sessions, failed = await self.sessions(window, stats)
            last = sessions.get(as_of_day)
            if last is None:
                # The source failed (every retry), the request is fine: UNAVAILABLE, naming the session.
                raise PolygonError(f"session {day_str(as_of_day)} could not be fetched from the source")
            with stats.phase("fetch"):
                splits = await self.splits(window[0], window[-1], stats)
            key = (as_of_day, window_size, tuple(0 if d not in sessions else sessions[d].serial for d in window))
            memo = self._snapshot
            if memo is not None and memo[0] == key and memo[1] is splits:
                stats.cache_hits += 1
                return memo[2]
            with stats.phase("assemble"):
                block = Gatherer([sessions.get(d) for d in window], last.ids).chunk(0, len(last.ids)).astype(np.float64)
                tickers = self.store.index.names(last.ids)
                adjust_rows, factors = split_factors(splits, tickers, window)
                adjust(block, adjust_rows, factors)
                recent = block[:, 1:, :]
                close, volume = recent[:, :, 3], recent[:, :, 4]
                present = ~np.isnan(close) & ~np.isnan(volume)
                count = present.sum(axis=1)
                with np.errstate(invalid="ignore", divide="ignore"):
                    avg_volume = np.where(present, volume, 0).sum(axis=1) / count
                    avg_dollar = np.where(present, close * volume, 0).sum(axis=1) / count
                    change = (block[:, -1, 3] / block[:, -2, 3] - 1.0) * 100.0
                out = np.column_stack([block[:, -1, :], avg_volume, avg_dollar, count.astype(np.float64), change])
                raw = encode_block(out, rows=tickers, fields=SNAPSHOT_FIELDS,
                                   meta={"as_of": day_str(as_of_day), "window": window_size})
        snapshot = Snapshot(block=raw, as_of=day_str(as_of_day), failed_sessions=[day_str(d) for d in failed])
        self._snapshot = (key, splits, snapshot)
        return snapshot

    async def bars(self, symbol: str, days: int, as_of: str, stats: RequestStats) -> tuple[bytes, bool, str]:
        """One symbol's adjusted history: (block, has_data, as_of). Raw sessions when all are cached,
        else one per-ticker request."""
        symbol = symbol.strip().upper()
        with counting() as http:
            stats.http = http
            with stats.phase("resolve"):
                as_of_day = await self.resolve_as_of(as_of)
                window = self.window(as_of_day, days)
            with stats.phase("store"):
                stored = await self.store.get_sessions(list(window))
            stats.cache_hits += len(stored)
            with stats.phase("fetch"):
                ranges: dict[str, TickerRange] = {}
                if len(stored) < len(window):
                    ranges, failed = await self._ticker_ranges([symbol], window, stats)
                    if failed:
                        raise PolygonError(f"bars for {symbol} could not be fetched", path="ticker range")
                splits = await self.splits(window[0], window[-1], stats, ticker=symbol)
            with stats.phase("assemble"):
                block = Gatherer([stored.get(d) for d in window],
                                 self.store.index.ids([symbol], add=False)).chunk(0, 1)
                overlay(block, window, [(0, ranges[symbol])] if symbol in ranges else [])
                split_rows, factors = split_factors(splits, [symbol], window)
                adjust(block, split_rows, factors)
                has_data = bool(np.isfinite(block[0, :, 3]).any())
                raw = encode_block(block[0], rows=[day_str(d) for d in window], fields=BARS_FIELDS,
                                   meta={"symbol": symbol, "as_of": day_str(as_of_day)})
        return raw, has_data, day_str(as_of_day)
