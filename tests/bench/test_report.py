"""The report builder and the budget table on synthetic figures (pure functions, no cluster)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from bench.report import (
    BUDGETS,
    budget_table,
    format_table,
    format_text,
    manifest_limits_mb,
    memory_lines,
    per_symbol_line,
    spread,
    stage_matrix,
    write_report,
)


def synthetic(**changes: Any) -> dict[str, Any]:
    """Figures shaped as the suite stores them: repeated runs as spreads, single figures as numbers."""
    figures: dict[str, Any] = {
        "environment": {
            "started": "2026-11-20T10:00:00+00:00",
            "cpus": 2,
            "load_before": "1.00, 1.00, 1.00",
            "load_after": "2.00, 1.50, 1.00",
            "tickers": 11_000,
            "latency_ms": 50.0,
        },
        "symbols_scanned": 6000,
        "first_start": {**spread([8.0]), "stages": {"fetch": 5.0, "universe": 2.0}},
        "cold": {**spread([2.0, 2.5, 3.5]), "stages": {"fetch": 1.5, "compute": 0.3}},
        "warm": {**spread([0.2, 0.1, 0.12]), "stages": {"fetch": 0.05, "compute": 0.04}},
        "repeated": spread([0.002, 0.004, 0.001]),
        "repeated_rate": 3500.0,
        "incremental": {**spread([0.5, 0.45]), "stages": {"fetch": 0.3}},
        "compute": 0.05,
        "memory": 3000.0,
        "baseline": {
            "symbols": 100,
            "seconds": 10.0,
            "seconds_per_symbol": 0.1,
            "stages_per_symbol": {"fetch": 0.06, "indicators": 0.02, "features": 0.005, "models": 0.015, "rank": 0.0},
        },
        "sweep": [
            {"requested": 1500, "symbols": 1500, "warm": spread([0.05])},
            {"requested": 12000, "symbols": 9000, "warm": spread([0.3, 0.2])},
        ],
        "components": {
            "ranker": {"page_read": {"seconds": 0.002, "reference": 0.02, "reference_name": "rank from scratch"}},
            "fetcher": {"error": "exit 1"},
        },
    }
    figures.update(changes)
    return figures


def test_spread_is_median_min_max_and_refuses_nothing() -> None:
    assert spread([3.0, 1.0, 2.0]) == {"median": 2.0, "min": 1.0, "max": 3.0, "runs": 3}
    with pytest.raises(ValueError):
        spread([])


def test_every_budget_line_is_reported_with_verdict_and_ratio() -> None:
    rows = {r.key: r for r in budget_table(synthetic())}
    assert list(rows) == [b.key for b in BUDGETS]
    assert len(rows) == 8
    # Medians against targets: cold 2.5 <= 3 passes, warm 0.12 <= 0.15 passes, repeated p50 0.002 passes,
    # incremental 0.475 > 0.4 fails, memory 3000 MB > 2560 MB fails, rate 3500 >= 3000 passes.
    verdicts = {k: r.passed for k, r in rows.items()}
    assert verdicts == {
        "cold": True,
        "first_start": True,
        "warm": True,
        "repeated": True,
        "repeated_rate": True,
        "incremental": False,
        "compute": True,
        "memory": False,
    }
    assert rows["cold"].value == 2.5 and (rows["cold"].low, rows["cold"].high, rows["cold"].runs) == (2.0, 3.5, 3)
    # The old design scans 6000 symbols at 0.1 s each: 600 s, whatever the cache state.
    assert rows["cold"].baseline == pytest.approx(600.0)
    assert rows["cold"].ratio == pytest.approx(240.0)
    assert rows["warm"].ratio == pytest.approx(5000.0)
    # Its rate is one scan per 600 s; the ratio is still "times better".
    assert rows["repeated_rate"].baseline == pytest.approx(1 / 600)
    assert rows["repeated_rate"].ratio == pytest.approx(3500 * 600)
    # Its compute part: indicators + feature row + models per symbol, times 6,000.
    assert rows["compute"].baseline == pytest.approx(0.04 * 6000)
    assert rows["memory"].baseline is None and rows["memory"].ratio is None


def test_boundaries_pass_and_missing_figures_stay_in_the_table() -> None:
    figures = synthetic(cold=3.0, repeated_rate=3000.0, memory=2.5 * 1024)
    for key in ("warm", "incremental", "compute", "baseline"):
        figures.pop(key)
    rows = {r.key: r for r in budget_table(figures)}
    assert rows["cold"].passed is True and rows["repeated_rate"].passed is True and rows["memory"].passed is True
    assert rows["warm"].value is None and rows["warm"].passed is None and rows["warm"].runs == 0
    assert all(r.ratio is None for r in rows.values())
    table = format_table(list(rows.values()))
    assert len(table.splitlines()) == 2 + len(BUDGETS)
    assert "| warm full scan | - | - | <= 150.0 ms | - | - | - |" in table


def test_text_report_states_per_symbol_figures_and_components() -> None:
    text = format_text(synthetic())
    assert "| cold full scan | 2.50 s | 2.00 s / 3.50 s (3) | <= 3.00 s | pass | 600.00 s | 240.0x |" in text
    assert "| incremental (one new session) | 475.0 ms |" in text and "FAIL" in text
    # 2.5 s / 6000 symbols = 0.417 ms per symbol against 100 ms: 240x.
    assert per_symbol_line(synthetic()) in text
    assert "cluster 0.417 ms" in text and "old design 100.0 ms" in text and "ratio 240x" in text
    assert "ranker page_read: 2.00 ms   rank from scratch 20.0 ms   ratio 10.0x" in text
    assert "fetcher: not measured (exit 1)" in text
    assert "load average 1.00, 1.00, 1.00 before" in text
    assert "stages of the cold scan (ms): compute 300, fetch 1500" in text
    assert "stages of the first start scan (ms): fetch 5000, universe 2000" in text
    assert per_symbol_line(synthetic(baseline=None)) == "seconds per symbol: not measured"


def test_write_report_gives_json_markdown_and_two_pngs(tmp_path: Path) -> None:
    paths = write_report(synthetic(), tmp_path / "run")
    assert set(paths) == {"json", "text", "stages", "sweep"}
    for key in ("stages", "sweep"):
        assert paths[key].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = orjson.loads(paths["json"].read_bytes())
    assert [b["key"] for b in data["budgets"]] == [b.key for b in BUDGETS]
    assert data["figures"]["symbols_scanned"] == 6000
    cold = next(b for b in data["budgets"] if b["key"] == "cold")
    assert cold["passed"] is True and cold["target"] == 3.0
    assert paths["text"].read_text().startswith("Technic benchmark")


def test_stage_matrix_takes_each_scan_kind_stages() -> None:
    kinds, stages, values = stage_matrix(synthetic(incremental=0.4))
    assert kinds == ["first_start", "cold", "warm"]
    assert stages == ["compute", "fetch", "universe"]
    assert values == [[0.0, 0.3, 0.04], [5.0, 1.5, 0.05], [2.0, 0.0, 0.0]]
    assert stage_matrix({}) == ([], [], [])


def test_memory_lines_compare_each_process_with_its_manifest_limit() -> None:
    limits = manifest_limits_mb()
    assert limits["compute"] == (512.0, 4) and limits["redis"][0] == 1280.0
    figures = {
        "memory_detail": {
            "process_peak_mb": {
                "compute-1": 230.0,
                "compute-2": 250.0,
                "fetcher": 900.0,
                "gateway": 170.0,
                "ranker": 220.0,
                "redis": 150.0,
                "marketsim": 700.0,
            }
        }
    }
    lines = memory_lines(figures, limits)
    assert "memory compute-2: 250 MB of a 512 MB limit   fits" in lines
    assert "memory fetcher: 900 MB of a 768 MB limit   OVER THE LIMIT" in lines
    assert "memory marketsim: 700 MB (not deployed)" in lines
    # 4 x 250 (compute at the manifests' count) + 900 + 170 + 220 + 150, the simulator left out
    assert lines[-1].startswith("memory deployed cluster (manifest replica counts, no simulator): 2,440 MB")
    assert lines[-1].endswith("fits")
    assert memory_lines({}) == []
