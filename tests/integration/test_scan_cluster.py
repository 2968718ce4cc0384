"""End to end over the real cluster: scans over gRPC and HTTP, filters, cache, auth, failures."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import grpc
import httpx
import orjson
import pytest

from technic.v1 import scan_pb2, scanner_pb2, scanner_pb2_grpc
from tests.integration.conftest import Cluster
from tests.support import APP_RESULT_KEYS, PROJECT_ROOT, accounted, collect_scan

pytestmark = pytest.mark.integration

NUMBER_KEYS = (
    "rrr",
    "entry",
    "stop",
    "target",
    "TechRating",
    "AlphaScore",
    "ATR14_pct",
    "win_prob_10d",
    "InstitutionalCoreScore",
    "QualityScore",
    "merit_score",
)
TEXT_KEYS = (
    "ticker",
    "signal",
    "note",
    "Sector",
    "Industry",
    "PlayStyle",
    "ICS_Tier",
    "merit_band",
    "merit_flags",
    "merit_summary",
)
ALL_ROWS = 10_000


def run_scan(
    stub: scanner_pb2_grpc.ScannerStub, options: scan_pb2.ScanOptions, refresh: bool = False, on_progress=None
) -> tuple[list[scanner_pb2.Progress], scan_pb2.ScanResult]:
    return collect_scan(stub.Scan(scanner_pb2.ScanRequest(options=options, refresh=refresh), timeout=300), on_progress)


@pytest.fixture(scope="module")
def full_scan(scanner: scanner_pb2_grpc.ScannerStub) -> tuple[list[scanner_pb2.Progress], scan_pb2.ScanResult]:
    return run_scan(scanner, scan_pb2.ScanOptions(limit=ALL_ROWS), refresh=True)


def test_full_scan_over_grpc_accounts_for_every_symbol(full_scan) -> None:
    progress, result = full_scan
    assert {p.stage for p in progress} >= {"universe", "snapshot", "prefilter", "fetch", "compute", "rank"}
    compute = [p for p in progress if p.stage == "compute"]
    assert compute[-1].done == compute[-1].total > 0
    acc = result.accounting
    assert acc.requested > 500 and acc.ranked > 50
    assert accounted(result) == acc.requested
    assert acc.filtered["prefilter_price"] > 0 and not acc.errored
    assert len(result.rows) == acc.ranked == result.total_rows
    assert [r.rank for r in result.rows] == list(range(1, acc.ranked + 1))
    issues = {i.symbol for i in result.issues}
    rows = {r.symbol for r in result.rows}
    assert not issues & rows and len(issues) + len(rows) == acc.requested
    assert result.fingerprint and result.as_of == "2026-11-13" and result.model_versions
    assert {"fetch", "compute", "rank", "total"} <= set(result.stage_seconds)
    assert result.rows[0].explanation and result.rows[0].explanation[0].models


def test_http_scan_ranks_identically(full_scan, http: httpx.Client) -> None:
    _, result = full_scan
    response = http.post("/v1/scan", json={"limit": ALL_ROWS, "refresh": True})
    assert response.status_code == 200, response.text
    body = response.json()
    assert [r["ticker"] for r in body["results"]] == [r.symbol for r in result.rows]
    assert [r["composite_score"] for r in body["results"]] == pytest.approx(
        [r.composite_score for r in result.rows], abs=1e-4
    )
    assert body["universe_size"] == result.accounting.requested
    assert body["symbols_scanned"] >= len(body["results"])
    assert body["log"].startswith(f"scanned {result.accounting.requested} symbols (")


def test_contract_keys_and_types(cluster: Cluster, http: httpx.Client) -> None:
    body = http.post("/v1/scan", json={"trade_style": "Short-term swing", "max_symbols": 6000}).json()
    assert set(body) >= {
        "status",
        "disclaimer",
        "results",
        "movers",
        "ideas",
        "log",
        "universe_size",
        "symbols_scanned",
    }
    assert body["status"] == "ok" and isinstance(body["disclaimer"], str) and body["results"]
    for row in body["results"]:
        assert set(row) >= APP_RESULT_KEYS
        for key in NUMBER_KEYS:
            assert row[key] is None or isinstance(row[key], float), (key, row[key])
        for key in TEXT_KEYS:
            assert isinstance(row[key], str), (key, row[key])
        assert isinstance(row["sparkline"], list) and all(isinstance(v, float) for v in row["sparkline"])
        assert row["option_strategies"] == [] and row["QualityScore"] is None
        assert isinstance(row["TechRating"], float) and 0 <= row["TechRating"] <= 100
    for mover in body["movers"]:
        assert set(mover) == {"ticker", "delta", "note", "isPositive", "sparkline"}
        assert mover["delta"].endswith("%") and isinstance(mover["isPositive"], bool)
    for idea in body["ideas"]:
        assert set(idea) >= {"title", "ticker", "meta", "plan", "sparkline"}

    ticker = body["results"][0]["ticker"]
    detail = http.get(f"/v1/symbol/{ticker}", params={"days": 30}).json()
    assert detail["symbol"] == ticker and len(detail["history"]) == 30
    assert set(detail["history"][0]) == {"date", "Open", "High", "Low", "Close", "Volume"}
    assert isinstance(detail["history"][0]["Volume"], int) and isinstance(detail["last_price"], float)
    assert isinstance(detail["tech_rating"], float) and isinstance(detail["risk_score"], str)
    assert http.get("/v1/symbol/NOSUCHTICKER").status_code == 404

    stats = http.get("/v1/universe_stats").json()
    assert stats["total"] > 500 and stats["sectors"] and "subindustries" in stats
    health = httpx.get(f"{cluster.http}/health").json()
    assert health["status"] == "ok", health
    assert all(b["status"] == "SERVING" for b in health["backends"].values())
    version = httpx.get(f"{cluster.http}/version").json()
    assert version["model_versions"] and version["feature_version"]


def test_watchlist_scan(scanner, full_scan) -> None:
    _, full = full_scan
    watch = [r.symbol for r in full.rows[:3]] + [full.rows[-1].symbol, "ZZZZQ"]
    _, result = run_scan(scanner, scan_pb2.ScanOptions(universe=watch, limit=ALL_ROWS))
    assert result.accounting.requested == len(watch) == accounted(result)
    assert {r.symbol for r in result.rows} <= set(watch) and len(result.rows) == 4
    assert result.accounting.skipped["unknown_symbol"] == 1


def test_sector_filter(scanner, full_scan) -> None:
    _, full = full_scan
    sector = full.rows[0].sector
    _, result = run_scan(scanner, scan_pb2.ScanOptions(sectors=[sector.upper()], limit=ALL_ROWS))
    assert result.rows and {r.sector for r in result.rows} == {sector}
    assert result.accounting.filtered["prefilter_sector"] > 0
    assert accounted(result) == result.accounting.requested == full.accounting.requested
    expected = [r.symbol for r in full.rows if r.sector == sector]
    assert {r.symbol for r in result.rows} == set(expected)


def test_second_identical_scan_is_cached(scanner) -> None:
    options = scan_pb2.ScanOptions(trade_style=scan_pb2.TRADE_STYLE_POSITION, limit=50)
    _, first = run_scan(scanner, options)
    progress, second = run_scan(scanner, options)
    assert second.cached and second.fingerprint == first.fingerprint
    assert not [p for p in progress if p.stage in ("fetch", "compute", "rank")]
    assert [r.symbol for r in second.rows] == [r.symbol for r in first.rows]


def test_auth_and_bad_requests(cluster: Cluster, http: httpx.Client, scanner) -> None:
    assert httpx.post(f"{cluster.http}/v1/scan", json={}).status_code == 401
    assert (
        httpx.post(f"{cluster.http}/v1/scan", json={}, headers={"X-API-Key": "nope"}).json()["error"] == "unauthorized"
    )
    bad = http.post("/v1/scan", json={"max_symbols": -1, "trade_style": "Forever"})
    assert bad.status_code == 422
    assert {d["field"] for d in bad.json()["detail"]} == {"body.max_symbols", "body.trade_style"}
    assert http.post("/v1/scan", content=b"[1,", headers={"Content-Type": "application/json"}).status_code == 422
    big = http.post("/v1/scan", json={"universe": ["AAPL"] * 200_000})
    assert big.status_code == 413 and big.json()["error"] == "request_too_large"
    for options in (
        scan_pb2.ScanOptions(universe=["A"] * 20_001),
        scan_pb2.ScanOptions(sort_by="nope"),
        scan_pb2.ScanOptions(trade_style=77),
        scan_pb2.ScanOptions(sectors=["Astrology"]),
    ):
        with pytest.raises(grpc.RpcError) as caught:
            run_scan(scanner, options)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT and caught.value.details()


def test_asynchronous_scan_over_http(http: httpx.Client) -> None:
    scan_id = http.post("/v1/scans", json={"trade_style": "Day", "refresh": True}).json()["id"]
    deadline = time.monotonic() + 120
    while (status := http.get(f"/v1/scans/{scan_id}").json())["status"] == "running":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert status["status"] == "done", status
    events = http.get(f"/v1/scans/{scan_id}/events").text
    assert "event: progress" in events and events.rstrip().split("\n\n")[-1].startswith("event: result")
    page = http.get(f"/v1/scans/{scan_id}/results", params={"offset": 5, "limit": 5, "sort": "tech_rating"}).json()
    ratings = [r["TechRating"] for r in page["results"]]
    assert len(ratings) == 5 and ratings == sorted(ratings, reverse=True)
    csv_text = http.get(f"/v1/scans/{scan_id}/export.csv").text
    header = csv_text.splitlines()[0].split(",")
    assert "rsi_14" in header and len(csv_text.splitlines()) == status["summary"]["total_rows"] + 1


def test_compute_replica_killed_mid_scan(cluster: Cluster, scanner) -> None:
    victim = cluster.processes["compute-0"]
    killed: list[bool] = []

    def kill_on_first_chunk(progress: scanner_pb2.Progress) -> None:
        if progress.stage == "compute" and progress.done > 0 and not killed:
            victim.process.send_signal(signal.SIGKILL)
            killed.append(True)

    try:
        options = scan_pb2.ScanOptions(trade_style=scan_pb2.TRADE_STYLE_MEDIUM_TERM_SWING, limit=ALL_ROWS)
        progress, result = run_scan(scanner, options, refresh=True, on_progress=kill_on_first_chunk)
        assert killed and victim.process.wait(10) != 0
        compute = [p for p in progress if p.stage == "compute"]
        assert compute[-1].done == compute[-1].total
        assert accounted(result) == result.accounting.requested
        assert not result.accounting.errored, dict(result.accounting.errored)
        symbols = [r.symbol for r in result.rows] + [i.symbol for i in result.issues]
        assert len(symbols) == len(set(symbols)) == result.accounting.requested
    finally:
        cluster.start_compute(0)


def test_cli_scan_and_symbol(cluster: Cluster) -> None:
    env = {**os.environ, "COLUMNS": "200"}

    def technic(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "gateway.cli", *args, "--target", cluster.target],
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
            cwd=PROJECT_ROOT,
        )

    table = technic("scan", "--top", "5", "--style", "position")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.strip().splitlines()
    assert re.fullmatch(r"scanned \d+ symbols \(\d+ after prefilter\) in [\d.]+ s( \(cached\))?", lines[-1]), lines
    assert "ticker" in table.stdout and "composite" in table.stdout
    as_json = technic("scan", "--top", "5", "--format", "json")
    assert as_json.returncode == 0, as_json.stderr
    rows = orjson.loads(as_json.stdout)["results"]
    assert len(rows) == 5
    ticker = rows[0]["ticker"]
    detail = technic("symbol", ticker)
    assert detail.returncode == 0 and ticker in detail.stdout, detail.stderr
    missing = technic("symbol", "NOSUCHTICKER")
    assert missing.returncode == 1 and "NOT_FOUND" in missing.stdout + missing.stderr
    bad = technic("scan", "--sectors", "Astrology")
    assert bad.returncode == 2 and "unknown sector" in bad.stderr


def test_grpc_page_after_a_gateway_restart_has_the_https_explanations_and_scores(
    cluster: Cluster, http: httpx.Client
) -> None:
    body = http.post("/v1/scan", json={"trade_style": "Position", "limit": 50}).json()
    before = {r["ticker"]: r for r in body["results"]}
    explained = [t for t, r in before.items() if r["explanation"]]
    assert explained and len(explained) < len(before)  # the top rows only
    assert cluster.processes["gateway"].terminate() == 0
    cluster.start_gateway()
    with grpc.insecure_channel(cluster.target) as channel:
        page = scanner_pb2_grpc.ScannerStub(channel).GetScan(
            scanner_pb2.GetScanRequest(fingerprint=body["fingerprint"], limit=50), timeout=60
        )
    rows = {r.symbol: r for r in page.rows}
    assert list(rows) == list(before)
    for ticker, app_row in before.items():
        row = rows[ticker]
        assert [
            app_row["InstitutionalCoreScore"],
            app_row["ICS_Tier"],
            app_row["merit_score"],
            app_row["merit_band"],
            app_row["merit_flags"],
            app_row["merit_summary"],
            app_row["IsUltraRisky"],
            app_row["Profile"],
            app_row["ProfileLabel"],
        ] == [
            pytest.approx(row.ics, abs=0.005),
            row.ics_tier or None,
            pytest.approx(row.merit_score, abs=0.005),
            row.merit_band or None,
            ", ".join(row.merit_flags),
            row.merit_summary or None,
            row.ultra_risky,
            row.profile,
            row.profile_label,
        ], ticker
        assert row.profile.startswith("position:") and row.profile_label.startswith("Position, "), ticker
        contributions = [
            (c.feature, round(c.contribution, 6)) for e in row.explanation for m in e.models for c in m.contributions
        ]
        assert contributions == [
            (c["feature"], c["contribution"]) for m in app_row["explanation"] for c in m["contributions"]
        ], ticker
