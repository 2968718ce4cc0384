"""The app's routes: scan, symbol page, universe stats; health and version."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
from collections.abc import Callable
from typing import Annotated, Any

import orjson
import structlog
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response

from gateway import copilot
from gateway.caches import DEFAULT_DAYS
from gateway.http_api.answers import Body, RenderedAnswers, etag_of, request_key, symbol_answer_key
from gateway.http_api.auth import Access, Caller, require_key_for
from gateway.http_api.fastpath import GET_SHAPE, POST_SHAPE, RAW_KEY
from gateway.http_api.models import CopilotBody, OrjsonResponse, ScanBody, ScanOrchestrator, ScanQuery, Ticker
from gateway.orchestrator import InvalidRequest, NotFound, Unavailable
from gateway.settings import GatewaySettings
from gateway.validation import MAX_DAYS, MAX_LIMIT, normalize_options
from gateway.views import row_to_result, scan_response, symbol_response, universe_response
from technic.v1 import scan_pb2, scanner_pb2

log = structlog.get_logger(__name__)
DISCONNECT_POLL_SECONDS = 0.5
MAX_COPILOT_TICKERS = 4
NOT_MODIFIED: dict[int | str, dict[str, Any]] = {304: {"description": "unchanged since the ETag in If-None-Match"}}


def version() -> str:
    """The installed package's version."""
    try:
        return importlib.metadata.version("technic")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"


async def run_scan(
    orchestrator: ScanOrchestrator, options: scan_pb2.ScanOptions, refresh: bool, request: Request
) -> scan_pb2.ScanResult | None:
    """The scan's result, or None when the client went away.

    The scan runs as a task of its own, cancelled whenever this request stops waiting for it: the
    client went away, the request failed or was cancelled. A scan cancelled from inside (a backend
    call that ended as cancelled) is Unavailable, a JSON 503, never an unhandled cancellation.
    """

    async def finish() -> scan_pb2.ScanResult | None:
        result = None
        async for item in orchestrator.scan(options, refresh=refresh):
            if isinstance(item, scan_pb2.ScanResult):
                result = item
        return result

    task = asyncio.create_task(finish())
    try:
        # The app may give up (it waits up to 10 minutes): a client that went away cancels the scan.
        while not (await asyncio.wait({task}, timeout=DISCONNECT_POLL_SECONDS))[0]:
            if await request.is_disconnected():
                log.info("client disconnected, scan cancelled", path=request.url.path)
                return None
        if task.cancelled():
            raise Unavailable("the scan was cancelled before it finished")
        result = task.result()
    finally:
        if not task.done():
            task.cancel()
            await asyncio.wait({task})
    if result is None:
        raise Unavailable("the scan ended without a result")
    return result


def app_router(
    orchestrator: ScanOrchestrator,
    access: Access,
    settings: GatewaySettings,
    checked: Callable[[ScanBody], scan_pb2.ScanOptions],
    answers: RenderedAnswers,
) -> APIRouter:
    """The app's ``/v1`` routes: keyed clients, and anonymous ones when the operator allows it."""
    router = APIRouter()
    anyone = Depends(access.caller)

    async def scanned(body: ScanBody, caller: Caller, request: Request) -> scan_pb2.ScanResult | None:
        if body.refresh:
            require_key_for(caller, "refresh")
        result = await run_scan(orchestrator, checked(body), body.refresh, request)
        if result is not None and not result.cached:
            caller.charge_scan()
        return result

    def kept(request: Request, key: bytes, hit: tuple[str, str, Body]) -> Response:
        """A kept answer, its raw request remembered so that the front answers the next one."""
        answers.alias(request.scope.get(RAW_KEY), key)
        etag, latest_as_of, plain = hit
        return answers.respond(request, etag, plain, key, latest_as_of)

    async def scan_answer(body: ScanBody, request: Request, caller: Caller, shape: bytes) -> Response:
        if body.refresh:
            require_key_for(caller, "refresh")
        options = checked(body)
        key = None if body.refresh else request_key(normalize_options(options, settings), shape)
        hit = answers.get(key) if key is not None else None
        if key is not None and hit is not None:
            return kept(request, key, hit)
        token = answers.token()
        result = await run_scan(orchestrator, options, body.refresh, request)
        if result is None:
            return Response(status_code=499)
        if not result.cached:
            caller.charge_scan()
        elif key is not None:
            # The kept answer is current again once the scan confirmed the latest session: no rendering.
            hit = answers.get(key)
            if hit is not None:
                return kept(request, key, hit)
        content = scan_response(result)
        if shape == GET_SHAPE:
            content["data"] = content["results"]
        plain = orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)
        etag = etag_of(plain)
        latest_as_of = "" if options.as_of else result.as_of
        if key is not None and result.cached:
            answers.put(key, etag, plain, token, latest_as_of)
            return kept(request, key, (etag, latest_as_of, plain))
        return answers.respond(request, etag, plain)

    @router.post(
        "/v1/scan", summary="Run a scan (or reuse today's) and return the finished result", responses=NOT_MODIFIED
    )
    async def scan(body: ScanBody, request: Request, caller: Caller = anyone) -> Response:
        return await scan_answer(body, request, caller, POST_SHAPE)

    @router.get(
        "/v1/scan", summary="The latest scan for these filters, as the app's list calls read it", responses=NOT_MODIFIED
    )
    async def scan_get(query: Annotated[ScanQuery, Query()], request: Request, caller: Caller = anyone) -> Response:
        return await scan_answer(query.to_body(), request, caller, GET_SHAPE)

    @router.get("/v1/symbol/{ticker}", summary="One symbol: history and latest scores", responses=NOT_MODIFIED)
    async def symbol(
        ticker: Annotated[Ticker, Path()],
        request: Request,
        caller: Caller = anyone,
        days: Annotated[int, Query(ge=1, le=MAX_DAYS)] = DEFAULT_DAYS,
    ) -> Response:
        key = symbol_answer_key(ticker, days)
        hit = answers.get(key)
        if hit is None:
            token = answers.token()
            page, as_of = await orchestrator.symbol_page(ticker, days)
            # The kept body is current again once the page's session was confirmed: no rendering.
            hit = answers.get(key)
            if hit is None:
                plain = orjson.dumps(
                    symbol_response(scanner_pb2.SymbolDetail.FromString(page)), option=orjson.OPT_NON_STR_KEYS
                )
                hit = (etag_of(plain), as_of, plain)
                answers.put(key, hit[0], plain, token, as_of)
        return kept(request, key, hit)

    @router.get("/v1/symbol", summary="One symbol's row of the latest scan, as a list of results")
    async def symbol_results(symbol: Annotated[Ticker, Query()], caller: Caller = anyone) -> Response:
        detail = await orchestrator.symbol(symbol, 1)
        rows = [row_to_result(detail.latest)] if detail.in_latest_scan else []
        return OrjsonResponse({"symbol": detail.symbol, "results": rows})

    @router.get("/v1/universe_stats", summary="Sectors, industries and counts")
    async def universe_stats(caller: Caller = anyone) -> Response:
        return OrjsonResponse(universe_response(await orchestrator.universe_stats()))

    @router.post("/v1/copilot", summary="Ask about today's scan; answers from the scan's own numbers")
    async def copilot_answer(body: CopilotBody, request: Request, caller: Caller = anyone) -> Response:
        scan_body = ScanBody(options_mode=body.options_mode or "stock_only", limit=MAX_LIMIT)
        result = await scanned(scan_body, caller, request)
        if result is None:
            return Response(status_code=499)
        tickers = copilot.mentioned_tickers(body.question, body.symbol)[:MAX_COPILOT_TICKERS]
        rows = {r.symbol: r for r in result.rows if r.symbol in tickers}
        for ticker in (t for t in tickers if t not in rows):
            with contextlib.suppress(NotFound, InvalidRequest):
                detail = await orchestrator.symbol(ticker, 1)
                if detail.in_latest_scan:
                    rows[ticker] = detail.latest
        grounded = copilot.answer(body.question, result, rows, tickers)
        phrased = await copilot.phrase(
            body.question,
            grounded,
            settings.copilot_llm_url,
            settings.copilot_llm_model,
            settings.copilot_llm_api_key,
            settings.copilot_llm_timeout_seconds,
        )
        meta = grounded.meta + (f" Phrased by {settings.copilot_llm_model}." if phrased else "")
        return OrjsonResponse(
            {
                "role": "assistant",
                "body": phrased or grounded.body,
                "message": phrased or grounded.body,
                "meta": meta,
                "grounded": grounded.body,
            }
        )

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
