"""The HTTP API over an orchestrator double: contract keys, auth, validation, errors, async scans."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from gateway.http_api import create_app
from gateway.settings import GatewaySettings
from tests.gateway.doubles import OrchestratorDouble
from tests.gateway.test_views import APP_RESULT_KEYS

KEY = "test-key-1"
AUTH = {"X-API-Key": KEY}
TOP_KEYS = {"status", "disclaimer", "results", "movers", "ideas", "log", "universe_size", "symbols_scanned"}


def settings(**extra: object) -> GatewaySettings:
    return GatewaySettings(api_keys=f"other-key, {KEY}", **extra)  # type: ignore[arg-type]


@pytest.fixture
def double() -> OrchestratorDouble:
    return OrchestratorDouble()


@pytest.fixture
def client(double: OrchestratorDouble) -> Iterator[TestClient]:
    with TestClient(create_app(double, settings())) as test_client:
        yield test_client


def test_scan_returns_the_app_contract(client: TestClient, double: OrchestratorDouble) -> None:
    response = client.post(
        "/v1/scan",
        json={
            "trade_style": "Position",
            "sectors": ["Information Technology"],
            "max_symbols": 500,
            "min_tech_rating": 10,
        },
        headers=AUTH,
    )
    assert response.status_code == 200
    body = response.json()
    assert set(body) >= TOP_KEYS and body["status"] == "ok"
    assert [r["ticker"] for r in body["results"]] == ["AAA", "BBB", "CCC"]
    for row in body["results"]:
        assert set(row) >= APP_RESULT_KEYS
        assert isinstance(row["TechRating"], float) and isinstance(row["sparkline"], list)
    options = double.scans[-1]
    assert options.trade_style == 4 and options.max_symbols == 500
    assert list(options.sectors) == ["Information Technology"]


def test_defaults_are_accepted_from_an_empty_body(client: TestClient) -> None:
    assert client.post("/v1/scan", json={}, headers=AUTH).status_code == 200


@pytest.mark.parametrize("headers", [{}, {"X-API-Key": "wrong"}, {"X-API-Key": ""}])
def test_missing_or_wrong_key_is_401_json(client: TestClient, headers: dict[str, str]) -> None:
    for method, path in (
        ("post", "/v1/scan"),
        ("get", "/v1/symbol/AAA"),
        ("get", "/v1/universe_stats"),
        ("post", "/v1/scans"),
        ("get", "/v1/scans/x"),
    ):
        response = client.request(method, path, json={}, headers=headers)
        assert response.status_code == 401, path
        assert response.json()["error"] == "unauthorized"


def test_health_and_version_need_no_key(client: TestClient) -> None:
    health = client.get("/health").json()
    assert health["status"] == "degraded" and health["backends"]["fetcher"]["redis"] == "NOT_SERVING"
    assert client.get("/version").json()["model_versions"] == {"alpha_10d": "m1"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"trade_style": "Weekly"}, "body.trade_style"),
        ({"max_symbols": 0}, "body.max_symbols"),
        ({"max_symbols": 20_001}, "body.max_symbols"),
        ({"min_tech_rating": 101}, "body.min_tech_rating"),
        ({"universe": ["AAPL", ""]}, "body.universe.1"),
        ({"universe": ["A"] * 20_001}, "body.universe"),
        ({"sectors": [""]}, "body.sectors.0"),
        ({"lookback_days": 3}, "body.lookback_days"),
        ({"options_mode": "futures"}, "body.options_mode"),
        ({"sort_by": "secret"}, "body.sort_by"),
        ({"universe": "AAPL"}, "body.universe"),
    ],
)
def test_bad_bodies_are_422_naming_the_field(client: TestClient, body: dict[str, object], field: str) -> None:
    response = client.post("/v1/scan", json=body, headers=AUTH)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert any(d["field"] == field and d["reason"] for d in detail), detail


def test_malformed_json_is_422(client: TestClient) -> None:
    response = client.post("/v1/scan", content=b"{not json", headers={**AUTH, "Content-Type": "application/json"})
    assert response.status_code == 422 and response.json()["error"] == "invalid_request"


def test_body_over_the_cap_is_413(double: OrchestratorDouble) -> None:
    with TestClient(create_app(double, settings(gateway_max_body_bytes=2048))) as client:
        response = client.post("/v1/scan", json={"universe": ["AAPL"] * 1000}, headers=AUTH)
    assert response.status_code == 413 and response.json()["error"] == "request_too_large"


def test_unexpected_errors_never_leak(double: OrchestratorDouble) -> None:
    double.fail = RuntimeError("db password hunter2 at /srv/secret.py line 3")
    with TestClient(create_app(double, settings()), raise_server_exceptions=False) as client:
        response = client.post("/v1/scan", json={}, headers=AUTH)
    assert response.status_code == 500
    assert "hunter2" not in response.text and "Traceback" not in response.text
    assert response.json()["error"] == "internal_error"


def test_symbol_and_universe_stats(client: TestClient) -> None:
    body = client.get("/v1/symbol/AAA?days=30", headers=AUTH).json()
    assert body["symbol"] == "AAA" and body["history"][-1]["Close"] == 101.0 and body["tech_rating"] == 79.0
    assert client.get("/v1/symbol/NOPE", headers=AUTH).status_code == 404
    assert client.get("/v1/symbol/AAA?days=0", headers=AUTH).status_code == 422
    stats = client.get("/v1/universe_stats", headers=AUTH).json()
    assert stats["total"] == 10 and stats["sectors"] == [{"name": "Technology", "count": 7}]
    assert "subindustries" in stats


def wait_done(client: TestClient, scan_id: str) -> dict[str, object]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        body = client.get(f"/v1/scans/{scan_id}", headers=AUTH).json()
        if body["status"] != "running":
            return body
        time.sleep(0.01)
    raise AssertionError("the asynchronous scan did not finish")


def test_asynchronous_scan_events_pages_and_csv(client: TestClient, double: OrchestratorDouble) -> None:
    started = client.post("/v1/scans", json={"universe": ["AAA", "BBB", "CCC"]}, headers=AUTH)
    assert started.status_code == 202
    scan_id = started.json()["id"]
    status = wait_done(client, scan_id)
    assert status["status"] == "done" and status["summary"]["fingerprint"] == "fp1"
    assert status["progress"]["compute"]["done"] == 3

    events = client.get(f"/v1/scans/{scan_id}/events", headers=AUTH)
    assert events.headers["content-type"].startswith("text/event-stream")
    names = [line.split(": ", 1)[1] for line in events.text.splitlines() if line.startswith("event: ")]
    assert names == ["progress", "progress", "result"]

    page = client.get(
        f"/v1/scans/{scan_id}/results?offset=1&limit=1&sort=composite_score&ascending=true", headers=AUTH
    ).json()
    assert [r["ticker"] for r in page["results"]] == ["BBB"] and page["total_rows"] == 3
    assert double.pages[-1].fingerprint == "fp1"
    assert client.get(f"/v1/scans/{scan_id}/results?sort=nope", headers=AUTH).status_code == 422

    exported = client.get(f"/v1/scans/{scan_id}/export.csv", headers=AUTH)
    assert exported.headers["content-type"].startswith("text/csv")
    header = exported.text.splitlines()[0].split(",")
    assert header[:2] == ["rank", "symbol"] and "rsi_14" in header and "ret_21d" in header
    assert client.get("/v1/scans/unknown", headers=AUTH).status_code == 404


def test_failed_asynchronous_scan_reports_the_error(double: OrchestratorDouble) -> None:
    from gateway.orchestrator import Unavailable

    double.fail = Unavailable("fetch failed: UNAVAILABLE")
    with TestClient(create_app(double, settings())) as client:
        scan_id = client.post("/v1/scans", json={}, headers=AUTH).json()["id"]
        status = wait_done(client, scan_id)
        assert status["status"] == "failed" and status["error"]["error"] == "backend_unavailable"
        assert client.get(f"/v1/scans/{scan_id}/results", headers=AUTH).status_code == 409
        assert client.post("/v1/scan", json={}, headers=AUTH).status_code == 503


def test_openapi_document(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert {"/v1/scan", "/v1/scans", "/v1/scans/{scan_id}/events", "/v1/scans/{scan_id}/export.csv"} <= set(
        spec["paths"]
    )
