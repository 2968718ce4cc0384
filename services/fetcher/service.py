"""Fetcher gRPC servicer: translates messages to calls on the domain modules and back."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import TypeVar

import grpc
import structlog

from services.common.redis_client import ResilientRedis
from services.fetcher.bars import SymbolBars
from services.fetcher.calendar import TradingCalendar
from services.fetcher.chunks import PanelReport, Panels
from services.fetcher.downloads import Downloads
from services.fetcher.polygon import PolygonAuthError, PolygonClient, PolygonError
from services.fetcher.request import RequestError, RequestStats
from services.fetcher.settings import FetcherSettings
from services.fetcher.snapshot import Snapshots
from services.fetcher.splits import Splits
from services.fetcher.store import PANEL_FIELDS, BarStore
from services.fetcher.universe import UniverseService
from technic.v1 import common_pb2, fetcher_pb2, fetcher_pb2_grpc

log = structlog.get_logger(__name__)
T = TypeVar("T")
DEFAULT_LOOKBACK = 260
DEFAULT_WINDOW = 20
DEFAULT_DAYS = 90


def stats_message(stats: RequestStats) -> common_pb2.Stats:
    return common_pb2.Stats(seconds={k: round(v, 6) for k, v in stats.seconds.items()}, counters=stats.counters())


# How long a failing Prefetch waits for the client to finish sending before it answers with the error.
DRAIN_SECONDS = 5.0


async def drain(messages: AsyncIterator[fetcher_pb2.PrefetchRequest]) -> None:
    """Read what is left of a request stream (for at most ``DRAIN_SECONDS``), discarding it.

    A grpc.aio client that is still writing when the RPC ends reports INTERNAL instead of the status
    the server sent, so an error is answered only once the client has sent everything (as when the
    whole stream was read before any answer).
    """
    with contextlib.suppress(TimeoutError, grpc.RpcError, grpc.aio.UsageError):
        async with asyncio.timeout(DRAIN_SECONDS):
            async for _ in messages:
                pass


class SymbolStream:
    """The symbol batches of a Prefetch request stream after its header, read by a task of its own.

    Batches go to the panels through a queue as they arrive; a stream found invalid (a second header,
    too many symbols, none at all) hands the panels a RequestError. The task reads the stream to its
    end even when nobody takes batches any more, so that :meth:`drained` can wait for the client to
    have sent everything before the RPC ends with an error (see :func:`drain`).
    """

    def __init__(self, messages: AsyncIterator[fetcher_pb2.PrefetchRequest], limit: int) -> None:
        self.received = 0
        self._queue: asyncio.Queue[list[str] | Exception | None] = asyncio.Queue()
        self._task = asyncio.create_task(self._read(messages, limit))

    async def _read(self, messages: AsyncIterator[fetcher_pb2.PrefetchRequest], limit: int) -> None:
        problem: RequestError | None = None
        named = False
        try:
            async for message in messages:
                if problem is not None:
                    continue
                if message.HasField("header"):
                    problem = RequestError("Prefetch takes one header, got two")
                elif message.HasField("batch"):
                    self.received += len(message.batch.symbols)
                    if self.received > limit:
                        problem = RequestError(f"at most {limit} symbols per Prefetch")
                    else:
                        named = named or any(s.strip() for s in message.batch.symbols)
                        self._queue.put_nowait(list(message.batch.symbols))
                if problem is not None:
                    self._queue.put_nowait(problem)
        except Exception as exc:  # the stream broke: the panels stop with it
            self._queue.put_nowait(exc)
            return
        if problem is None:
            self._queue.put_nowait(None if named else RequestError("Prefetch got no symbols"))

    async def batches(self) -> AsyncIterator[list[str]]:
        """The batches as they arrive; raises what made the stream invalid."""
        while True:
            item = await self._queue.get()
            if item is None:
                return
            if isinstance(item, Exception):
                raise item
            yield item

    async def drained(self) -> None:
        """Wait until the client has sent its whole stream (at most ``DRAIN_SECONDS``)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._task), DRAIN_SECONDS)

    def cancel(self) -> None:
        self._task.cancel()


class FetcherService(fetcher_pb2_grpc.FetcherServicer):
    """The Fetcher service over the domain modules; ``now`` is the wall clock they go by (by default
    the settings' clock: the real one unless a fixed instant is configured)."""

    def __init__(
        self,
        settings: FetcherSettings,
        *,
        on_redis_state: Callable[[bool], Awaitable[None] | None] | None = None,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self.settings = settings
        now = now or settings.clock()
        self.redis = ResilientRedis(
            settings.redis_url,
            fallback_bytes=settings.fetcher_fallback_mb * 1024 * 1024,
            on_state_change=on_redis_state,
        )
        self.client = PolygonClient(
            settings.polygon_base_url,
            settings.polygon_api_key,
            max_in_flight=settings.fetcher_max_in_flight,
            details_in_flight=settings.fetcher_details_in_flight,
            rate=settings.fetcher_rate_limit,
            max_retries=settings.fetcher_max_retries,
            backoff_base=settings.fetcher_backoff_base,
            backoff_max=settings.fetcher_backoff_max,
            timeout=settings.fetcher_timeout,
        )
        self.store = BarStore(
            self.redis, session_cache=settings.fetcher_session_cache, unfinished_ttl=settings.fetcher_unfinished_ttl
        )
        calendar = TradingCalendar(now=now())
        self.downloads = Downloads(self.client, self.store, calendar, now=now, latest_ttl=settings.fetcher_latest_ttl)
        self.splits = Splits(self.client, self.store)
        self.panels = Panels(
            self.downloads, self.splits, self.store, calendar, now=now, stack_sessions=settings.fetcher_stack_sessions
        )
        self.snapshots = Snapshots(self.downloads, self.splits, self.store)
        self.bars = SymbolBars(self.downloads, self.splits, self.store)
        self.universe = UniverseService(self.client, self.store, now=now)
        self._background: list[asyncio.Task[None]] = []

    def start_background(self) -> None:
        """Start the tasks that keep answers fresh between requests (the latest session)."""
        keep = self.downloads.latest.keep_fresh(self.settings.fetcher_latest_idle)
        self._background.append(asyncio.create_task(keep, name="latest-session"))

    async def close(self) -> None:
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        await self.client.aclose()
        await self.redis.close()

    async def _call(
        self,
        context: grpc.aio.ServicerContext,
        rpc: str,
        call: Awaitable[T],
        before_abort: Callable[[], Awaitable[None]] | None = None,
    ) -> T:
        """Await a domain call, turning its errors into gRPC statuses with clear messages (after
        ``before_abort``, when given)."""
        try:
            return await call
        except (RequestError, PolygonError) as exc:
            if before_abort is not None:
                await before_abort()
            if isinstance(exc, RequestError):
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            if isinstance(exc, PolygonAuthError):
                log.error("polygon refused the key", rpc=rpc, error=str(exc))
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, f"market data source refused the API key: {exc}")
            log.warning("market data unavailable", rpc=rpc, error=str(exc))
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"market data source failed: {exc}")
        raise AssertionError("unreachable: abort raises")

    def _check_lookback(self, value: int, name: str) -> str | None:
        if value < 1 or value > self.settings.fetcher_max_lookback:
            return f"{name} must be between 1 and {self.settings.fetcher_max_lookback}, got {value}"
        return None

    async def GetUniverse(
        self, request: fetcher_pb2.GetUniverseRequest, context: grpc.aio.ServicerContext
    ) -> fetcher_pb2.GetUniverseResponse:
        if len(request.symbols) > self.settings.fetcher_max_symbols:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"at most {self.settings.fetcher_max_symbols} symbols, got {len(request.symbols)}",
            )
        stats = RequestStats()
        view = await self._call(
            context,
            "GetUniverse",
            self.universe.get(
                list(request.symbols), with_details=request.with_details, refresh=request.refresh, stats=stats
            ),
        )
        log.info("universe served", tickers=len(view.symbols), not_found=len(view.not_found), **stats.counters())
        return fetcher_pb2.GetUniverseResponse(
            symbols=view.symbols,
            names=view.names,
            types=view.types,
            exchanges=view.exchanges,
            sic_codes=view.sic_codes.tolist(),
            sectors=view.sectors,
            industries=view.industries,
            market_caps=view.market_caps.tolist(),
            as_of_unix=view.fetched_unix,
            stats=stats_message(stats),
            not_found=view.not_found,
        )

    async def GetSnapshot(
        self, request: fetcher_pb2.GetSnapshotRequest, context: grpc.aio.ServicerContext
    ) -> fetcher_pb2.GetSnapshotResponse:
        window = request.window or DEFAULT_WINDOW
        problem = self._check_lookback(window, "window")
        if problem:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, problem)
        stats = RequestStats()
        snap = await self._call(context, "GetSnapshot", self.snapshots.snapshot(request.as_of, window, stats))
        log.info("snapshot served", as_of=snap.as_of, failed_sessions=snap.failed_sessions, **stats.counters())
        return fetcher_pb2.GetSnapshotResponse(
            block=snap.block, as_of=snap.as_of, failed_sessions=snap.failed_sessions, stats=stats_message(stats)
        )

    async def Prefetch(
        self, request_iterator: AsyncIterator[fetcher_pb2.PrefetchRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[fetcher_pb2.PrefetchResponse]:
        """Chunk references stream back while symbol batches still stream in (see services/fetcher/chunks.py)."""
        messages = aiter(request_iterator)
        header: fetcher_pb2.PrefetchHeader | None = None
        while header is None:
            message = await anext(messages, None)
            if message is None:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "Prefetch got no header")
                return
            if message.HasField("batch"):
                await drain(messages)
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "Prefetch must start with a header")
            if message.HasField("header"):
                header = message.header
        lookback = header.lookback or DEFAULT_LOOKBACK
        chunk_size = header.chunk_size or self.settings.fetcher_chunk_size
        problem = self._check_lookback(lookback, "lookback") or (
            f"chunk_size must be between 1 and 20000, got {chunk_size}" if not 1 <= chunk_size <= 20000 else None
        )
        if problem:
            await drain(messages)
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, problem)
        stream = SymbolStream(messages, self.settings.fetcher_max_symbols)
        structlog.contextvars.bind_contextvars(scan_id=header.scan_id)
        report = PanelReport()
        chunks = self.panels.panels(stream.batches(), header.as_of, lookback, chunk_size, report)
        try:
            while True:
                chunk = await self._call(context, "Prefetch", anext(chunks, None), stream.drained)
                if chunk is None:
                    break
                yield fetcher_pb2.PrefetchResponse(
                    chunk=common_pb2.ChunkRef(
                        key=chunk.key,
                        inline_block=chunk.inline,
                        chunk_index=chunk.index,
                        symbols=chunk.symbols,
                        n_sessions=chunk.n_sessions,
                        fields=PANEL_FIELDS,
                        as_of=chunk.as_of,
                        content_digest=chunk.digest,
                    ),
                    no_data=chunk.no_data,
                )
        finally:
            await chunks.aclose()
            stream.cancel()
        log.info(
            "prefetch done",
            symbols=stream.received,
            as_of=report.as_of,
            strategy=report.strategy,
            failed_sessions=report.failed_sessions,
            failed_symbols=report.failed_symbols,
            degraded=report.degraded,
            seconds=report.stats.seconds,
            **report.stats.counters(),
        )
        structlog.contextvars.unbind_contextvars("scan_id")
        yield fetcher_pb2.PrefetchResponse(
            done=True,
            failed_sessions=report.failed_sessions,
            failed_symbols=report.failed_symbols,
            as_of=report.as_of,
            degraded=report.degraded,
            stats=stats_message(report.stats),
        )

    async def GetBars(
        self, request: fetcher_pb2.GetBarsRequest, context: grpc.aio.ServicerContext
    ) -> fetcher_pb2.GetBarsResponse:
        symbol = request.symbol.strip().upper()
        if not symbol or len(symbol) > 32:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "GetBars needs a symbol (at most 32 characters)")
        days = request.days or DEFAULT_DAYS
        problem = self._check_lookback(days, "days")
        if problem:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, problem)
        stats = RequestStats()
        block, has_data, as_of = await self._call(
            context, "GetBars", self.bars.bars(symbol, days, request.as_of, stats)
        )
        log.info("bars served", symbol=symbol, days=days, has_data=has_data, **stats.counters())
        if not has_data:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no bars for {symbol} in the {days} sessions to {as_of}")
        return fetcher_pb2.GetBarsResponse(symbol=symbol, block=block, stats=stats_message(stats), as_of=as_of)
