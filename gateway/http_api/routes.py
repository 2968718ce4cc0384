"""The app's routes: scan, symbol page, universe stats; health and version."""

from __future__ import annotations

import asyncio
import importlib.metadata
from collections.abc import Callable
from typing import Annotated

import structlog
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from gateway.http_api.models import OrjsonResponse, ScanBody, ScanOrchestrator, Ticker
from gateway.orchestrator import Unavailable
from gateway.validation import MAX_DAYS
from gateway.views import scan_response, symbol_response, universe_response
from technic.v1 import scan_pb2

log = structlog.get_logger(__name__)
DISCONNECT_POLL_SECONDS = 0.5


def version() -> str:
    """The installed package's version."""
    try:
        return importlib.metadata.version("technic")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"


def app_router(
    orchestrator: ScanOrchestrator, dependencies: list, checked: Callable[[ScanBody], scan_pb2.ScanOptions]
) -> APIRouter:
    """The app's ``/v1`` routes; ``dependencies`` decide who may call them."""
    router = APIRouter(dependencies=dependencies)

    @router.post("/v1/scan", summary="Run a scan and return the finished result")
    async def scan(body: ScanBody, request: Request) -> Response:
        options = checked(body)

        async def finish() -> scan_pb2.ScanResult | None:
            result = None
            async for item in orchestrator.scan(options, refresh=body.refresh):
                if isinstance(item, scan_pb2.ScanResult):
                    result = item
            return result

        task = asyncio.create_task(finish())
        # The app may give up (it waits up to 10 minutes): a client that went away cancels the scan.
        while not (await asyncio.wait({task}, timeout=DISCONNECT_POLL_SECONDS))[0]:
            if await request.is_disconnected():
                task.cancel()
                log.info("client disconnected, scan cancelled", path=request.url.path)
                return Response(status_code=499)
        result = task.result()
        if result is None:
            raise Unavailable("the scan ended without a result")
        return OrjsonResponse(scan_response(result))

    @router.get("/v1/symbol/{ticker}", summary="One symbol: history and latest scores")
    async def symbol(
        ticker: Annotated[Ticker, Path()], days: Annotated[int, Query(ge=1, le=MAX_DAYS)] = 90
    ) -> Response:
        return OrjsonResponse(symbol_response(await orchestrator.symbol(ticker, days)))

    @router.get("/v1/universe_stats", summary="Sectors, industries and counts")
    async def universe_stats() -> Response:
        return OrjsonResponse(universe_response(await orchestrator.universe_stats()))

    return router


def service_router(orchestrator: ScanOrchestrator) -> APIRouter:
    """Liveness and versions: open to everyone, never limited."""
    router = APIRouter()

    @router.get("/health", summary="Liveness and each backend's state")
    async def health() -> Response:
        backends = await orchestrator.health()
        serving = all(b.get("status") == "SERVING" for b in backends.values())
        redis_ok = all(b.get("redis") in ("SERVING", "UNKNOWN") for b in backends.values())
        status = "ok" if serving and redis_ok else "degraded"
        return OrjsonResponse({"status": status, "service": "gateway", "backends": backends})

    @router.get("/version", summary="Build, feature and model versions")
    async def version_info() -> Response:
        feature_version, model_versions = orchestrator.versions
        return OrjsonResponse(
            {
                "name": "technic",
                "version": version(),
                "feature_version": feature_version,
                "model_versions": model_versions,
            }
        )

    return router
