"""The ghz-style client against a real service process: JSON keys and invariants, summary, CSV."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from tests.support import PROJECT_ROOT, RedisServer, ServiceProcess, free_port, running_service

HEALTH = "grpc.health.v1.Health/Check"


@pytest.fixture(scope="module")
def ranker(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    port = free_port()
    env = {"TECHNIC_RANKER_PORT": str(port), "REDIS_URL": redis_server.url}
    with running_service("services.ranker", port, tmp_path_factory.mktemp("ghz"), env) as proc:
        yield proc


def ghz(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "bench.ghz", *args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout


@pytest.mark.integration
@pytest.mark.parametrize("cpus", ["1", "2"])
def test_json_report_has_ghz_keys_and_consistent_counts(ranker: ServiceProcess, cpus: str) -> None:
    report = orjson.loads(
        ghz(
            "--call",
            HEALTH,
            "-d",
            '[{"service": ""}, {"service": "technic.v1.Ranker"}]',
            "-c",
            "8",
            "-n",
            "300",
            "--cpus",
            cpus,
            "-O",
            "json",
            f"127.0.0.1:{ranker.port}",
        )
    )
    assert {
        "count",
        "total",
        "average",
        "fastest",
        "slowest",
        "rps",
        "latencyDistribution",
        "histogram",
        "statusCodeDistribution",
        "errorDistribution",
    } <= set(report)
    assert report["count"] == 300
    assert report["statusCodeDistribution"] == {"OK": 300}
    assert sum(b["count"] for b in report["histogram"]) == 300
    assert abs(sum(b["frequency"] for b in report["histogram"]) - 1.0) < 1e-9
    latencies = [p["latency"] for p in report["latencyDistribution"]]
    assert [p["percentage"] for p in report["latencyDistribution"]] == [10, 25, 50, 75, 90, 95, 99]
    assert latencies == sorted(latencies)
    assert report["fastest"] <= latencies[0] and latencies[-1] <= report["slowest"]
    assert report["fastest"] <= report["average"] <= report["slowest"]
    assert report["rps"] > 0


@pytest.mark.integration
def test_errors_are_counted_by_status_and_message(ranker: ServiceProcess) -> None:
    report = orjson.loads(
        ghz(
            "--call",
            HEALTH,
            "-d",
            '[{"service": ""}, {"service": "no.such.Service"}]',
            "-c",
            "2",
            "-n",
            "40",
            "-O",
            "json",
            f"127.0.0.1:{ranker.port}",
        )
    )
    assert report["statusCodeDistribution"] == {"OK": 20, "NotFound": 20}
    assert sum(report["errorDistribution"].values()) == 20


@pytest.mark.integration
def test_summary_and_csv_outputs(ranker: ServiceProcess) -> None:
    summary = ghz("--call", HEALTH, "-c", "4", "-n", "50", f"127.0.0.1:{ranker.port}")
    for heading in (
        "Summary:",
        "Count:\t50",
        "Requests/sec:",
        "Response time histogram:",
        "Latency distribution:",
        "99 % in",
        "Status code distribution:",
        "[OK]\t50 responses",
    ):
        assert heading in summary
    bars = [line.split("|", 1)[1] for line in summary.splitlines() if "] \t|" in line or "]\t|" in line]
    assert bars and max(len(b) for b in bars) == 40
    rows = ghz("--call", HEALTH, "-c", "4", "-n", "25", "-O", "csv", f"127.0.0.1:{ranker.port}").splitlines()
    assert rows[0] == "duration (ms),status,error" and len(rows) == 26


def test_unknown_call_and_bad_flags_fail_clearly(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.ghz", "--call", "technic.v1.Nope/Nothing", "-n", "1", f"127.0.0.1:{free_port()}"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0 and "unknown call" in done.stderr
    done = subprocess.run(
        [sys.executable, "-m", "bench.ghz", "--call", HEALTH, "-n", "0", "127.0.0.1:1"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "need -c >= 1" in done.stderr
