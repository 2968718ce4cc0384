"""The asynchronous scan form: start, status, server-sent progress, pages and CSV of a finished scan."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Annotated

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse
from starlette.exceptions import HTTPException

from gateway.http_api.jobs import ScanJob, ScanJobs
from gateway.http_api.models import MAX_OFFSET, OrjsonResponse, ScanBody, ScanOrchestrator, error_response
from gateway.validation import MAX_LIMIT, SORT_COLUMNS
from gateway.views import row_to_result, to_csv
from technic.v1 import scan_pb2, scanner_pb2

KEEP_ALIVE_SECONDS = 15.0


def scans_router(
    orchestrator: ScanOrchestrator,
    jobs: ScanJobs,
    dependencies: list,
    checked: Callable[[ScanBody], scan_pb2.ScanOptions],
) -> APIRouter:
    """Routes under ``/v1/scans``; ``dependencies`` decide who may call them."""
    router = APIRouter(dependencies=dependencies)

    @router.post("/v1/scans", status_code=202, summary="Start a scan; returns its id")
    async def start_scan(body: ScanBody) -> Response:
        job = jobs.start(checked(body), body.refresh)
        return OrjsonResponse(
            {
                "id": job.id,
                "status": job.status,
                "links": {
                    "self": f"/v1/scans/{job.id}",
                    "events": f"/v1/scans/{job.id}/events",
                    "results": f"/v1/scans/{job.id}/results",
                    "csv": f"/v1/scans/{job.id}/export.csv",
                },
            },
            status_code=202,
        )

    @router.get("/v1/scans/{scan_id}", summary="Status, progress and summary of a scan")
    async def scan_status(scan_id: str) -> Response:
        return OrjsonResponse(jobs.get(scan_id).view())

    @router.get("/v1/scans/{scan_id}/events", summary="Progress as server-sent events")
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
                    await asyncio.wait_for(waiter.wait(), timeout=KEEP_ALIVE_SECONDS)
                except TimeoutError:
                    yield b": keep-alive\n\n"

        return StreamingResponse(
            stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        )

    def finished(scan_id: str) -> ScanJob:
        job = jobs.get(scan_id)
        if job.status == "running":
            raise HTTPException(409, "the scan is still running")
        if job.result is None:
            raise HTTPException(409, f"the scan failed: {job.error}")
        return job

    async def page(job: ScanJob, offset: int, limit: int, sort: str, ascending: bool) -> scan_pb2.ScanResult:
        assert job.result is not None
        return await orchestrator.get_scan(
            scanner_pb2.GetScanRequest(
                fingerprint=job.result.fingerprint, offset=offset, limit=limit, sort_by=sort, ascending=ascending
            )
        )

    @router.get("/v1/scans/{scan_id}/results", summary="A page of a finished scan")
    async def scan_results(
        scan_id: str,
        offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
        sort: Annotated[str, Query(description="ScanRow column or feature")] = "composite_score",
        ascending: bool = False,
    ) -> Response:
        if sort not in SORT_COLUMNS:
            return error_response(422, "invalid_request", [{"field": "query.sort", "reason": "unknown sort column"}])
        result = await page(finished(scan_id), offset, limit, sort, ascending)
        return OrjsonResponse(
            {
                "id": scan_id,
                "offset": offset,
                "limit": limit,
                "sort": sort,
                "ascending": ascending,
                "total_rows": result.total_rows,
                "results": [row_to_result(r) for r in result.rows],
            }
        )

    @router.get("/v1/scans/{scan_id}/export.csv", summary="Every row of a scan as CSV")
    async def scan_csv(scan_id: str) -> Response:
        result = await page(finished(scan_id), 0, MAX_LIMIT, "composite_score", False)
        return Response(
            to_csv(sorted(result.rows, key=lambda r: r.rank)),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="technic-{scan_id}.csv"'},
        )

    return router
