"""The app's side of the HTTP API over an orchestrator double: access policy, vocabulary, list
routes, copilot (grounded and LLM-phrased), CORS; plus the CLI's table and options and the local
cluster's environment."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest
from aiohttp import web
from fastapi.testclient import TestClient
from rich.console import Console

from gateway import cli, copilot
from gateway.cluster import SIMULATOR_API_KEY, ClusterSettings, environment
from gateway.http_api import create_app
from gateway.http_api.auth import client_address, matching_key
from gateway.ratelimit import RateLimiter
from gateway.settings import GatewaySettings
from gateway.validation import normalize_options
from services.contract.vocabulary import canonical_sector, canonical_style
from technic.v1 import scan_pb2
from tests.gateway.doubles import OrchestratorDouble, make_result

KEY = "test-key-1"
AUTH = {"X-API-Key": KEY}


def app_settings(**extra: object) -> GatewaySettings:
    base: dict[str, object] = {"api_keys": KEY, "http_anonymous": True}
    return GatewaySettings(**(base | extra))  # type: ignore[arg-type]


@pytest.fixture
def double() -> OrchestratorDouble:
    return OrchestratorDouble()


@pytest.fixture
def client(double: OrchestratorDouble) -> Iterator[TestClient]:
    with TestClient(create_app(double, app_settings())) as test_client:
        yield test_client


def test_vocabulary_maps_the_apps_words() -> None:
    assert canonical_style("Swing") == canonical_style(" swing ") == "Short-term swing"
    assert canonical_style("DAY") == "Day" and canonical_style("medium") == "Medium-term swing"
    assert canonical_style("weekly") is None
    for word, name in (
        ("Technology", "Information Technology"),
        ("Healthcare", "Health Care"),
        ("Financial Services", "Financials"),
        ("Consumer Cyclical", "Consumer Discretionary"),
        ("Consumer Defensive", "Consumer Staples"),
        ("Basic Materials", "Materials"),
        ("Communication", "Communication Services"),
        ("Tech", "Information Technology"),
        ("Energy", "Energy"),
    ):
        assert canonical_sector(word) == name, word


def test_app_request_becomes_the_scan_it_means(client: TestClient, double: OrchestratorDouble) -> None:
    body = {
        "trade_style": "Swing",
        "min_tech_rating": 5.0,
        "sectors": ["Technology", "Healthcare"],
        "lookback_days": 30,
        "options_mode": "stock_plus_options",
        "max_symbols": 6000,
    }
    assert client.post("/v1/scan", json=body).status_code == 200
    options = double.scans[-1]
    assert options.trade_style == scan_pb2.TRADE_STYLE_SHORT_TERM_SWING
    assert options.min_tech_rating == 50.0 and options.lookback_days == 30
    assert sorted(options.sectors) == ["Health Care", "Information Technology"]
    assert normalize_options(options, GatewaySettings()).lookback_days == 60
    assert client.post("/v1/scan", json={"min_rating": 72.5}).status_code == 200
    assert double.scans[-1].min_tech_rating == 72.5
    both = client.post("/v1/scan", json={"min_rating": 70, "min_tech_rating": 7})
    assert both.status_code == 422


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"trade_style": "Weekly"}, ["Short-term swing", "swing"]),
        ({"sectors": ["Crypto"]}, ["Health Care", "healthcare"]),
        ({"min_tech_rating": 10.5}, ["min_tech_rating"]),
        ({"lookback_days": 29}, ["lookback_days"]),
    ],
)
def test_unknown_values_list_the_accepted_ones(client: TestClient, body: dict, words: list[str]) -> None:
    response = client.post("/v1/scan", json=body)
    assert response.status_code == 422
    assert all(w in response.text for w in words), response.text


def test_result_keys_and_units(client: TestClient) -> None:
    row = client.post("/v1/scan", json={}).json()["results"][0]
    assert row["ATR14_pct"] == pytest.approx(0.025) and row["atr_pct"] == 2.5
    assert row["IsUltraRisky"] is False and row["Profile"] == "swing:trend"
    assert row["ProfileLabel"] == "Short-term swing, trend setup"
    assert row["EventSummary"] is None and row["FundamentalSnapshot"] is None and row["QualityScore"] is None
    assert {"delta", "isPositive", "title", "meta", "plan"} <= set(row)


def test_get_scan_serves_every_list_parser(client: TestClient, double: OrchestratorDouble) -> None:
    response = client.get(
        "/v1/scan",
        params={
            "trade_style": "Position",
            "sector": "Technology,Energy",
            "min_tech_rating": "7.0",
            "lookback_days": "180",
            "options_mode": "stock_only",
            "max_symbols": "6000",
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["results"] == body["data"] and body["movers"]
    options = double.scans[-1]
    assert options.trade_style == scan_pb2.TRADE_STYLE_POSITION and options.min_tech_rating == 70.0
    assert sorted(options.sectors) == ["Energy", "Information Technology"]
    assert client.get("/v1/scan", params={"sector": "Crypto"}).status_code == 422
    both = client.get("/v1/scan", params={"min_tech_rating": "5", "min_rating": "50"})
    assert both.status_code == 422 and "not both" in both.text


def test_symbol_query_route_lists_the_row(client: TestClient) -> None:
    body = client.get("/v1/symbol", params={"symbol": "AAA"}).json()
    assert [r["ticker"] for r in body["results"]] == ["AAA"]
    assert client.get("/v1/symbol", params={"symbol": "NOPE"}).status_code == 404
    page = client.get("/v1/symbol/AAA?days=90").json()
    assert isinstance(page["last_price"], float) and isinstance(page["history"][0]["Volume"], int)
    assert isinstance(page["history"][0]["Open"], float)


def test_access_policy(double: OrchestratorDouble) -> None:
    with TestClient(create_app(double, app_settings(http_anonymous=False))) as closed:
        assert closed.post("/v1/scan", json={}).status_code == 401
        assert closed.post("/v1/scan", json={}, headers=AUTH).status_code == 200
    with TestClient(create_app(double, app_settings())) as open_:
        assert open_.post("/v1/scan", json={}).status_code == 200
        assert open_.post("/v1/scan", json={}, headers={"X-API-Key": "wrong"}).status_code == 401
        assert open_.post("/v1/scan", json={"refresh": True}).status_code == 401
        assert open_.post("/v1/scan", json={"refresh": True}, headers=AUTH).status_code == 200
        assert open_.post("/v1/scans", json={}).status_code == 401
        assert open_.get("/v1/scans/x/export.csv").status_code == 401
        assert open_.post("/v1/scans", json={}, headers=AUTH).status_code == 202


def test_anonymous_flood_is_limited_per_address(double: OrchestratorDouble) -> None:
    settings = app_settings(
        gateway_anonymous_rate_limit=0.01, gateway_anonymous_rate_burst=5, http_trusted_proxy_header="X-Forwarded-For"
    )
    with TestClient(create_app(double, settings)) as client:
        flood = {"X-Forwarded-For": "198.51.100.7"}
        codes = [client.get("/v1/universe_stats", headers=flood).status_code for _ in range(8)]
        assert codes[:5] == [200] * 5 and codes[5:] == [429] * 3
        limited = client.get("/v1/universe_stats", headers=flood)
        assert int(limited.headers["Retry-After"]) >= 1 and limited.json()["error"] == "rate_limited"
        assert client.get("/v1/universe_stats", headers={"X-Forwarded-For": "198.51.100.8"}).status_code == 200
        assert client.get("/v1/universe_stats", headers={**flood, **AUTH}).status_code == 200
        # A spoofed first hop does not escape the limit: the proxy's own (last) entry counts.
        assert (
            client.get("/v1/universe_stats", headers={"X-Forwarded-For": "203.0.113.1, 198.51.100.7"}).status_code
            == 429
        )


def test_uncached_scans_cost_more(double: OrchestratorDouble) -> None:
    settings = app_settings(
        gateway_anonymous_rate_limit=0.01, gateway_anonymous_rate_burst=12, gateway_anonymous_scan_cost=10
    )
    with TestClient(create_app(double, settings)) as client:
        assert client.post("/v1/scan", json={}).status_code == 200  # ran: 10 tokens
        assert client.post("/v1/scan", json={}).status_code == 200  # 1 more
        assert client.post("/v1/scan", json={}).status_code == 429
    double.result.cached = True
    with TestClient(create_app(double, settings)) as client:
        assert [client.post("/v1/scan", json={}).status_code for _ in range(13)].count(200) == 12


def test_trusted_header_only_when_configured() -> None:
    headers = {"x-forwarded-for": "203.0.113.1, 10.0.0.2"}
    assert client_address("10.0.0.9", headers, "") == "10.0.0.9"
    assert client_address("10.0.0.9", headers, "X-Forwarded-For") == "10.0.0.2"
    assert client_address(None, {}, "X-Forwarded-For") == "unknown"
    assert matching_key("b", [b"a", b"b"]) == b"b" and matching_key("c", [b"a", b"b"]) is None


def test_rate_limiter_cost_and_debt() -> None:
    now = [0.0]
    limiter = RateLimiter(1.0, 10, clock=lambda: now[0], max_clients=2)
    assert limiter.acquire(b"a", cost=4) == 0
    limiter.charge(b"a", 9)
    assert limiter.acquire(b"a") == 4  # 3 tokens owed, one more needed
    now[0] += 4
    assert limiter.acquire(b"a") == 0
    limiter.acquire(b"b")
    limiter.acquire(b"c")
    assert len(limiter._buckets) == 2


def test_cors_for_a_web_build(double: OrchestratorDouble) -> None:
    with TestClient(create_app(double, app_settings(http_cors_origins="https://app.example"))) as client:
        preflight = client.options(
            "/v1/scan", headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST"}
        )
        assert preflight.headers["access-control-allow-origin"] == "https://app.example"
        other = client.get("/v1/universe_stats", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers
    with TestClient(create_app(double, app_settings())) as client:
        assert (
            "access-control-allow-origin"
            not in client.get("/v1/universe_stats", headers={"Origin": "https://app.example"}).headers
        )


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("why is AAA rated this way?", ["TechRating 79.0/100", "trend 70.0", "Return 21d +0.200"]),
        ("what is the plan for AAA", ["entry 100.00, stop 95.00, target 110.00", "reward/risk 2.0"]),
        ("how risky is BBB", ["ATR(14) 2.50%", "(Moderate)"]),
        ("top ideas today", ["1. AAA", "2. BBB", "3. CCC"]),
        ("best names in tech", ["Information Technology"]),
        ("compare AAA and CCC", ["AAA: rank #1", "CCC: rank #3", "AAA ranks higher"]),
        ("what is the market regime", ["uptrend / normal volatility"]),
        ("tell me a joke", ["I answer from today's scan"]),
    ],
)
def test_copilot_grounded(question: str, expected: list[str]) -> None:
    result = make_result()
    for row in result.rows:
        row.sector = "Information Technology"
    rows = {r.symbol: r for r in result.rows}
    text = copilot.answer(question, result, rows, copilot.mentioned_tickers(question)).body
    assert all(e in text for e in expected), text


def test_copilot_route(client: TestClient) -> None:
    body = client.post("/v1/copilot", json={"question": "what is the plan?", "symbol": "AAA"}).json()
    assert body["role"] == "assistant" and "entry 100.00" in body["body"] and "2026-11-13" in body["meta"]


class ChatServer:
    """A tiny OpenAI-compatible chat server on a free loopback port, in its own thread."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.requests: list[dict] = []
        self.loop = asyncio.new_event_loop()
        self.port = 0
        ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self.thread.start()
        ready.wait(10)

    async def _chat(self, request: web.Request) -> web.Response:
        self.requests.append({"auth": request.headers.get("Authorization"), **await request.json()})
        if self.status != 200:
            return web.json_response({"error": "down"}, status=self.status)
        facts = self.requests[-1]["messages"][-1]["content"]
        return web.json_response({"choices": [{"message": {"role": "assistant", "content": "Phrased: " + facts}}]})

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        self.runner = web.AppRunner(app)
        self.loop.run_until_complete(self.runner.setup())
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        self.loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        ready.set()
        self.loop.run_forever()

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.mark.parametrize("status", [200, 500])
def test_copilot_llm_phrasing_and_fallback(double: OrchestratorDouble, status: int) -> None:
    server = ChatServer(status)
    try:
        settings = app_settings(
            copilot_llm_url=f"http://127.0.0.1:{server.port}/v1",
            copilot_llm_model="tiny",
            copilot_llm_api_key="llm-secret",
        )
        with TestClient(create_app(double, settings)) as client:
            body = client.post("/v1/copilot", json={"question": "plan for AAA"}).json()
    finally:
        server.stop()
    sent = server.requests[-1]
    assert sent["model"] == "tiny" and sent["auth"] == "Bearer llm-secret"
    assert "entry 100.00" in sent["messages"][-1]["content"]
    if status == 200:
        assert body["body"].startswith("Phrased: ") and "Phrased by tiny" in body["meta"]
    else:
        assert body["body"] == body["grounded"] and "entry 100.00" in body["body"]


def test_cli_table_fits_80_columns() -> None:
    result = make_result()
    for row in result.rows:
        row.plan.entry, row.plan.stop, row.plan.target = 10912.35, 109.87, 12001.5
        row.sector = "Information Technology"
    console = Console(width=80, record=True)
    console.print(cli.top_table(result, 10, 80))
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80 and "…" not in text
    assert "10,912.35" in text and "12,001.50" in text and "S-Long" in text


def test_cli_carries_every_scan_option() -> None:
    args = cli.build_parser().parse_args(
        [
            "scan",
            "--style",
            "swing",
            "--min-rating",
            "60",
            "--signals",
            "Strong Long,Long",
            "--min-price",
            "10",
            "--min-dollar-volume",
            "1e7",
            "--lookback",
            "90",
            "--as-of",
            "2026-11-13",
            "--include-etfs",
            "--options-mode",
            "stock_plus_options",
            "--sort",
            "alpha_score",
            "--ascending",
            "--range",
            "atr_pct:1:5",
            "--range",
            "rsi_14::70",
            "--sectors",
            "Technology",
        ]
    )
    options = cli.scan_options(args)
    assert options.min_tech_rating == 60 and list(options.signals) == ["Strong Long", "Long"]
    assert options.min_price == 10 and options.min_dollar_volume == 1e7 and options.lookback_days == 90
    assert options.as_of == "2026-11-13" and options.include_etfs and options.sort_by == "alpha_score"
    assert options.ascending and options.options_mode == scan_pb2.OPTIONS_MODE_STOCK_PLUS_OPTIONS
    assert [(r.column, r.HasField("min"), r.max) for r in options.ranges] == [
        ("atr_pct", True, 5),
        ("rsi_14", False, 70),
    ]
    assert cli.check_options(options) is None


def test_local_cluster_uses_the_simulators_key() -> None:
    shell = {"POLYGON_API_KEY": "real-polygon-key", "POLYGON_BASE_URL": "https://api.polygon.io"}
    env = environment(ClusterSettings(marketsim_port=8900, start_marketsim=True), shell)
    assert env["POLYGON_API_KEY"] == env["TECHNIC_MARKETSIM_API_KEY"] == SIMULATOR_API_KEY
    assert env["POLYGON_BASE_URL"] == "http://127.0.0.1:8900" and env["TECHNIC_HTTP_ANONYMOUS"] == "true"
    real = environment(ClusterSettings(start_marketsim=False), shell)
    assert real["POLYGON_API_KEY"] == "real-polygon-key" and real["POLYGON_BASE_URL"] == "https://api.polygon.io"


def raw(client: TestClient, method: str, path: str, **kwargs: object) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and the body as sent (not decompressed)."""
    with client.stream(method, path, **kwargs) as response:  # type: ignore[arg-type]
        return response.status_code, dict(response.headers), b"".join(response.iter_raw())


def test_cached_scans_are_served_as_kept_bytes(double: OrchestratorDouble) -> None:
    import gzip

    double.result.cached = True
    with TestClient(create_app(double, app_settings())) as client:
        answers = client.app.state.answers  # type: ignore[attr-defined]
        status, headers, plain = raw(
            client, "POST", "/v1/scan", json={"trade_style": "Swing"}, headers={"Accept-Encoding": "identity"}
        )
        assert status == 200 and "content-encoding" not in headers and len(double.scans) == 1
        # The same request in other words (alias, default spelled out) is the same answer, from memory.
        status, zipped_headers, zipped = raw(
            client,
            "POST",
            "/v1/scan",
            json={"trade_style": "short-term swing", "options_mode": "stock_only"},
            headers={"Accept-Encoding": "gzip, br"},
        )
        assert status == 200 and zipped_headers["content-encoding"] == "gzip" and len(double.scans) == 1
        assert gzip.decompress(zipped) == plain and zipped_headers["etag"] == headers["etag"]
        assert raw(client, "POST", "/v1/scan", json={}, headers={"Accept-Encoding": "gzip"})[2] == zipped
        assert answers.compressions == 1
        not_modified = client.post("/v1/scan", json={}, headers={"If-None-Match": headers["etag"]})
        assert not_modified.status_code == 304 and not not_modified.content
        assert client.get("/v1/scan").json()["data"]  # the GET shape is kept apart
        double.generation += 1  # a scan finished somewhere: every kept answer may read differently
        assert client.post("/v1/scan", json={}).status_code == 200 and len(double.scans) == 3
        # Not gzip-encoded when refused, and small bodies are never compressed.
        assert (
            "content-encoding"
            not in raw(client, "POST", "/v1/scan", json={}, headers={"Accept-Encoding": "gzip;q=0"})[1]
        )


def test_uncached_scans_are_not_kept(client: TestClient, double: OrchestratorDouble) -> None:
    client.post("/v1/scan", json={})
    client.post("/v1/scan", json={})
    assert len(double.scans) == 2
