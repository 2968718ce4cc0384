"""The suite's plumbing against a real simulator process: baseline, request counts, memory sampler, report.

The whole ``python -m bench`` run needs the full cluster and takes minutes, so this test drives the
pieces it is made of on a tiny market: the old design on five symbols (one Polygon request each,
counted by the simulator's ``/admin/stats``), the memory sampler on the simulator process, and the
report written from what they measured. Only shapes and accounting are checked, never a time.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from bench.baseline import STAGES, run_baseline
from bench.fetcher import polygon_requests, top_symbols
from bench.report import write_report
from bench.scan import Cluster, MemorySampler, summarise
from services.fetcher.settings import SIMULATOR_API_KEY
from tests.support import ServiceProcess, free_port, start_service

MARKET = {
    "TECHNIC_MARKETSIM_N_TICKERS": "300",
    "TECHNIC_MARKETSIM_HISTORY_SESSIONS": "400",
    "TECHNIC_MARKETSIM_TODAY": "2026-11-13",
    "TECHNIC_MARKETSIM_WARM_SESSIONS": "0",
}


@pytest.fixture(scope="module")
def simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServiceProcess, httpx.Client]]:
    port = free_port()
    logdir = tmp_path_factory.mktemp("bench-sim")
    proc = start_service(
        "services.marketsim",
        port,
        logdir,
        {**MARKET, "TECHNIC_MARKETSIM_PORT": str(port), "TECHNIC_MARKETSIM_CACHE_DIR": str(logdir / "cache")},
    )
    try:
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}", timeout=60, headers={"Authorization": f"Bearer {SIMULATOR_API_KEY}"}
        ) as http:
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                assert proc.process.poll() is None, proc.log()[-3000:]
                with contextlib.suppress(httpx.HTTPError):
                    if http.get("/health").status_code == 200:
                        break
                time.sleep(0.1)
            yield proc, http
    finally:
        proc.terminate()


@pytest.mark.integration
def test_baseline_memory_and_report_against_a_real_simulator(
    simulator: tuple[ServiceProcess, httpx.Client], tmp_path: Path
) -> None:
    proc, http = simulator
    as_of, symbols = top_symbols(http, 5)
    assert as_of == "2026-11-13" and len(symbols) == 5
    cluster = Cluster(0, 0, str(http.base_url), "", 0.0, "the simulator alone", {"marketsim": proc.process.pid})
    before = polygon_requests(http)
    with MemorySampler(cluster, interval=0.01) as memory:
        base = run_baseline(http, symbols, as_of, lookback=260)
    # One aggregates request per symbol, as the old design made them (the stats calls are not counted).
    assert base["polygon_requests"] == 5
    assert polygon_requests(http) - before == 5
    assert base["symbols"] == 5 and 0 < base["scored"] <= 5
    assert set(base["stages"]) == set(STAGES)
    assert base["seconds_per_symbol"] == pytest.approx(base["seconds"] / 5)
    assert sum(base["stages"].values()) <= base["seconds"]
    mem = memory.figures()
    assert set(mem["at_peak_mb"]) == {"marketsim"} and mem["peak_total_mb"] > 0

    runs = [{"seconds": s, "stages": {"fetch": s / 2}, "polygon_requests": 1} for s in (0.3, 0.1, 0.2)]
    figures = {"symbols_scanned": 5, "baseline": base, "cold": summarise(runs), "memory": mem["peak_total_mb"]}
    assert figures["cold"]["median"] == 0.2 and figures["cold"]["stages"] == {"fetch": 0.1}
    paths = write_report(figures, tmp_path / "report")
    data = orjson.loads(paths["json"].read_bytes())
    cold = next(b for b in data["budgets"] if b["key"] == "cold")
    assert cold["baseline"] == pytest.approx(base["seconds_per_symbol"] * 5)
    assert "seconds per symbol: cluster 40.000 ms" in paths["text"].read_text()
