"""The HTTP API: the Flutter app's endpoints (HTTP-CONTRACT.md) and the asynchronous scan form.

Synchronous scan ``POST /v1/scan``; symbol page; universe stats; health and version (no key);
``POST /v1/scans`` -> id, status, server-sent progress events, paginated and sorted results, CSV
export. Auth: the ``X-API-Key`` header, compared in constant time with every configured key; then a
request-rate limit per key (token bucket; 429 with ``Retry-After``).
Errors are JSON ``{"error": ..., "detail": ...}``: 401 without a key, 413 above the body cap, 422
naming the field and the reason, 404 / 503 from the backends, and 500 with a generic message for
anything unexpected (logged here, never shown).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib.metadata
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Protocol

import orjson
import structlog
from fastapi import Depends, FastAPI, Header, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.auth import matching_key
from gateway.orchestrator import InvalidRequest, NotFound, Progress, ScanError, Unavailable
from gateway.ratelimit import RateLimiter
from gateway.settings import GatewaySettings
from gateway.validation import (
    MAX_DAYS,
    MAX_LIMIT,
    MAX_LOOKBACK,
    MAX_SECTORS,
    MAX_SYMBOLS,
    MAX_UNIVERSE,
    MIN_LOOKBACK,
    OPTIONS_MODES,
    SIGNALS,
    SORT_COLUMNS,
    TICKER_RE,
    TRADE_STYLES,
    check_options,
)
from gateway.views import (
    row_to_result,
    scan_response,
    scan_summary,
    summary_line,
    symbol_response,
    to_csv,
    universe_response,
)
from technic.v1 import scan_pb2, scanner_pb2

log = structlog.get_logger(__name__)
DISCONNECT_POLL_SECONDS = 0.5
# Offsets travel as int32 in the protos: a larger one is refused as invalid, not overflowed into a 500.
MAX_OFFSET = 2**31 - 1

Ticker = Annotated[str, StringConstraints(strip_whitespace=True, pattern=TICKER_RE.pattern)]
Sector = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
TradeStyleName = Literal["Day", "Short-term swing", "Medium-term swing", "Position"]
SignalName = Literal["Strong Long", "Long", "Neutral", "Avoid", "Short", "Strong Short"]
assert set(TradeStyleName.__args__) == set(TRADE_STYLES) and set(SignalName.__args__) == SIGNALS  # type: ignore[attr-defined]


class ScanOrchestrator(Protocol):
    """What the HTTP API needs from the orchestrator (tests substitute a double)."""

    def scan(self, options: scan_pb2.ScanOptions, *, refresh: bool = False,
             scan_id: str = "") -> AsyncIterator[Progress | scan_pb2.ScanResult]: ...
    async def get_scan(self, request: scanner_pb2.GetScanRequest) -> scan_pb2.ScanResult: ...
    async def symbol(self, symbol: str, days: int = 90) -> scanner_pb2.SymbolDetail: ...
    async def universe_stats(self) -> scanner_pb2.UniverseStats: ...
    async def health(self) -> dict[str, dict[str, str]]: ...
    @property
    def versions(self) -> tuple[str, dict[str, str]]: ...


class OrjsonResponse(JSONResponse):
    """JSON through orjson (NaN becomes null, which the app reads as 'not computed')."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)


class ScanBody(BaseModel):
    """POST /v1/scan and /v1/scans. The first seven fields are the app's; the rest are extras."""

    model_config = ConfigDict(extra="ignore")

    universe: list[Ticker] | None = Field(None, max_length=MAX_UNIVERSE, description="scan only these tickers")
    max_symbols: int | None = Field(None, ge=1, le=MAX_SYMBOLS, description="cap after the prefilter (6000)")
    trade_style: TradeStyleName = "Short-term swing"
    min_tech_rating: float = Field(0.0, ge=0, le=100, allow_inf_nan=False)
    sectors: list[Sector] | None = Field(None, max_length=MAX_SECTORS)
    lookback_days: int | None = Field(None, ge=MIN_LOOKBACK, le=MAX_LOOKBACK)
    options_mode: Literal["stock_only", "stock_plus_options"] = "stock_only"
    signals: list[SignalName] | None = Field(None, max_length=len(SIGNALS))
    min_price: float | None = Field(None, ge=0, allow_inf_nan=False)
    min_dollar_volume: float | None = Field(None, ge=0, allow_inf_nan=False)
    include_etfs: bool = False
    as_of: dt.date | None = None
    limit: int = Field(100, ge=1, le=MAX_LIMIT, description="rows in the response")
    offset: int = Field(0, ge=0, le=MAX_OFFSET)
    sort_by: str | None = Field(None, description="a ScanRow column or a feature name")
    ascending: bool = False
    refresh: bool = Field(False, description="ignore a cached ranking")

    @field_validator("sort_by")
    @classmethod
    def _known_column(cls, value: str | None) -> str | None:
        if value is not None and value not in SORT_COLUMNS:
            raise ValueError("unknown sort column; sort by a ScanRow column or a feature name")
        return value

    def to_options(self) -> scan_pb2.ScanOptions:
        options = scan_pb2.ScanOptions(
            universe=self.universe or [], max_symbols=self.max_symbols or 0,
            trade_style=TRADE_STYLES[self.trade_style], min_tech_rating=self.min_tech_rating,
            sectors=self.sectors or [], lookback_days=self.lookback_days or 0,
            options_mode=OPTIONS_MODES[self.options_mode], signals=self.signals or [],
            include_etfs=self.include_etfs, as_of=self.as_of.isoformat() if self.as_of else "",
            limit=self.limit, offset=self.offset, sort_by=self.sort_by or "", ascending=self.ascending,
        )
        if self.min_price is not None:
            options.min_price = self.min_price
        if self.min_dollar_volume is not None:
            options.min_dollar_volume = self.min_dollar_volume
        return options


class ErrorBody(BaseModel):
    """Every error answer: a short machine name and a detail (text, or a list of field problems)."""

    error: str
    detail: Any = None


# Declared on every route, so the published schema describes every answer the API can give.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text} for status, text in (
        (401, "missing or invalid X-API-Key"), (404, "no such scan or symbol"),
        (409, "the scan is still running or failed"), (413, "request body too large"),
        (422, "invalid request: each field and the reason"), (429, "request rate limit; see Retry-After"),
        (500, "internal error"), (503, "a backend is unavailable"))
}


def _error(status: int, error: str, detail: Any) -> OrjsonResponse:
    return OrjsonResponse({"error": error, "detail": detail}, status_code=status)


class BodyLimit:
    """Refuse request bodies above ``max_bytes`` with a JSON 413, declared or streamed.

    The body (small by construction) is read here and replayed to the application.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE"):
            return await self.app(scope, receive, send)
        declared = Headers(scope=scope).get("content-length", "")
        too_large = _error(413, "request_too_large", f"request bodies are limited to {self.max_bytes} bytes")
        if declared.isdigit() and int(declared) > self.max_bytes:
            return await too_large(scope, receive, send)
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                return await too_large(scope, receive, send)
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)


ERROR_STATUS: dict[type[ScanError], tuple[int, str]] = {
    InvalidRequest: (422, "invalid_request"),
    NotFound: (404, "not_found"),
    Unavailable: (503, "backend_unavailable"),
}


@dataclass
class ScanJob:
    """One asynchronous scan: its progress events, then its result or error."""

    id: str
    created: float
    status: str = "running"
    events: list[dict[str, Any]] = field(default_factory=list)
    progress: dict[str, dict[str, Any]] = field(default_factory=dict)
    result: scan_pb2.ScanResult | None = None
    error: dict[str, Any] | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    def publish(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        self.changed.set()
        self.changed = asyncio.Event()

    def view(self) -> dict[str, Any]:
        body: dict[str, Any] = {"id": self.id, "status": self.status, "progress": self.progress,
                                "created_unix": self.created}
        if self.result is not None:
            body.update(summary=scan_summary(self.result), log=summary_line(self.result))
        if self.error is not None:
            body["error"] = self.error
        return body


class ScanJobs:
    """The asynchronous scans of this process (the oldest finished ones are forgotten)."""

    def __init__(self, orchestrator: ScanOrchestrator, keep: int) -> None:
        self.orchestrator = orchestrator
        self.keep = keep
        self.jobs: OrderedDict[str, ScanJob] = OrderedDict()

    def start(self, options: scan_pb2.ScanOptions, refresh: bool) -> ScanJob:
        job = ScanJob(id=uuid.uuid4().hex, created=time.time())
        self.jobs[job.id] = job
        job.task = asyncio.create_task(self._run(job, options, refresh))
        finished = [k for k, j in self.jobs.items() if j.status != "running"]
        for key in finished[: max(0, len(self.jobs) - self.keep)]:
            del self.jobs[key]
        return job

    async def _run(self, job: ScanJob, options: scan_pb2.ScanOptions, refresh: bool) -> None:
        try:
            async for item in self.orchestrator.scan(options, refresh=refresh, scan_id=job.id):
                if isinstance(item, Progress):
                    event = {"stage": item.stage, "done": item.done, "total": item.total,
                             "elapsed": round(item.elapsed, 4), "message": item.message}
                    job.progress[item.stage] = event
                    job.publish({"event": "progress", "data": event})
                else:
                    job.result, job.status = item, "done"
                    job.publish({"event": "result", "data": job.view()})
        except ScanError as exc:
            job.status, job.error = "failed", {"error": ERROR_STATUS[type(exc)][1], "detail": str(exc)}
            job.publish({"event": "error", "data": job.error})
        except Exception as exc:
            log.exception("asynchronous scan failed", scan_id=job.id, error=repr(exc))
            job.status, job.error = "failed", {"error": "internal_error", "detail": "internal error"}
            job.publish({"event": "error", "data": job.error})

    def get(self, job_id: str) -> ScanJob:
        job = self.jobs.get(job_id)
        if job is None:
            raise HTTPException(404, f"no scan {job_id[:64]!r}")
        return job

    async def stop(self) -> None:
        for job in self.jobs.values():
            if job.task is not None and not job.task.done():
                job.task.cancel()


def create_app(orchestrator: ScanOrchestrator, settings: GatewaySettings) -> FastAPI:
    """The FastAPI application over ``orchestrator``."""
    keys = [k.encode() for k in settings.api_key_list]
    jobs = ScanJobs(orchestrator, settings.gateway_scan_jobs)
    app = FastAPI(title="Technic scanner API", version=_version(),
                  description="Full-universe US equity scans: ranked setups with trade plans.",
                  default_response_class=OrjsonResponse, responses=ERROR_RESPONSES)
    app.state.jobs = jobs
    app.add_middleware(BodyLimit, max_bytes=settings.gateway_max_body_bytes)

    limiter = RateLimiter(settings.gateway_rate_limit, settings.gateway_rate_burst)

    async def require_key(x_api_key: Annotated[str | None, Header(alias="X-API-Key")] = None) -> None:
        matched = matching_key(x_api_key, keys)
        if matched is None:
            raise HTTPException(401, "missing or invalid X-API-Key header")
        wait = limiter.acquire(matched)
        if wait:
            raise HTTPException(429, f"request rate limit of {settings.gateway_rate_limit:g}/s per API key "
                                     f"exceeded; retry in {wait} s", headers={"Retry-After": str(wait)})

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, exc: HTTPException) -> Response:
        names = {401: "unauthorized", 404: "not_found", 405: "method_not_allowed", 409: "conflict",
                 413: "request_too_large", 429: "rate_limited"}
        response = _error(exc.status_code, names.get(exc.status_code, "http_error"), exc.detail)
        response.headers.update(exc.headers or {})
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> Response:
        problems = [{"field": ".".join(str(p) for p in e.get("loc", ())), "reason": e.get("msg", "invalid")}
                    for e in exc.errors()]
        return _error(422, "invalid_request", problems)

    @app.exception_handler(ScanError)
    async def scan_error(_request: Request, exc: ScanError) -> Response:
        status, name = ERROR_STATUS.get(type(exc), (500, "internal_error"))
        return _error(status, name, str(exc))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.error("unhandled error in HTTP request", path=request.url.path, error=repr(exc), exc_info=exc)
        return _error(500, "internal_error", "internal error; the gateway log has the details")

    authed = [Depends(require_key)]

    def checked(body: ScanBody) -> scan_pb2.ScanOptions:
        options = body.to_options()
        problem = check_options(options)
        if problem:
            raise InvalidRequest(problem)
        return options

    @app.post("/v1/scan", dependencies=authed, summary="Run a scan and return the finished result")
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

    @app.get("/v1/symbol/{ticker}", dependencies=authed, summary="One symbol: history and latest scores")
    async def symbol(ticker: Annotated[Ticker, Path()],
                     days: Annotated[int, Query(ge=1, le=MAX_DAYS)] = 90) -> Response:
        return OrjsonResponse(symbol_response(await orchestrator.symbol(ticker, days)))

    @app.get("/v1/universe_stats", dependencies=authed, summary="Sectors, industries and counts")
    async def universe_stats() -> Response:
        return OrjsonResponse(universe_response(await orchestrator.universe_stats()))

    @app.post("/v1/scans", dependencies=authed, status_code=202, summary="Start a scan; returns its id")
    async def start_scan(body: ScanBody) -> Response:
        job = jobs.start(checked(body), body.refresh)
        return OrjsonResponse({"id": job.id, "status": job.status,
                               "links": {"self": f"/v1/scans/{job.id}", "events": f"/v1/scans/{job.id}/events",
                                         "results": f"/v1/scans/{job.id}/results",
                                         "csv": f"/v1/scans/{job.id}/export.csv"}}, status_code=202)

    @app.get("/v1/scans/{scan_id}", dependencies=authed, summary="Status, progress and summary of a scan")
    async def scan_status(scan_id: str) -> Response:
        return OrjsonResponse(jobs.get(scan_id).view())

    @app.get("/v1/scans/{scan_id}/events", dependencies=authed, summary="Progress as server-sent events")
    async def scan_events(scan_id: str, request: Request) -> StreamingResponse:
        job = jobs.get(scan_id)

        async def stream() -> AsyncIterator[bytes]:
            sent = 0
            while True:
                waiter = job.changed
                while sent < len(job.events):
                    event = job.events[sent]
                    sent += 1
                    yield b"event: " + event["event"].encode() + b"\ndata: " + orjson.dumps(event["data"]) + b"\n\n"
                if job.status != "running" or await request.is_disconnected():
                    return
                try:
                    await asyncio.wait_for(waiter.wait(), timeout=15.0)
                except TimeoutError:
                    yield b": keep-alive\n\n"

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    async def finished(scan_id: str) -> ScanJob:
        job = jobs.get(scan_id)
        if job.status == "running":
            raise HTTPException(409, "the scan is still running")
        if job.result is None:
            raise HTTPException(409, f"the scan failed: {job.error}")
        return job

    async def page(job: ScanJob, offset: int, limit: int, sort: str, ascending: bool) -> scan_pb2.ScanResult:
        assert job.result is not None
        return await orchestrator.get_scan(scanner_pb2.GetScanRequest(
            fingerprint=job.result.fingerprint, offset=offset, limit=limit, sort_by=sort, ascending=ascending))

    @app.get("/v1/scans/{scan_id}/results", dependencies=authed, summary="A page of a finished scan")
    async def scan_results(scan_id: str, offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
                           limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
                           sort: Annotated[str, Query(description="ScanRow column or feature")] = "composite_score",
                           ascending: bool = False) -> Response:
        if sort not in SORT_COLUMNS:
            return _error(422, "invalid_request", [{"field": "query.sort", "reason": "unknown sort column"}])
        result = await page(await finished(scan_id), offset, limit, sort, ascending)
        return OrjsonResponse({"id": scan_id, "offset": offset, "limit": limit, "sort": sort,
                               "ascending": ascending, "total_rows": result.total_rows,
                               "results": [row_to_result(r) for r in result.rows]})

    @app.get("/v1/scans/{scan_id}/export.csv", dependencies=authed, summary="Every row of a scan as CSV")
    async def scan_csv(scan_id: str) -> Response:
        result = await page(await finished(scan_id), 0, MAX_LIMIT, "composite_score", False)
        return Response(to_csv(sorted(result.rows, key=lambda r: r.rank)), media_type="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="technic-{scan_id}.csv"'})

    @app.get("/health", summary="Liveness and each backend's state")
    async def health() -> Response:
        backends = await orchestrator.health()
        serving = all(b.get("status") == "SERVING" for b in backends.values())
        redis_ok = all(b.get("redis") in ("SERVING", "UNKNOWN") for b in backends.values())
        status = "ok" if serving and redis_ok else "degraded"
        return OrjsonResponse({"status": status, "service": "gateway", "backends": backends})

    @app.get("/version", summary="Build, feature and model versions")
    async def version() -> Response:
        feature_version, model_versions = orchestrator.versions
        return OrjsonResponse({"name": "technic", "version": _version(), "feature_version": feature_version,
                               "model_versions": model_versions})

    return app


def _version() -> str:
    try:
        return importlib.metadata.version("technic")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"
