"""The fetcher's Redis keyspace. Every value is a codec block; every key starts with
``technic:``.

=============================================  ==========================================  ==========
key                                            value                                       expiry
=============================================  ==========================================  ==========
``technic:raw:session:{YYYY-MM-DD}``           one session, every ticker: float32 (tickers,  none (the
                                               6) open/high/low/close/volume/vwap,           session in
                                               unadjusted; rows = tickers                    progress:
                                                                                             short TTL)
``technic:raw:ticker:{T}``                     one ticker's unadjusted bars, float64         7 days
                                               (sessions, 7) day (days since 1970) + the
                                               6 bar fields; meta ``from``/``to`` = the
                                               range asked (covered even where no bar)
``technic:universe:ref``                       reference tickers: rows = symbols, meta       24 h
                                               names/types/exchanges/fetched_unix
``technic:universe:details``                   float64 (tickers, 3) sic_code, market_cap,    24 h
                                               shares; meta sic_descriptions
``technic:splits:{scope}:{from}:{to}``         float64 (events, 3) day, split_from,          24 h
                                               split_to; rows = tickers; scope ``all`` or
                                               a ticker
``technic:panel:{as_of}:{lookback}:{digest}:{i}``  panel chunk, PANEL_FIELDS: float32        next
                                               (symbols, sessions, 5), meta as_of/sessions/  session's
                                               lookback/chunk_index; digest = the chunk's    close
                                               content digest: its symbols, the sessions
                                               present, the splits applied (same digest,
                                               same bytes)
=============================================  ==========================================  ==========

Raw sessions are immutable, so they are cached forever and decoded once per process: decoded
sessions stay in a bounded in-process LRU, with each ticker turned into a process-wide integer id
so that panels gather rows with numpy index arrays instead of string look-ups. All Redis access
goes through :class:`ResilientRedis`: when Redis is down its in-process fallback serves and the
service runs degraded.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import count
from typing import Any

import numpy as np
import structlog
from cachetools import LRUCache, TLRUCache, TTLCache

from services.common.codec import Block, BlockError, decode_block, encode_block
from services.common.redis_client import ResilientRedis
from services.contract.features import PANEL_FIELDS as PANEL_FIELDS  # the panels' field order
from services.fetcher.calendar import DAY, day_str
from services.fetcher.polygon import BAR_FIELDS, GroupedDay, SplitTable, TickerDetails, TickerRange
from services.fetcher.tickers import TickerIndex

log = structlog.get_logger(__name__)
PREFIX = "technic:"
DAY_TTL = 24 * 3600.0
TICKER_TTL = 7 * 24 * 3600.0
# Panel keys remembered as stored (a bound), and the time a chunk must still live to be handed out again.
PANEL_MEMO = 4096
SESSION_WRITES = 8
PANEL_READ_MARGIN = 120.0
# Sessions in progress kept in process memory (there is one at a time, two around a session's change).
IN_PROGRESS_SESSIONS = 4


def _expires_at(_key: str, expires: float, _now: float) -> float:
    """A remembered panel key's expiry is the value stored with it."""
    return expires


def session_key(day: np.datetime64) -> str:
    return f"{PREFIX}raw:session:{day_str(day)}"


def ticker_key(ticker: str) -> str:
    return f"{PREFIX}raw:ticker:{ticker}"


def splits_key(scope: str, start: np.datetime64, end: np.datetime64) -> str:
    return f"{PREFIX}splits:{scope}:{day_str(start)}:{day_str(end)}"


def panel_key(as_of: np.datetime64, lookback: int, digest: str, chunk_index: int) -> str:
    """A chunk's key; ``digest`` is its content digest (see chunks.chunk_digest), so rebuilt content gets a new key."""
    return f"{PREFIX}panel:{day_str(as_of)}:{lookback}:{digest}:{chunk_index}"


UNIVERSE_REF_KEY = f"{PREFIX}universe:ref"
UNIVERSE_DETAILS_KEY = f"{PREFIX}universe:details"


_SERIALS = count(1)


@dataclass
class SessionData:
    """One decoded raw session; ``padded`` has a trailing all-NaN row that absent tickers point to.

    Rows are tickers by their id in the store's :class:`TickerIndex` (``index.names(ids)`` gives the
    strings): a year of sessions holding their own ticker strings would hold about three million
    copies of some eleven thousand. ``serial`` is unique in the process: copies made from a session
    (the session stack) tell by it whether the session was fetched again since.
    """

    day: np.datetime64
    ids: np.ndarray
    padded: np.ndarray  # float32 (n + 1, 6)
    _pos: np.ndarray | None = None
    serial: int = field(default_factory=lambda: next(_SERIALS))

    @property
    def nbytes(self) -> int:
        return int(self.padded.nbytes + self.ids.nbytes)

    def rows(self, ids: np.ndarray) -> np.ndarray:
        """Row of each id in ``padded`` (the NaN row for ids this session lacks, and for -1)."""
        need = int(max(self.ids.max(initial=-1), ids.max(initial=-1))) + 2
        if self._pos is None or len(self._pos) < need:
            # The last slot is never a ticker's: id -1 lands there, on the NaN row.
            pos = np.full(need, len(self.ids), dtype=np.int64)
            pos[self.ids] = np.arange(len(self.ids))
            self._pos = pos
        return self._pos[ids]


@dataclass(frozen=True)
class Universe:
    """Reference tickers, as columns."""

    symbols: list[str]
    names: list[str]
    types: list[str]
    exchanges: list[str]
    fetched_unix: int


@dataclass(frozen=True)
class Details:
    """Ticker details known so far, as columns (rows = tickers)."""

    tickers: list[str]
    sic_codes: np.ndarray  # int64
    market_caps: np.ndarray  # float64
    shares: np.ndarray
    sic_descriptions: list[str]


class BarStore:
    """Typed access to the keyspace above, with decoded raw sessions cached in process memory."""

    def __init__(self, redis: ResilientRedis, *, session_cache: int = 800, unfinished_ttl: float = 300.0) -> None:
        self.redis = redis
        self.index = TickerIndex()
        self.session_cache = session_cache
        self.unfinished_ttl = unfinished_ttl
        self._sessions: LRUCache[np.datetime64, SessionData] = LRUCache(maxsize=max(session_cache, 1))
        # Sessions still in progress are stored with a TTL in Redis and must not outlive it here either.
        self._in_progress: TTLCache[np.datetime64, SessionData] | None = (
            TTLCache(maxsize=IN_PROGRESS_SESSIONS, ttl=unfinished_ttl) if unfinished_ttl > 0 else None
        )
        # Panel keys this process stored in Redis -> when they expire (monotonic seconds), dropped then.
        self._panels: TLRUCache[str, float] = TLRUCache(maxsize=PANEL_MEMO, ttu=_expires_at)
        # Raw session writes in flight: a cold fetch downloads faster than Redis takes the blocks, and
        # each waiting write would hold a pooled connection.
        self._session_writes = asyncio.Semaphore(SESSION_WRITES)

    @property
    def degraded(self) -> bool:
        return self.redis.degraded

    # --- raw sessions ---------------------------------------------------------------------------

    def _remember(self, data: SessionData, *, in_progress: bool) -> None:
        if in_progress and self._in_progress is not None:
            self._sessions.pop(data.day, None)
            self._in_progress[data.day] = data
            return
        if self._in_progress is not None:
            self._in_progress.pop(data.day, None)
        if self.session_cache > 0:
            self._sessions[data.day] = data

    def _cached(self, day: np.datetime64) -> SessionData | None:
        data = self._in_progress.get(day) if self._in_progress is not None else None
        return data if data is not None else self._sessions.get(day)

    def _session_from_block(self, day: np.datetime64, block: Block) -> SessionData:
        ids = self.index.ids(block.rows)
        padded = np.empty((len(ids) + 1, len(BAR_FIELDS)), dtype=np.float32)
        padded[:-1] = block.array
        padded[-1] = np.nan
        return SessionData(day=day, ids=ids, padded=padded)

    async def get_sessions(self, days: Sequence[np.datetime64]) -> dict[np.datetime64, SessionData]:
        """The stored sessions among ``days`` (memory first, then one MGET); absent days are left out."""
        found: dict[np.datetime64, SessionData] = {}
        wanted = []
        for day in days:
            data = self._cached(day)
            if data is not None:
                found[day] = data
            else:
                wanted.append(day)
        if wanted:
            values = await self.redis.mget(session_key(d) for d in wanted)
            for day, raw in zip(wanted, values, strict=True):
                if raw is None:
                    continue
                try:
                    data = self._session_from_block(day, decode_block(raw))
                except BlockError as exc:
                    log.warning("discarding a corrupt session block", session=day_str(day), error=str(exc))
                    continue
                found[day] = data
                self._remember(data, in_progress=False)
        return found

    async def newest_session(self, days: Sequence[np.datetime64]) -> np.datetime64 | None:
        """The newest of ``days`` that is stored (in memory or Redis), None when none is."""
        newest = max((d for d in days if self._cached(d) is not None), default=None)
        rest = [d for d in days if newest is None or d > newest]
        found = await asyncio.gather(*(self.redis.exists(session_key(d)) for d in rest))
        return max((d for d, hit in zip(rest, found, strict=True) if hit), default=newest)

    async def put_session(self, day: np.datetime64, grouped: GroupedDay, *, unfinished: bool) -> SessionData:
        """Store one session's bars (immutable unless ``unfinished``) and keep it decoded in memory.

        ``grouped.ids``, when set, must be ids of this store's ``index`` (the client decodes with it).
        """
        n = len(grouped.values)
        padded = np.empty((n + 1, grouped.values.shape[1]), dtype=np.float32)
        padded[:-1] = grouped.values
        padded[-1] = np.nan
        raw = encode_block(padded[:-1], rows=grouped.tickers, fields=BAR_FIELDS, meta={"session": day_str(day)})
        ttl = self.unfinished_ttl if unfinished else None
        async with self._session_writes:
            await self.redis.set(session_key(day), raw, ttl=ttl)
        ids = grouped.ids if grouped.ids is not None else self.index.ids(grouped.tickers)
        data = SessionData(day=day, ids=ids, padded=padded)
        self._remember(data, in_progress=unfinished)
        return data

    # --- per-ticker ranges ----------------------------------------------------------------------

    async def get_ticker_ranges(
        self, tickers: Sequence[str], start: np.datetime64, end: np.datetime64
    ) -> dict[str, TickerRange]:
        """Cached per-ticker ranges that cover ``start``..``end``."""
        values = await self.redis.mget(ticker_key(t) for t in tickers)
        out: dict[str, TickerRange] = {}
        for ticker, raw in zip(tickers, values, strict=True):
            if raw is None:
                continue
            try:
                block = decode_block(raw)
            except BlockError:
                continue
            if np.datetime64(block.meta["from"]) <= start and np.datetime64(block.meta["to"]) >= end:
                arr = block.array
                out[ticker] = TickerRange(
                    ticker=ticker, days=arr[:, 0].astype(np.int64).astype(DAY), values=np.array(arr[:, 1:])
                )
        return out

    async def put_ticker_range(
        self, rng: TickerRange, start: np.datetime64, end: np.datetime64, *, unfinished: bool
    ) -> None:
        arr = (
            np.column_stack([rng.days.astype(np.int64).astype(np.float64), rng.values])
            if len(rng.days)
            else np.empty((0, 1 + len(BAR_FIELDS)))
        )
        raw = encode_block(arr, fields=("day", *BAR_FIELDS), meta={"from": day_str(start), "to": day_str(end)})
        await self.redis.set(ticker_key(rng.ticker), raw, ttl=self.unfinished_ttl if unfinished else TICKER_TTL)

    # --- splits ---------------------------------------------------------------------------------

    async def get_splits(self, scope: str, start: np.datetime64, end: np.datetime64) -> SplitTable | None:
        raw = await self.redis.get(splits_key(scope, start, end))
        if raw is None:
            return None
        block = decode_block(raw)
        arr = block.array
        return SplitTable(
            tickers=list(block.rows),
            dates=arr[:, 0].astype(np.int64).astype(DAY),
            split_from=np.array(arr[:, 1]),
            split_to=np.array(arr[:, 2]),
        )

    async def put_splits(self, scope: str, start: np.datetime64, end: np.datetime64, table: SplitTable) -> None:
        arr = (
            np.column_stack([table.dates.astype(np.int64).astype(np.float64), table.split_from, table.split_to])
            if table.tickers
            else np.empty((0, 3))
        )
        raw = encode_block(arr, rows=table.tickers, fields=("day", "split_from", "split_to"))
        await self.redis.set(splits_key(scope, start, end), raw, ttl=DAY_TTL)

    # --- universe -------------------------------------------------------------------------------

    async def get_universe(self) -> Universe | None:
        raw = await self.redis.get(UNIVERSE_REF_KEY)
        if raw is None:
            return None
        block = decode_block(raw)
        meta: dict[str, Any] = dict(block.meta)
        return Universe(
            symbols=list(block.rows),
            names=list(meta["names"]),
            types=list(meta["types"]),
            exchanges=list(meta["exchanges"]),
            fetched_unix=int(meta["fetched_unix"]),
        )

    async def put_universe(self, universe: Universe) -> None:
        raw = encode_block(
            np.zeros((len(universe.symbols), 0), dtype=np.int8),
            rows=universe.symbols,
            meta={
                "names": universe.names,
                "types": universe.types,
                "exchanges": universe.exchanges,
                "fetched_unix": universe.fetched_unix,
            },
        )
        await self.redis.set(UNIVERSE_REF_KEY, raw, ttl=DAY_TTL)

    async def get_details(self) -> Details:
        raw = await self.redis.get(UNIVERSE_DETAILS_KEY)
        if raw is None:
            return Details([], np.zeros(0, np.int64), np.zeros(0), np.zeros(0), [])
        block = decode_block(raw)
        arr = block.array
        return Details(
            tickers=list(block.rows),
            sic_codes=arr[:, 0].astype(np.int64),
            market_caps=np.array(arr[:, 1]),
            shares=np.array(arr[:, 2]),
            sic_descriptions=list(block.meta["sic_descriptions"]),
        )

    async def add_details(self, new: Sequence[TickerDetails | tuple[str, None]]) -> Details:
        """Merge newly fetched details (``(ticker, None)``: Polygon does not know it) into the cache."""
        current = await self.get_details()
        merged = {
            t: (float(c), float(m), float(s), d)
            for t, c, m, s, d in zip(
                current.tickers,
                current.sic_codes,
                current.market_caps,
                current.shares,
                current.sic_descriptions,
                strict=True,
            )
        }
        for item in new:
            if isinstance(item, TickerDetails):
                merged[item.ticker] = (float(item.sic_code), item.market_cap, item.shares, item.sic_description)
            else:
                merged[item[0]] = (0.0, float("nan"), float("nan"), "")
        tickers = list(merged)
        arr = np.array([v[:3] for v in merged.values()], dtype=np.float64).reshape(-1, 3)
        descriptions = [v[3] for v in merged.values()]
        raw = encode_block(
            arr, rows=tickers, fields=("sic_code", "market_cap", "shares"), meta={"sic_descriptions": descriptions}
        )
        await self.redis.set(UNIVERSE_DETAILS_KEY, raw, ttl=DAY_TTL)
        return Details(
            tickers=tickers,
            sic_codes=arr[:, 0].astype(np.int64),
            market_caps=arr[:, 1],
            shares=arr[:, 2],
            sic_descriptions=descriptions,
        )

    # --- panel chunks ---------------------------------------------------------------------------

    async def put_panel(self, key: str, block: bytes, ttl: float) -> bool:
        """Store a panel chunk; False when Redis is down (the caller then sends it inline)."""
        stored = await self.redis.set(key, block, ttl=ttl)
        self._panels.pop(key, None)
        if stored:
            self._panels[key] = time.monotonic() + ttl
        return stored

    async def has_panel(self, key: str) -> bool:
        """Whether Redis still holds a chunk this process stored under ``key``, for long enough to be read.

        Panel keys carry the chunk's content digest, so the same key means the same bytes and the chunk
        need not be written again. Only keys stored in Redis by this process count (never one that went
        to the in-process fallback), and Redis is asked, as it may have evicted the key since.
        """
        expiry = self._panels.get(key)
        if expiry is None or expiry - PANEL_READ_MARGIN <= time.monotonic():
            return False
        if not self.redis.degraded and await self.redis.exists(key):
            return True
        self._panels.pop(key, None)
        return False

    async def has_panels(self, keys: Sequence[str]) -> bool:
        """Whether :meth:`has_panel` holds for every one of ``keys``, asking Redis once for all."""
        due = time.monotonic() + PANEL_READ_MARGIN
        if self.redis.degraded or any((self._panels.get(key) or 0.0) <= due for key in keys):
            return False
        return not keys or await self.redis.count_existing(keys) == len(keys)
