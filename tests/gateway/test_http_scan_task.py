"""The scan behind an HTTP scan request: a failure is a JSON error naming it, never a bare 500, and
the scan is cancelled whenever the request ends without waiting for it (client gone, request failed)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from fastapi.testclient import TestClient

from gateway.errors import Unavailable
from gateway.http_api import create_app, routes
from gateway.orchestrator import Progress
from gateway.settings import GatewaySettings
from technic.v1 import scan_pb2
from tests.gateway.doubles import OrchestratorDouble

KEY = "test-key-1"
AUTH = {"X-API-Key": KEY}


class CancelledInside(OrchestratorDouble):
    """A scan whose backend call ends as cancelled (as a gRPC call cancelled under it does)."""

    async def scan(
        self, options: scan_pb2.ScanOptions, *, refresh: bool = False, scan_id: str = ""
    ) -> AsyncIterator[Progress | scan_pb2.ScanResult]:
        self.scans.append(options)
        yield Progress("universe", 1, 1, 0.01)
        raise asyncio.CancelledError


class Endless(OrchestratorDouble):
    """A scan that never finishes and records being cancelled."""

    def __init__(self) -> None:
        super().__init__()
        self.started = asyncio.Event()
        self.cancelled = False

    async def scan(
        self, options: scan_pb2.ScanOptions, *, refresh: bool = False, scan_id: str = ""
    ) -> AsyncIterator[Progress | scan_pb2.ScanResult]:
        self.scans.append(options)
        self.started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        yield self.result


class FakeRequest:
    """What run_scan reads of a request: its path and whether the client is still there."""

    def __init__(self, disconnected: bool = False, fails: Exception | None = None) -> None:
        self.disconnected, self.fails = disconnected, fails
        self.url = type("Url", (), {"path": "/v1/scan"})()

    async def is_disconnected(self) -> bool:
        if self.fails is not None:
            raise self.fails
        return self.disconnected


def client_of(double: OrchestratorDouble) -> TestClient:
    return TestClient(create_app(double, GatewaySettings(api_keys=KEY)), raise_server_exceptions=False)


@pytest.mark.parametrize(
    ("double", "detail"),
    [
        (CancelledInside(), "the scan was cancelled before it finished"),
        (OrchestratorDouble(fail=Unavailable("rank failed: UNAVAILABLE")), "rank failed: UNAVAILABLE"),
    ],
)
@pytest.mark.parametrize(("method", "path"), [("POST", "/v1/scan"), ("GET", "/v1/scan")])
def test_a_scan_that_cannot_finish_is_a_json_503(
    double: OrchestratorDouble, detail: str, method: str, path: str
) -> None:
    with client_of(double) as client:
        response = client.request(method, path, headers=AUTH, json={} if method == "POST" else None)
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"error": "backend_unavailable", "detail": detail}


def test_the_copilot_reports_a_scan_that_cannot_finish_as_503() -> None:
    with client_of(CancelledInside()) as client:
        response = client.post("/v1/copilot", headers=AUTH, json={"question": "top ideas today"})
    assert response.status_code == 503 and response.json()["error"] == "backend_unavailable"


@pytest.fixture
def fast_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(routes, "DISCONNECT_POLL_SECONDS", 0.001)


async def test_a_client_that_goes_away_cancels_the_scan(fast_polls: None) -> None:
    double = Endless()
    answer = await routes.run_scan(double, scan_pb2.ScanOptions(), False, FakeRequest(disconnected=True))  # type: ignore[arg-type]
    assert answer is None and double.cancelled


async def test_a_request_that_fails_cancels_the_scan(fast_polls: None) -> None:
    double = Endless()
    failing = FakeRequest(fails=RuntimeError("receive channel closed"))
    with pytest.raises(RuntimeError, match="receive channel closed"):
        await routes.run_scan(double, scan_pb2.ScanOptions(), False, failing)  # type: ignore[arg-type]
    assert double.cancelled


async def test_a_request_cancelled_while_waiting_cancels_the_scan(fast_polls: None) -> None:
    double = Endless()
    waiting = asyncio.create_task(routes.run_scan(double, scan_pb2.ScanOptions(), False, FakeRequest()))  # type: ignore[arg-type]
    await double.started.wait()
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert double.cancelled
