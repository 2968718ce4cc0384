"""The public Scanner gRPC service: validates requests and translates them to orchestrator calls."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import NoReturn, TypeVar

import grpc
import structlog

from gateway.orchestrator import InvalidRequest, NotFound, Orchestrator, Progress, ScanError, Unavailable
from gateway.validation import MAX_DAYS, check_options, check_page, check_ticker
from technic.v1 import scan_pb2, scanner_pb2, scanner_pb2_grpc

log = structlog.get_logger(__name__)
T = TypeVar("T")

STATUS_OF: dict[type[ScanError], grpc.StatusCode] = {
    InvalidRequest: grpc.StatusCode.INVALID_ARGUMENT,
    NotFound: grpc.StatusCode.NOT_FOUND,
    Unavailable: grpc.StatusCode.UNAVAILABLE,
}


def progress_message(item: Progress) -> scanner_pb2.Progress:
    return scanner_pb2.Progress(stage=item.stage, done=item.done, total=item.total,
                                elapsed_seconds=item.elapsed, message=item.message)


async def _abort(context: grpc.aio.ServicerContext, exc: Exception) -> NoReturn:
    """Abort with the status a domain error maps to; anything else is logged and hidden."""
    if isinstance(exc, ScanError):
        await context.abort(STATUS_OF.get(type(exc), grpc.StatusCode.INTERNAL), str(exc))
    log.exception("scanner request failed", error=repr(exc))
    await context.abort(grpc.StatusCode.INTERNAL, "internal error; the gateway log has the details")


async def _guarded(context: grpc.aio.ServicerContext, call: Callable[[], Awaitable[T]]) -> T:
    try:
        return await call()
    except Exception as exc:  # every failure becomes a status, never a traceback
        await _abort(context, exc)


class ScannerService(scanner_pb2_grpc.ScannerServicer):
    """Scan, GetScan, GetSymbol, GetUniverseStats over the orchestrator."""

    def __init__(self, orchestrator: Orchestrator) -> None:
        self.orchestrator = orchestrator

    async def Scan(self, request: scanner_pb2.ScanRequest,
                   context: grpc.aio.ServicerContext) -> AsyncIterator[scanner_pb2.ScanEvent]:
        problem = check_options(request.options)
        if problem:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, problem)
        scan_id = uuid.uuid4().hex
        try:
            async for item in self.orchestrator.scan(request.options, refresh=request.refresh, scan_id=scan_id):
                if isinstance(item, Progress):
                    yield scanner_pb2.ScanEvent(scan_id=scan_id, progress=progress_message(item))
                else:
                    yield scanner_pb2.ScanEvent(scan_id=scan_id, result=item)
        except Exception as exc:
            await _abort(context, exc)

    async def GetScan(self, request: scanner_pb2.GetScanRequest,
                      context: grpc.aio.ServicerContext) -> scan_pb2.ScanResult:
        ref = request.WhichOneof("ref")
        problem = (check_page(request.offset, request.limit, request.sort_by)
                   or (None if ref and getattr(request, ref).strip() else "scan_id or fingerprint is required"))
        if problem:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, problem)
        return await _guarded(context, lambda: self.orchestrator.get_scan(request))

    async def GetSymbol(self, request: scanner_pb2.GetSymbolRequest,
                        context: grpc.aio.ServicerContext) -> scanner_pb2.SymbolDetail:
        problem = check_ticker(request.symbol)
        if not problem and not 0 <= request.days <= MAX_DAYS:
            problem = f"days must be between 1 and {MAX_DAYS}, got {request.days}"
        if problem:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, problem)
        return await _guarded(context, lambda: self.orchestrator.symbol(request.symbol, request.days))

    async def GetUniverseStats(self, request: scanner_pb2.GetUniverseStatsRequest,
                               context: grpc.aio.ServicerContext) -> scanner_pb2.UniverseStats:
        return await _guarded(context, self.orchestrator.universe_stats)
