"""The public Scanner gRPC service: validates requests and translates them to orchestrator calls."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import NoReturn, TypeVar

import grpc
import structlog
from google.protobuf.message import DecodeError, Message

from gateway.caches import PageCache
from gateway.orchestrator import InvalidRequest, NotFound, Orchestrator, Progress, ScanError, Unavailable
from gateway.validation import MAX_DAYS, check_options, check_page, check_ticker
from technic.v1 import scanner_pb2

log = structlog.get_logger(__name__)
T = TypeVar("T")
M = TypeVar("M", bound=Message)
SERVICE = "technic.v1.Scanner"

STATUS_OF: dict[type[ScanError], grpc.StatusCode] = {
    InvalidRequest: grpc.StatusCode.INVALID_ARGUMENT,
    NotFound: grpc.StatusCode.NOT_FOUND,
    Unavailable: grpc.StatusCode.UNAVAILABLE,
}


def progress_message(item: Progress) -> scanner_pb2.Progress:
    return scanner_pb2.Progress(
        stage=item.stage, done=item.done, total=item.total, elapsed_seconds=item.elapsed, message=item.message
    )


async def _abort(context: grpc.aio.ServicerContext, exc: Exception) -> NoReturn:
    """Abort with the status a domain error maps to; anything else is logged and hidden."""
    if isinstance(exc, ScanError):
        await context.abort(STATUS_OF.get(type(exc), grpc.StatusCode.INTERNAL), str(exc))
    log.exception("scanner request failed", error=repr(exc))
    await context.abort(grpc.StatusCode.INTERNAL, "internal error; the gateway log has the details")
    raise AssertionError("context.abort returns only by raising")


async def _guarded(context: grpc.aio.ServicerContext, call: Callable[[], Awaitable[T]]) -> T:
    try:
        return await call()
    except Exception as exc:  # every failure becomes a status, never a traceback
        await _abort(context, exc)


def _wire(message: bytes | Message) -> bytes:
    """Response serializer: cached answers are bytes already, anything else is a message."""
    return message if isinstance(message, bytes) else message.SerializeToString()


async def _parse(context: grpc.aio.ServicerContext, kind: type[M], data: bytes) -> M:
    try:
        return kind.FromString(data)
    except DecodeError:
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"malformed {kind.DESCRIPTOR.name}")
        raise  # abort raises; this line only satisfies the type checker


class ScannerService:
    """Scan, GetScan, GetSymbol, GetUniverseStats over the orchestrator.

    Scan and GetScan receive the request bytes: a repeated request is answered from a
    :class:`~gateway.caches.PageCache` of serialized answers keyed by those bytes, without parsing
    the request or building a message (only requests that were valid ever reach the cache).
    Register it with :func:`add_to_server`.
    """

    def __init__(self, orchestrator: Orchestrator, cache_bytes: int = 64 << 20) -> None:
        self.orchestrator = orchestrator
        self.scans = PageCache(lambda: orchestrator.generation, orchestrator.fresh_as_of, cache_bytes)
        self.pages = PageCache(lambda: orchestrator.generation, orchestrator.fresh_as_of, cache_bytes)

    async def Scan(
        self, data: bytes, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[bytes | scanner_pb2.ScanEvent]:
        scan_id = uuid.uuid4().hex
        hit = self.scans.get(data)
        if hit is not None:
            # Serialized messages concatenate as a merge: the event's own id, then the cached result.
            yield scanner_pb2.ScanEvent(scan_id=scan_id).SerializeToString() + hit
            return
        token = self.scans.token()
        request = await _parse(context, scanner_pb2.ScanRequest, data)
        problem = check_options(request.options)
        if problem:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, problem)
        try:
            async for item in self.orchestrator.scan(request.options, refresh=request.refresh, scan_id=scan_id):
                if isinstance(item, Progress):
                    yield scanner_pb2.ScanEvent(scan_id=scan_id, progress=progress_message(item))
                elif item.cached and not request.refresh:
                    body = scanner_pb2.ScanEvent(result=item).SerializeToString()
                    self.scans.put(data, body, token, latest_as_of="" if request.options.as_of else item.as_of)
                    yield scanner_pb2.ScanEvent(scan_id=scan_id).SerializeToString() + body
                else:
                    yield scanner_pb2.ScanEvent(scan_id=scan_id, result=item)
        except Exception as exc:
            await _abort(context, exc)

    async def GetScan(self, data: bytes, context: grpc.aio.ServicerContext) -> bytes:
        hit = self.pages.get(data)
        if hit is not None:
            return hit
        token = self.pages.token()
        request = await _parse(context, scanner_pb2.GetScanRequest, data)
        ref = request.WhichOneof("ref")
        problem = check_page(request.offset, request.limit, request.sort_by) or (
            None if ref and getattr(request, ref).strip() else "scan_id or fingerprint is required"
        )
        if problem:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, problem)
        result = await _guarded(context, lambda: self.orchestrator.get_scan(request))
        answer = result.SerializeToString()
        self.pages.put(data, answer, token)
        return answer

    async def GetSymbol(self, request: scanner_pb2.GetSymbolRequest, context: grpc.aio.ServicerContext) -> bytes:
        """The symbol page as the orchestrator keeps it serialized (see ``Orchestrator.symbol_page``)."""
        problem = check_ticker(request.symbol)
        if not problem and not 0 <= request.days <= MAX_DAYS:
            problem = f"days must be between 0 (the default, 90) and {MAX_DAYS}, got {request.days}"
        if problem:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, problem)
        page, _ = await _guarded(context, lambda: self.orchestrator.symbol_page(request.symbol, request.days))
        return page

    async def GetUniverseStats(
        self, request: scanner_pb2.GetUniverseStatsRequest, context: grpc.aio.ServicerContext
    ) -> scanner_pb2.UniverseStats:
        return await _guarded(context, self.orchestrator.universe_stats)


def add_to_server(service: ScannerService, server: grpc.aio.Server) -> None:
    """Register ``service`` as technic.v1.Scanner: Scan and GetScan take and give bytes, GetSymbol gives them."""
    unary = grpc.unary_unary_rpc_method_handler
    handlers = {
        "Scan": grpc.unary_stream_rpc_method_handler(service.Scan, response_serializer=_wire),
        "GetScan": unary(service.GetScan, response_serializer=_wire),
        "GetSymbol": unary(
            service.GetSymbol, request_deserializer=scanner_pb2.GetSymbolRequest.FromString, response_serializer=_wire
        ),
        "GetUniverseStats": unary(
            service.GetUniverseStats,
            request_deserializer=scanner_pb2.GetUniverseStatsRequest.FromString,
            response_serializer=scanner_pb2.UniverseStats.SerializeToString,
        ),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
