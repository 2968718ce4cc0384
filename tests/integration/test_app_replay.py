"""The released Flutter app, replayed against the real cluster with anonymous access and no key.

A second gateway joins the session's cluster (same fetcher, compute and ranker) with
``TECHNIC_HTTP_ANONYMOUS`` on and X-Forwarded-For trusted. The app's requests (its presets, every
sector chip, the randomize combinations, lookbacks across the slider, both options modes, the list
calls, the symbol page, universe stats and the copilot) must all answer 200 and parse under the
app's fromJson rules, mirrored below. Then a flood from one address meets 429 while another
address and a keyed client do not, and what needs a key refuses the key-less app.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.integration.conftest import API_KEY, START_TIMEOUT, Cluster, _wait_http
from tests.support import free_port, start_service, wait_grpc_serving

pytestmark = pytest.mark.integration

CHIPS = (
    "Communication Services",
    "Consumer Discretionary",
    "Consumer Staples",
    "Energy",
    "Financials",
    "Health Care",
    "Industrials",
    "Information Technology",
    "Materials",
    "Real Estate",
    "Utilities",
)
RANDOMIZE = ("Technology", "Healthcare", "Financial Services", "Energy")
PRESETS = (("Position", 7.0, 180), ("Swing", 5.0, 90), ("Day", 3.0, 30))
BURST = 300
SCAN_COST = 5


# ---- the app's parsers, as strict as its Dart code ------------------------------------------------


def lenient_number(value: Any) -> float | None:
    """ScanResult.fromJson's numbers: a JSON number, a numeric string, or null."""
    if value is None or (isinstance(value, int | float) and not isinstance(value, bool)):
        return value
    assert isinstance(value, str), value
    return float(value)


def strict_double(value: Any) -> float | None:
    """SymbolDetail's `as double?`: a JSON float or null; an int (or a string) throws in Dart."""
    assert value is None or type(value) is float, f"{value!r} is not a double"
    return value


def strict_int(value: Any) -> int | None:
    assert value is None or type(value) is int, f"{value!r} is not an int"
    return value


def text(value: Any) -> str | None:
    assert value is None or isinstance(value, str), value
    return value


def parse_option(item: dict[str, Any]) -> None:
    for key in ("max_profit", "max_loss", "prob_itm"):
        value = item.get(key)
        assert value is None or (isinstance(value, int | float) and not isinstance(value, bool)), (key, value)


def parse_result(item: dict[str, Any]) -> dict[str, Any]:
    assert isinstance(item["ticker"], str) and item["ticker"]
    text(item.get("signal"))
    text(item.get("note"))
    for key in (
        "rrr",
        "entry",
        "stop",
        "target",
        "InstitutionalCoreScore",
        "win_prob_10d",
        "QualityScore",
        "TechRating",
        "AlphaScore",
        "ATR14_pct",
        "merit_score",
    ):
        lenient_number(item.get(key))
    assert all(isinstance(v, int | float) for v in item.get("sparkline") or []), item["sparkline"]
    for key in (
        "ICS_Tier",
        "PlayStyle",
        "Profile",
        "ProfileLabel",
        "Sector",
        "Industry",
        "EventSummary",
        "EventFlags",
        "FundamentalSnapshot",
        "merit_band",
        "merit_flags",
        "merit_summary",
    ):
        text(item.get(key))
    assert item.get("IsUltraRisky") in (True, False, 1, 0, None)
    win = item.get("win_prob_10d")
    assert win is None or 0 <= win <= 1
    atr = item.get("ATR14_pct")
    assert atr is None or 0 <= atr < 1, f"ATR14_pct {atr} is not a fraction"
    assert isinstance(item.get("option_strategies"), list)
    for option in item["option_strategies"]:
        parse_option(option)
    return item


def parse_mover(item: dict[str, Any]) -> None:
    assert isinstance(item["ticker"], str)
    text(item.get("delta") or item.get("change"))
    text(item.get("note") or item.get("label"))
    assert isinstance(item.get("isPositive", item.get("is_positive")), bool)
    assert all(isinstance(v, int | float) for v in item.get("sparkline") or [])


def parse_idea(item: dict[str, Any]) -> None:
    for key in ("title", "meta", "plan"):
        text(item.get(key))


def parse_scan(body: Any) -> list[dict[str, Any]]:
    """POST /v1/scan as the scanner screen reads it."""
    assert isinstance(body, dict)
    results = [parse_result(r) for r in body["results"]]
    for mover in body["movers"]:
        parse_mover(mover)
    for idea in body["ideas"][:3]:
        parse_idea(idea)
    text(body["log"])
    assert type(body["universe_size"]) is int and type(body["symbols_scanned"]) is int
    return results


def parse_list_call(body: Any) -> None:
    """GET /v1/scan as the results, movers, ideas and scoreboard calls read it."""
    if isinstance(body, list):
        items = body
    else:
        assert isinstance(body.get("results"), list) and isinstance(body.get("data"), list)
        for row in body["results"]:
            parse_result(row)
        items = body["data"]
    for item in items:
        parse_result(item)
        parse_mover(item)
        parse_idea(item)


def parse_symbol_detail(body: dict[str, Any], days: int) -> None:
    assert isinstance(body["symbol"], str)
    for key in (
        "last_price",
        "change_pct",
        "tech_rating",
        "alpha_score",
        "win_prob_10d",
        "ics",
        "quality_score",
        "momentum_score",
        "value_score",
        "quality_factor",
        "growth_score",
        "merit_score",
    ):
        strict_double(body.get(key))
    for key in ("ics_tier", "risk_score", "merit_band", "merit_flags", "merit_summary"):
        text(body.get(key))
    history = body["history"]
    assert 0 < len(history) <= days
    assert [h["date"] for h in history] == sorted(h["date"] for h in history)
    for bar in history:
        text(bar["date"])
        for key in ("Open", "High", "Low", "Close"):
            strict_double(bar[key])
        strict_int(bar["Volume"])
    for key in ("pe", "eps", "roe", "debt_to_equity", "market_cap"):
        strict_double(body["fundamentals"][key])
    events = body["events"]
    text(events["next_earnings"])
    strict_int(events["days_to_earnings"])
    text(events["next_dividend"])
    strict_double(events["dividend_amount"])
    assert isinstance(body["options_available"], bool)


def parse_universe(body: dict[str, Any]) -> None:
    assert isinstance(body["total"], int | float)
    for key in ("sectors", "subindustries"):
        for item in body[key]:
            assert isinstance(item["name"], str) and isinstance(item["count"], int | float)


def parse_copilot(body: dict[str, Any]) -> str:
    assert body["role"] == "assistant" and isinstance(body["meta"], str)
    return body.get("body") or body["message"]


# ---- the anonymous gateway ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def app_http(cluster: Cluster) -> Iterator[str]:
    grpc_port, http_port = free_port(), free_port()
    proc = start_service(
        "gateway",
        grpc_port,
        cluster.logdir,
        {
            **cluster.env,
            "TECHNIC_GATEWAY_PORT": str(grpc_port),
            "TECHNIC_GATEWAY_HTTP_PORT": str(http_port),
            "TECHNIC_GATEWAY_HTTP_HOST": "127.0.0.1",
            "TECHNIC_API_KEYS": API_KEY,
            "TECHNIC_HTTP_ANONYMOUS": "true",
            "TECHNIC_HTTP_TRUSTED_PROXY_HEADER": "X-Forwarded-For",
            "TECHNIC_GATEWAY_ANONYMOUS_RATE_LIMIT": "0.01",
            "TECHNIC_GATEWAY_ANONYMOUS_RATE_BURST": str(BURST),
            "TECHNIC_GATEWAY_ANONYMOUS_SCAN_COST": str(SCAN_COST),
            "TECHNIC_FETCHER_TARGET": f"127.0.0.1:{cluster.processes['fetcher'].port}",
            "TECHNIC_RANKER_TARGET": f"127.0.0.1:{cluster.processes['ranker'].port}",
            "TECHNIC_COMPUTE_TARGET": "ipv4:" + ",".join(f"127.0.0.1:{p}" for p in cluster.compute_ports),
        },
    )
    cluster.processes["gateway-app"] = proc
    try:
        wait_grpc_serving(grpc_port, timeout=START_TIMEOUT, proc=proc)
        _wait_http(f"http://127.0.0.1:{http_port}/health", proc)
        yield f"http://127.0.0.1:{http_port}"
    finally:
        cluster.processes.pop("gateway-app", None)
        assert proc.terminate() in (None, 0), proc.log()[-3000:]


@pytest.fixture(scope="module")
def app(app_http: str) -> Iterator[httpx.Client]:
    """The app's client: no key, only the app's headers."""
    with httpx.Client(base_url=app_http, headers={"Accept": "application/json"}, timeout=300.0) as client:
        yield client


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, (response.request.url, response.status_code, response.text[:400])
    return response.json()


def test_the_app_replayed_without_a_key(app: httpx.Client) -> None:
    scans = []
    for style, rating, lookback in PRESETS:
        scans.append(
            parse_scan(
                ok(
                    app.post(
                        "/v1/scan",
                        json={
                            "max_symbols": 6000,
                            "trade_style": style,
                            "min_tech_rating": rating,
                            "lookback_days": lookback,
                            "options_mode": "stock_only",
                        },
                    )
                )
            )
        )
    assert all(r["TechRating"] >= 70.0 for r in scans[0])
    for chip in CHIPS:
        body = ok(
            app.get(
                "/v1/scan",
                params={
                    "trade_style": "Short-term swing",
                    "sector": chip,
                    "min_tech_rating": "0",
                    "lookback_days": "90",
                    "options_mode": "stock_only",
                    "max_symbols": "6000",
                },
            )
        )
        parse_list_call(body)
        assert {r["Sector"] for r in body["results"]} <= {chip}
    for sectors, rating, lookback in ((RANDOMIZE, 2.0, 60), (RANDOMIZE[:2], 4.5, 360)):
        rows = parse_scan(
            ok(
                app.post(
                    "/v1/scan",
                    json={
                        "sectors": list(sectors),
                        "min_tech_rating": rating,
                        "lookback_days": lookback,
                        "trade_style": "Swing",
                    },
                )
            )
        )
        assert {r["Sector"] for r in rows} <= {"Information Technology", "Health Care", "Financials", "Energy"}
    for lookback in (30, 120, 365):
        parse_scan(ok(app.post("/v1/scan", json={"lookback_days": lookback})))
    for mode in ("stock_only", "stock_plus_options"):
        parse_scan(ok(app.post("/v1/scan", json={"options_mode": mode})))
    default = ok(app.get("/v1/scan"))
    parse_list_call(default)
    assert default["movers"] and default["results"]
    tickers = [r["ticker"] for r in default["results"][:2]]
    for ticker in tickers:
        parse_symbol_detail(ok(app.get(f"/v1/symbol/{ticker}", params={"days": 90})), 90)
        listed = ok(app.get("/v1/symbol", params={"symbol": ticker}))
        assert [parse_result(r)["ticker"] for r in listed["results"]] == [ticker]
    parse_universe(ok(app.get("/v1/universe_stats")))


def test_copilot_answers_with_the_scans_numbers(app: httpx.Client) -> None:
    rows = ok(app.post("/v1/scan", json={"limit": 10_000}))["results"]
    top = rows[0]
    plan = parse_copilot(ok(app.post("/v1/copilot", json={"question": "What is the plan?", "symbol": top["ticker"]})))
    assert f"entry {top['entry']:,.2f}, stop {top['stop']:,.2f}, target {top['target']:,.2f}" in plan
    why = parse_copilot(ok(app.post("/v1/copilot", json={"question": f"Why is {top['ticker']} rated this way?"})))
    assert f"TechRating {top['TechRating']:,.1f}/100" in why and f"#{top['rank']}" in why
    risk = parse_copilot(ok(app.post("/v1/copilot", json={"question": f"How risky is {top['ticker']}?"})))
    assert f"ATR(14) {top['atr_pct']:,.2f}%" in risk
    ideas = parse_copilot(ok(app.post("/v1/copilot", json={"question": "top ideas today"})))
    assert top["ticker"] in ideas or top["signal"] not in ("Strong Long", "Long")
    second = rows[1]
    both = parse_copilot(
        ok(app.post("/v1/copilot", json={"question": f"compare {top['ticker']} and {second['ticker']}"}))
    )
    assert f"{top['ticker']}: rank #{top['rank']}" in both and f"{second['ticker']}: rank #{second['rank']}" in both
    parse_copilot(ok(app.post("/v1/copilot", json={"question": "what is the market regime"})))
    helpful = parse_copilot(ok(app.post("/v1/copilot", json={"question": "hello"})))
    assert "Ask me" in helpful
    assert math.isfinite(float(top["TechRating"]))


def test_flood_and_keys(app: httpx.Client, app_http: str) -> None:
    flood = {"X-Forwarded-For": "198.51.100.23"}
    statuses = []
    for _ in range(BURST + 20):
        statuses.append(app.get("/v1/universe_stats", headers=flood).status_code)
        if statuses[-1] == 429:
            break
    assert statuses[-1] == 429 and set(statuses[:-1]) == {200}
    limited = app.get("/v1/universe_stats", headers=flood)
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    assert app.get("/v1/universe_stats", headers={"X-Forwarded-For": "198.51.100.24"}).status_code == 200
    assert app.get("/v1/universe_stats", headers={**flood, "X-API-Key": API_KEY}).status_code == 200
    assert app.get("/v1/universe_stats", headers={"X-API-Key": "not-a-key"}).status_code == 401
    for method, path, body in (
        ("post", "/v1/scan", {"refresh": True}),
        ("post", "/v1/scans", {}),
        ("get", "/v1/scans/x", None),
        ("get", "/v1/scans/x/export.csv", None),
    ):
        response = app.request(method, path, json=body)
        assert response.status_code == 401, (path, response.text)
    started = app.post("/v1/scans", json={}, headers={"X-API-Key": API_KEY})
    assert started.status_code == 202
