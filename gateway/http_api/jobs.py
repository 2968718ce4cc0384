"""Asynchronous scans of this process: ``POST /v1/scans`` starts one, the other routes read it."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import structlog
from starlette.exceptions import HTTPException

from gateway.http_api.models import ScanOrchestrator
from gateway.orchestrator import InvalidRequest, NotFound, Progress, ScanError, Unavailable
from gateway.views import scan_summary, summary_line
from technic.v1 import scan_pb2

log = structlog.get_logger(__name__)

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
        body: dict[str, Any] = {
            "id": self.id,
            "status": self.status,
            "progress": self.progress,
            "created_unix": self.created,
        }
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
                    event = {
                        "stage": item.stage,
                        "done": item.done,
                        "total": item.total,
                        "elapsed": round(item.elapsed, 4),
                        "message": item.message,
                    }
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
