"""Async Polygon REST client: one keep-alive pool, bounded concurrency, rate limit, retries.

Every call goes through :meth:`PolygonClient._get`: at most ``max_in_flight`` requests at once, a
token bucket (``rate`` requests per second, 0 = unlimited), and a bounded number of retries
(tenacity) with capped exponential backoff and jitter on 429, 5xx, timeouts, transport errors and
malformed or truncated bodies (``Retry-After`` is honoured when present, see :func:`retry_delay`).
400/401/403/404 are not retried: they raise a typed :class:`PolygonError` carrying Polygon's own
message. The API key travels only in the ``Authorization: Bearer`` header; URLs in log lines carry
no query string.

The HTTP client is aiohttp: a year of grouped days is about 280 MB of JSON, and its C parser on
a plain asyncio protocol reads a megabyte body for a fifth of the CPU that httpx spends (anyio
pauses and resumes the socket around every 64 KB read). Bar bodies are scanned straight into
numpy columns (services/fetcher/jsonbars.py), with msgspec as the general decoder behind it;
reference bodies are decoded with msgspec into typed structs.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

import aiohttp
import msgspec
import numpy as np
import orjson
import structlog
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt

from services.fetcher.jsonbars import ParsedBars, parse_results

log = structlog.get_logger(__name__)
T = TypeVar("T")

# Column order of every bar array this module returns.
BAR_FIELDS = ("open", "high", "low", "close", "volume", "vwap")
_DAY_MS = 86_400_000
# Bodies at least this large are decoded on a worker thread (the bar scanner releases the GIL), so
# the event loop keeps reading other responses meanwhile.
OFFLOAD_BYTES = 256 * 1024
# Bars are stamped either at the session start (00:00 New York) or its end (16:00 New York);
# shifting by four hours before flooring to a UTC day gives the New York date in both cases.
_NY_SHIFT_MS = 4 * 3_600_000


class PolygonError(Exception):
    """Polygon answered with an error, or a request failed after every retry."""

    def __init__(self, message: str, *, status_code: int | None = None, path: str = "", request_id: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.path = path
        self.request_id = request_id

    def __str__(self) -> str:
        code = f"HTTP {self.status_code} " if self.status_code else ""
        return f"{code}{self.path}: {self.message}"


class PolygonAuthError(PolygonError):
    """401/403: the key is missing, wrong, or not entitled. Never retried."""


class PolygonNotFound(PolygonError):
    """404: the resource does not exist."""


class PolygonBadRequest(PolygonError):
    """400 and other non-retryable client errors."""


class PolygonUnavailable(PolygonError):
    """Retries exhausted on 429, 5xx, timeouts or malformed bodies."""


@dataclass
class RequestCounters:
    """HTTP work done on behalf of one request context (or the whole process)."""

    requests: int = 0
    retries: int = 0
    bytes: int = 0
    errors: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"requests": self.requests, "retries": self.retries, "bytes": self.bytes, "http_errors": self.errors}


_scopes: ContextVar[tuple[RequestCounters, ...]] = ContextVar("polygon_counters", default=())


@contextlib.contextmanager
def counting() -> Iterator[RequestCounters]:
    """Count every request made inside this context (tasks started inside it included)."""
    counters = RequestCounters()
    token = _scopes.set((*_scopes.get(), counters))
    try:
        yield counters
    finally:
        _scopes.reset(token)


async def run_all(coros: Iterable[Awaitable[T]]) -> list[T]:
    """Run ``coros`` concurrently and return their results in order. The first authentication error
    cancels the others and is raised as itself (not wrapped in an exception group)."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(_await(c)) for c in coros]
    except* PolygonAuthError as eg:
        raise eg.exceptions[0] from None
    return [t.result() for t in tasks]


async def _await(awaitable: Awaitable[T]) -> T:
    return await awaitable


class Retryable(Exception):
    """A failed attempt worth another: why it failed, and the answer's Retry-After header, if any."""

    def __init__(self, reason: str, retry_after: str | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


# The longest Retry-After honoured (seconds): a larger one waits this long.
RETRY_AFTER_MAX = 60.0


def retry_delay(attempt: int, retry_after: str | None, base: float, cap: float) -> float:
    """Seconds to wait after failed attempt ``attempt`` (0 for the first).

    The server's ``Retry-After`` when it sent a number of seconds (clamped to 0..``RETRY_AFTER_MAX``);
    otherwise exponential backoff with jitter: uniform(0.5, 1) x min(``cap``, ``base`` x 2^attempt).
    """
    if retry_after:
        with contextlib.suppress(ValueError):
            return min(max(float(retry_after), 0.0), RETRY_AFTER_MAX)
    return random.uniform(0.5, 1.0) * min(cap, base * 2**attempt)


def _log_retry(path: str, state: RetryCallState) -> None:
    failure = state.outcome.exception() if state.outcome is not None else None
    delay = state.next_action.sleep if state.next_action is not None else 0.0
    log.debug("polygon retry", path=path, attempt=state.attempt_number, delay=round(delay, 3), error=str(failure))


class TokenBucket:
    """Client-side rate limit: ``rate`` tokens per second, bursts up to ``capacity``."""

    def __init__(self, rate: float, capacity: float | None = None) -> None:
        self.rate = rate
        self.capacity = capacity if capacity is not None else max(1.0, rate)
        self._tokens = self.capacity
        self._updated = time.monotonic()
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        if self.rate <= 0:
            return
        async with self._lock:
            while True:
                now = time.monotonic()
                self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
                self._updated = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                await asyncio.sleep((1 - self._tokens) / self.rate)


# --- response shapes (only the keys used are declared; msgspec skips the rest) -----------------


class _Bar(msgspec.Struct):
    o: float | None = None
    h: float | None = None
    l: float | None = None  # noqa: E741 - Polygon's key
    c: float | None = None
    v: float | None = None
    vw: float | None = None
    t: int = 0
    T: str = ""


class _Aggs(msgspec.Struct):
    results: list[_Bar] | None = None
    status: str = ""
    next_url: str | None = None


class _NextPage(msgspec.Struct):
    next_url: str | None = None


class _TickerRef(msgspec.Struct):
    ticker: str
    name: str = ""
    type: str = ""
    primary_exchange: str = ""
    market: str = ""


class _TickerPage(msgspec.Struct):
    results: list[_TickerRef] | None = None
    next_url: str | None = None


class _DetailsResult(msgspec.Struct):
    ticker: str = ""
    market_cap: float | None = None
    sic_code: str | None = None
    sic_description: str | None = None
    share_class_shares_outstanding: float | None = None


class _Details(msgspec.Struct):
    results: _DetailsResult | None = None


class _Split(msgspec.Struct):
    ticker: str
    execution_date: str
    split_from: float
    split_to: float


class _SplitPage(msgspec.Struct):
    results: list[_Split] | None = None
    next_url: str | None = None


_DECODERS: dict[type, msgspec.json.Decoder[Any]] = {
    t: msgspec.json.Decoder(t) for t in (_Aggs, _NextPage, _TickerPage, _Details, _SplitPage)
}


@dataclass(frozen=True)
class _AggsPage:
    values: np.ndarray  # float64 (rows, 7): BAR_FIELDS then t
    next_url: str | None
    parsed: ParsedBars | None = None  # the Numba scanner's rows (ticker spans), when it read the body
    tickers: list[str] | None = None  # the JSON decoder's tickers, when it did


def _decode_aggs(body: bytes) -> _AggsPage:
    """An aggregates body as columns: the Numba scanner when it can, msgspec otherwise."""
    fast = parse_results(body)
    if fast is not None:
        # A cursor page names its next page outside the rows, the only place ``next_url`` can appear.
        paged = b'"next_url"' in body[: fast.start] or b'"next_url"' in body[fast.end :]
        return _AggsPage(fast.values, _DECODERS[_NextPage].decode(body).next_url if paged else None, parsed=fast)
    page = _DECODERS[_Aggs].decode(body)
    rows = page.results or []
    values = np.array([(b.o, b.h, b.l, b.c, b.v, b.vw, b.t) for b in rows], dtype=np.float64).reshape(-1, 7)
    return _AggsPage(values, page.next_url, tickers=[b.T for b in rows])


# --- results handed to callers -----------------------------------------------------------------


@dataclass(frozen=True)
class GroupedDay:
    """Every ticker's unadjusted bar of one session; ``values`` columns follow BAR_FIELDS.

    ``ids`` are the tickers' ids in the :class:`TickerIds` the day was decoded with, if any.
    """

    tickers: Sequence[str]
    values: np.ndarray  # float64 (n, 6)
    ids: np.ndarray | None = None


class TickerIds(Protocol):
    """Ticker strings <-> ids (services/fetcher/tickers.py): lets a body's tickers skip being strings."""

    def ids(self, tickers: Sequence[str]) -> np.ndarray: ...

    def ids_of_spans(self, buf: np.ndarray, spans: np.ndarray) -> np.ndarray: ...

    def names(self, ids: np.ndarray) -> Sequence[str]: ...


@dataclass(frozen=True)
class TickerRange:
    """One ticker's unadjusted bars, oldest first."""

    ticker: str
    days: np.ndarray  # datetime64[D] (m,)
    values: np.ndarray  # float64 (m, 6)


@dataclass(frozen=True)
class TickerDetails:
    ticker: str
    market_cap: float
    sic_code: int
    sic_description: str
    shares: float


@dataclass(frozen=True)
class SplitTable:
    """Split events: shares after / before = split_to / split_from, effective at execution_date."""

    tickers: list[str]
    dates: np.ndarray  # datetime64[D]
    split_from: np.ndarray  # float64
    split_to: np.ndarray  # float64


def _decode_grouped(body: bytes, index: TickerIds | None = None) -> GroupedDay | None:
    """A grouped-daily body as one row per ticker; None when it has no rows (weekend, holiday).

    With an ``index``, tickers are matched to ids straight from the body's bytes.
    """
    page = _decode_aggs(body)
    if not len(page.values):
        return None
    values = page.values[:, :6]
    if index is None:
        tickers = (page.tickers or []) if page.parsed is None else page.parsed.tickers()
        return _first_of_each(GroupedDay(tickers=tickers, values=values))
    if page.parsed is not None:
        ids = index.ids_of_spans(page.parsed.buf, page.parsed.spans)
    else:
        ids = index.ids(page.tickers or [])
    return _first_of_each(GroupedDay(tickers=index.names(ids), values=values, ids=ids))


def _first_of_each(day: GroupedDay) -> GroupedDay:
    """Polygon repeats a row now and then: keep the first of each ticker."""
    if day.ids is not None:
        repeated = len(day.ids) and int(np.bincount(day.ids).max()) > 1
        labels = day.ids
    else:
        repeated = len(set(day.tickers)) != len(day.tickers)
        labels = np.asarray(day.tickers)
    if not repeated:
        return day
    _, first = np.unique(labels, return_index=True)
    first.sort()
    return GroupedDay(
        tickers=[day.tickers[i] for i in first],
        values=day.values[first],
        ids=None if day.ids is None else day.ids[first],
    )


def _error_message(body: bytes, reason: str) -> tuple[str, str]:
    """Polygon's message and request id from an error body (any shape, possibly not JSON)."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[:200].decode("utf-8", "replace") or reason, ""
    if not isinstance(parsed, dict):
        return str(parsed)[:200], ""
    message = parsed.get("error") or parsed.get("message") or parsed.get("status") or reason
    return str(message), str(parsed.get("request_id", ""))


class PolygonClient:
    """The one HTTP client of the fetcher (use as an async context manager or call aclose())."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        max_in_flight: int = 16,
        details_in_flight: int = 48,
        rate: float = 0.0,
        max_retries: int = 6,
        backoff_base: float = 0.25,
        backoff_max: float = 8.0,
        timeout: float = 20.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._origin = urlsplit(self.base_url)[:2]
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.total = RequestCounters()
        self._semaphore = asyncio.Semaphore(max_in_flight)
        # Ticker details are small one-per-ticker requests: their own gate, so a first start fetches
        # them next to the bars instead of queueing behind them.
        self._details_gate = asyncio.Semaphore(details_in_flight)
        self._bucket = TokenBucket(rate)
        self._connections = max_in_flight + details_in_flight
        self._headers = {"Authorization": f"Bearer {api_key}", "Accept": "application/json"}
        self._timeout = aiohttp.ClientTimeout(total=timeout, connect=min(timeout, 5.0))
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        """The keep-alive session, made on first use (aiohttp wants a running event loop)."""
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._connections, limit_per_host=self._connections)
            self._session = aiohttp.ClientSession(
                headers=self._headers, timeout=self._timeout, connector=connector, raise_for_status=False
            )
        return self._session

    async def __aenter__(self) -> PolygonClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()

    def _count(self, **deltas: int) -> None:
        for counters in (self.total, *_scopes.get()):
            for name, delta in deltas.items():
                setattr(counters, name, getattr(counters, name) + delta)

    def _same_origin(self, url: str) -> str:
        """A ``next_url`` is followed only on the configured host: the key must not go elsewhere."""
        parts = urlsplit(url)
        if parts.scheme and parts[:2] != self._origin:
            raise PolygonBadRequest(f"next_url points to another host ({parts.netloc})", path=parts.path)
        return url

    async def _get(
        self,
        url: str,
        params: dict[str, Any] | None,
        decode: Callable[[bytes], T],
        gate: asyncio.Semaphore | None = None,
    ) -> T:
        """GET ``url`` and ``decode`` its body, with retries; raises a PolygonError subclass. ``gate``
        bounds the requests in flight (the bar gate unless given).

        Only :class:`Retryable` outcomes are tried again, at most ``max_retries`` times; the client
        errors raise from the first answer."""
        path = urlsplit(url).path
        full = url if urlsplit(url).scheme else self.base_url + url
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.max_retries + 1),
            wait=self._wait,
            retry=retry_if_exception_type(Retryable),
            before=self._count_retry,
            before_sleep=partial(_log_retry, path),
            reraise=True,
        )
        try:
            return await retrying(self._attempt, full, params, decode, gate or self._semaphore, path)
        except Retryable as exc:
            raise PolygonUnavailable(f"failed after {self.max_retries + 1} attempts: {exc}", path=path) from None

    def _wait(self, state: RetryCallState) -> float:
        """Seconds before the next attempt (tenacity's wait): see :func:`retry_delay`."""
        failure = state.outcome.exception() if state.outcome is not None else None
        retry_after = failure.retry_after if isinstance(failure, Retryable) else None
        return retry_delay(state.attempt_number - 1, retry_after, self.backoff_base, self.backoff_max)

    def _count_retry(self, state: RetryCallState) -> None:
        if state.attempt_number > 1:
            self._count(retries=1)

    async def _attempt(
        self, url: str, params: dict[str, Any] | None, decode: Callable[[bytes], T], gate: asyncio.Semaphore, path: str
    ) -> T:
        """One request: the decoded body, a typed PolygonError for answers that retrying cannot change,
        or :class:`Retryable` (429, 5xx, timeouts, transport errors, malformed or truncated bodies)."""
        await self._bucket.acquire()
        async with gate:
            self._count(requests=1)
            try:
                async with self._http().get(url, params=params) as response:
                    status, body = response.status, await response.read()
                    retry_after = response.headers.get("Retry-After")
                    reason = response.reason or ""
            except (TimeoutError, aiohttp.ClientError) as exc:
                raise Retryable(f"{type(exc).__name__}: {exc}") from None
        self._count(bytes=len(body))
        if status == 200:
            try:
                if len(body) >= OFFLOAD_BYTES:
                    return await asyncio.to_thread(decode, body)
                return decode(body)
            except msgspec.DecodeError as exc:
                raise Retryable(f"malformed body: {exc}", retry_after) from None
        self._count(errors=1)
        message, request_id = _error_message(body, reason)
        if status in (401, 403):
            raise PolygonAuthError(message, status_code=status, path=path, request_id=request_id)
        if status == 404:
            raise PolygonNotFound(message, status_code=status, path=path, request_id=request_id)
        if status != 429 and status < 500:
            raise PolygonBadRequest(message, status_code=status, path=path, request_id=request_id)
        raise Retryable(f"HTTP {status}: {message}", retry_after)

    async def _pages(self, path: str, params: dict[str, Any], decode: Callable[[bytes], Any]) -> list[Any]:
        """Every page of a cursor-paginated endpoint (follows ``next_url``)."""
        pages = [await self._get(path, params, decode)]
        while pages[-1].next_url:
            pages.append(await self._get(self._same_origin(pages[-1].next_url), None, decode))
        return pages

    # --- endpoints ------------------------------------------------------------------------------

    async def grouped_daily(self, day: str, index: TickerIds | None = None) -> GroupedDay | None:
        """Every ticker's unadjusted bar for ``day`` (YYYY-MM-DD); None when the source has none.

        With an ``index``, the day comes with its tickers' ids (matched while decoding, off the event loop).
        """
        return await self._get(
            f"/v2/aggs/grouped/locale/us/market/stocks/{day}",
            {"adjusted": "false", "include_otc": "true"},
            partial(_decode_grouped, index=index),
        )

    async def ticker_range(self, ticker: str, start: str, end: str) -> TickerRange:
        """One ticker's unadjusted daily bars from ``start`` to ``end`` (inclusive), following next_url."""
        path = f"/v2/aggs/ticker/{ticker}/range/1/day/{start}/{end}"
        try:
            pages = await self._pages(path, {"adjusted": "false", "sort": "asc", "limit": 50000}, _decode_aggs)
        except PolygonNotFound:
            pages = []
        values = np.concatenate([p.values for p in pages]) if pages else np.empty((0, 7))
        days = ((values[:, 6].astype(np.int64) - _NY_SHIFT_MS) // _DAY_MS).astype("datetime64[D]")
        return TickerRange(ticker=ticker, days=days, values=values[:, :6])

    async def reference_tickers(self) -> list[_TickerRef]:
        """Every active stock ticker (cursor pages of 1,000)."""
        pages = await self._pages(
            "/v3/reference/tickers",
            {"market": "stocks", "active": "true", "limit": 1000},
            _DECODERS[_TickerPage].decode,
        )
        return [ref for page in pages for ref in (page.results or ())]

    async def ticker_details(self, ticker: str) -> TickerDetails | None:
        """Market cap and SIC code of one ticker; None when Polygon does not know it."""
        try:
            body = await self._get(
                f"/v3/reference/tickers/{ticker}", None, _DECODERS[_Details].decode, self._details_gate
            )
        except PolygonNotFound:
            return None
        r = body.results or _DetailsResult()
        sic = int(r.sic_code) if r.sic_code and r.sic_code.strip().isdigit() else 0
        return TickerDetails(
            ticker=ticker,
            market_cap=float(r.market_cap) if r.market_cap is not None else float("nan"),
            sic_code=sic,
            sic_description=r.sic_description or "",
            shares=float(r.share_class_shares_outstanding or "nan"),
        )

    async def splits(self, start: str, end: str, ticker: str | None = None) -> SplitTable:
        """Split events executed from ``start`` to ``end`` (inclusive), for one ticker or all."""
        params: dict[str, Any] = {"execution_date.gte": start, "execution_date.lte": end, "limit": 1000}
        if ticker:
            params["ticker"] = ticker
        pages = await self._pages("/v3/reference/splits", params, _DECODERS[_SplitPage].decode)
        rows = [s for page in pages for s in (page.results or ()) if s.split_from > 0 and s.split_to > 0]
        return SplitTable(
            tickers=[s.ticker for s in rows],
            dates=np.array([s.execution_date for s in rows], dtype="datetime64[D]"),
            split_from=np.array([s.split_from for s in rows], dtype=np.float64),
            split_to=np.array([s.split_to for s in rows], dtype=np.float64),
        )
