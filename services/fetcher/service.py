"""Fetcher gRPC servicer: translates messages to calls on the domain modules and back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import grpc
import structlog

from services.common.redis_client import ResilientRedis
from services.fetcher.calendar import TradingCalendar
from services.fetcher.panels import PanelBuilder, PanelReport, RequestError, RequestStats
from services.fetcher.polygon import PolygonAuthError, PolygonClient, PolygonError
from services.fetcher.settings import FetcherSettings
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


class FetcherService(fetcher_pb2_grpc.FetcherServicer):
    def __init__(
        self, settings: FetcherSettings, *, on_redis_state: Callable[[bool], Awaitable[None] | None] | None = None
    ) -> None:
        self.settings = settings
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
        self.panels = PanelBuilder(
            self.client,
            self.store,
            TradingCalendar(),
            latest_ttl=settings.fetcher_latest_ttl,
            stack_sessions=settings.fetcher_stack_sessions,
        )
        self.universe = UniverseService(self.client, self.store)
        self._background: list[asyncio.Task[None]] = []

    def start_background(self) -> None:
        """Start the tasks that keep answers fresh between requests (the latest session)."""
        self._background.append(
            asyncio.create_task(self.panels.latest.keep_fresh(self.settings.fetcher_latest_idle), name="latest-session")
        )

    async def close(self) -> None:
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        await self.client.aclose()
        await self.redis.close()

    async def _call(self, context: grpc.aio.ServicerContext, rpc: str, call: Awaitable[T]) -> T:
        """Await a domain call, turning its errors into gRPC statuses with clear messages."""
        try:
            return await call
        except RequestError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        except PolygonAuthError as exc:
            log.error("polygon refused the key", rpc=rpc, error=str(exc))
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, f"market data source refused the API key: {exc}")
        except PolygonError as exc:
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
        snap = await self._call(context, "GetSnapshot", self.panels.snapshot(request.as_of, window, stats))
        log.info("snapshot served", as_of=snap.as_of, failed_sessions=snap.failed_sessions, **stats.counters())
        return fetcher_pb2.GetSnapshotResponse(
            block=snap.block, as_of=snap.as_of, failed_sessions=snap.failed_sessions, stats=stats_message(stats)
        )

    async def Prefetch(
        self, request_iterator: AsyncIterator[fetcher_pb2.PrefetchRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[fetcher_pb2.PrefetchResponse]:
        header: fetcher_pb2.PrefetchHeader | None = None
        symbols: list[str] = []
        async for message in request_iterator:
            if message.HasField("header"):
                if header is not None:
                    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "Prefetch takes one header, got two")
                header = message.header
            elif message.HasField("batch"):
                if header is None:
                    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "Prefetch must start with a header")
                symbols.extend(message.batch.symbols)
                if len(symbols) > self.settings.fetcher_max_symbols:
                    await context.abort(
                        grpc.StatusCode.INVALID_ARGUMENT,
                        f"at most {self.settings.fetcher_max_symbols} symbols per Prefetch",
                    )
        if header is None:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "Prefetch got no header")
        assert header is not None
        if not any(s.strip() for s in symbols):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "Prefetch got no symbols")
        lookback = header.lookback or DEFAULT_LOOKBACK
        chunk_size = header.chunk_size or self.settings.fetcher_chunk_size
        problem = self._check_lookback(lookback, "lookback") or (
            f"chunk_size must be between 1 and 20000, got {chunk_size}" if not 1 <= chunk_size <= 20000 else None
        )
        if problem:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, problem)
        structlog.contextvars.bind_contextvars(scan_id=header.scan_id)
        report = PanelReport()
        chunks = self.panels.panels(symbols, header.as_of, lookback, chunk_size, report)
        try:
            while True:
                chunk = await self._call(context, "Prefetch", anext(chunks, None))
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
                    chunk_digest=chunk.digest,
                )
        finally:
            await chunks.aclose()
        log.info(
            "prefetch done",
            symbols=len(symbols),
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
            context, "GetBars", self.panels.bars(symbol, days, request.as_of, stats)
        )
        log.info("bars served", symbol=symbol, days=days, has_data=has_data, **stats.counters())
        if not has_data:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no bars for {symbol} in the {days} sessions to {as_of}")
        return fetcher_pb2.GetBarsResponse(symbol=symbol, block=block, stats=stats_message(stats), as_of=as_of)
