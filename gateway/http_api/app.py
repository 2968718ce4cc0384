"""The FastAPI application: middleware, exception handlers and routers over one orchestrator.

Errors are JSON ``{"error": ..., "detail": ...}``: 401 without a key, 413 above the body cap, 422
naming the field and the reason, 404 / 503 from the backends, 429 with ``Retry-After`` above a
rate limit, and 500 with a generic message for anything unexpected (logged here, never shown).
"""

from __future__ import annotations

import structlog
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from gateway.http_api.answers import RenderedAnswers
from gateway.http_api.auth import Access
from gateway.http_api.fastpath import FastPath
from gateway.http_api.jobs import ERROR_STATUS, ScanJobs
from gateway.http_api.models import ERROR_RESPONSES, OrjsonResponse, ScanBody, ScanOrchestrator, error_response
from gateway.http_api.routes import app_router, service_router, version
from gateway.http_api.scans import scans_router
from gateway.orchestrator import InvalidRequest, ScanError
from gateway.settings import GatewaySettings
from gateway.validation import check_options
from technic.v1 import scan_pb2

log = structlog.get_logger(__name__)
ERROR_NAMES = {
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "request_too_large",
    429: "rate_limited",
}


def checked(body: ScanBody) -> scan_pb2.ScanOptions:
    """The scan options of ``body``; InvalidRequest (422) naming the first problem."""
    options = body.to_options()
    problem = check_options(options)
    if problem:
        raise InvalidRequest(problem)
    return options


def create_app(orchestrator: ScanOrchestrator, settings: GatewaySettings) -> FastAPI:
    """The FastAPI application over ``orchestrator``."""
    jobs = ScanJobs(orchestrator, settings.gateway_scan_jobs)
    app = FastAPI(
        title="Technic scanner API",
        version=version(),
        description="Full-universe US equity scans: ranked setups with trade plans.",
        default_response_class=OrjsonResponse,
        responses=ERROR_RESPONSES,
    )
    app.state.jobs = jobs
    access = Access(settings)
    app.state.access = access
    answers = RenderedAnswers(
        lambda: orchestrator.generation, orchestrator.fresh_as_of, settings.gateway_page_cache_mb << 20
    )
    app.state.answers = answers
    app.add_middleware(FastPath, answers=answers, access=access, max_bytes=settings.gateway_max_body_bytes)
    if settings.cors_origin_list:
        # Added last, so it runs first: preflights and error answers carry the CORS headers too.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origin_list,
            allow_methods=["GET", "POST"],
            allow_headers=["Accept", "Content-Type", "X-API-Key"],
            max_age=600,
        )

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, exc: HTTPException) -> Response:
        return error_response(
            exc.status_code, ERROR_NAMES.get(exc.status_code, "http_error"), exc.detail, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> Response:
        problems = [
            {"field": ".".join(str(p) for p in e.get("loc", ())), "reason": e.get("msg", "invalid")}
            for e in exc.errors()
        ]
        return error_response(422, "invalid_request", problems)

    @app.exception_handler(ScanError)
    async def scan_error(_request: Request, exc: ScanError) -> Response:
        status, name = ERROR_STATUS.get(type(exc), (500, "internal_error"))
        return error_response(status, name, str(exc))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.error("unhandled error in HTTP request", path=request.url.path, error=repr(exc), exc_info=exc)
        return error_response(500, "internal_error", "internal error; the gateway log has the details")

    app.include_router(app_router(orchestrator, access, settings, checked, answers))
    app.include_router(scans_router(orchestrator, jobs, [Depends(access.keyed)], checked))
    app.include_router(service_router(orchestrator))
    return app
