"""The app's HTTP lines of the report on synthetic figures: each beside its gRPC reference, budget
verdicts, missing figures kept, and the lines in the text and JSON reports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from bench.__main__ import _ok, percentile_50
from bench.report import HTTP_LINES, format_http_table, format_text, http_table, write_report
from tests.bench.test_report import synthetic

HTTP: dict[str, Any] = {
    "load": "3.10, 2.90, 2.50",
    "scan_p50": 0.0008,
    "scan_gzip_p50": 0.0009,
    "getscan_p50": 0.0012,
    "scan_rate": 800.0,
    "scan_gzip_rate": 1200.0,
    "getscan_rate": 1000.0,
    "scan_bytes": 286_000.0,
    "scan_gzip_bytes": 64_000.0,
    "getscan_bytes": 100_000,
    "symbol_p50": 0.004,
    "getsymbol_p50": 0.002,
    "scan_rate_two": 1280.0,
}


def test_every_http_line_beside_its_grpc_reference() -> None:
    rows = {r.key: r for r in http_table({"http": HTTP})}
    assert list(rows) == [line.key for line in HTTP_LINES]
    assert {k: r.passed for k, r in rows.items()} == {
        "scan_p50": True,
        "scan_gzip_p50": True,
        "scan_rate": False,
        "scan_gzip_rate": True,
        "scan_bytes": None,
        "scan_gzip_bytes": None,
        "symbol_p50": False,
        "scan_rate_two": None,
    }
    # The ratio is the HTTP figure over the gRPC one measured in the same run.
    assert rows["scan_p50"].ratio == pytest.approx(0.8 / 1.2)
    assert rows["scan_gzip_rate"].ratio == pytest.approx(1.2)
    assert rows["scan_gzip_bytes"].ratio == pytest.approx(0.64)
    assert rows["symbol_p50"].reference_name == "GetSymbol p50" and rows["symbol_p50"].ratio == pytest.approx(2.0)
    # Two processes against one.
    assert rows["scan_rate_two"].reference == 800.0 and rows["scan_rate_two"].ratio == pytest.approx(1.6)


def test_missing_http_figures_stay_in_the_table() -> None:
    rows = http_table({"http": {"scan_p50": 0.002}})
    assert len(rows) == len(HTTP_LINES)
    first = rows[0]
    assert (first.value, first.passed, first.reference, first.ratio) == (0.002, True, None, None)
    assert all(r.value is None and r.passed is None for r in rows[1:])
    assert http_table({}) == http_table({"http": {}})
    table = format_http_table(http_table({"http": HTTP}))
    assert "| cached POST /v1/scan p50, 1 client | 0.8 ms | <= 3.0 ms | pass | GetScan p50 1.2 ms | 0.67x |" in table
    assert "| cached POST /v1/scan body on the wire, gzip | 64,000 B | - | - | GetScan message 100,000 B | 0.64x |" in (
        table
    )


def test_http_lines_reach_the_text_and_json_reports(tmp_path: Path) -> None:
    assert "the app's HTTP path" not in format_text(synthetic())
    text = format_text(synthetic(http=HTTP))
    assert "cached POST /v1/scan, 50 clients, one gateway process" in text
    assert "measured at load average 3.10, 2.90, 2.50" in text
    paths = write_report(synthetic(http=HTTP), tmp_path / "run")
    report = orjson.loads(paths["json"].read_bytes())
    assert [r["key"] for r in report["http"]] == [line.key for line in HTTP_LINES]
    assert len(report["budgets"]) == 8


def test_load_reports_are_read_as_the_suite_stores_them() -> None:
    report = {
        "latencyDistribution": [{"percentage": 10, "latency": 500_000}, {"percentage": 50, "latency": 800_000}],
        "statusCodeDistribution": {"200": 300},
        "rps": 900.0,
    }
    assert percentile_50(report) == pytest.approx(0.0008) and _ok(report)
    assert percentile_50({}) is None
    assert not _ok({"statusCodeDistribution": {"200": 3, "429": 1}})
    assert not _ok({"error": "exit 1"}) and not _ok({"statusCodeDistribution": {}})
    assert _ok({"statusCodeDistribution": {"OK": 5}})
