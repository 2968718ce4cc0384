"""`technic up` starts every process healthy, `technic status` shows them, `technic down` leaves
nothing behind - the supervisord cluster exactly as `make up` runs it, on free ports."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.support import PROJECT_ROOT, cluster_port_env, free_port, service_env

TECHNIC = [sys.executable, "-m", "gateway.cli"]
PROGRAMS = ["redis", "marketsim", "fetcher", "compute:compute-1", "compute:compute-2", "ranker", "gateway"]


def cluster_env(run_dir: Path) -> dict[str, str]:
    marketsim = free_port()
    return service_env(
        {
            **cluster_port_env(compute_replicas=2),
            "TECHNIC_RUN_DIR": str(run_dir),
            "TECHNIC_PYTHON": sys.executable,
            "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
            "TECHNIC_MARKETSIM_PORT": str(marketsim),
            "POLYGON_BASE_URL": f"http://127.0.0.1:{marketsim}",
            "TECHNIC_MARKETSIM_N_TICKERS": "600",
            "TECHNIC_MARKETSIM_HISTORY_SESSIONS": "400",
            "TECHNIC_MARKETSIM_TODAY": "2026-11-13",
            "TECHNIC_MARKETSIM_CACHE_DIR": str(run_dir / "market-cache"),
            "TECHNIC_UP_TIMEOUT_SECONDS": "240",
        }
    )


def technic(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*TECHNIC, *args],
        cwd=PROJECT_ROOT,
        env={**env, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def run_dir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "run"
    yield path
    pid_file = path / "supervisord.pid"
    if pid_file.exists():  # a failed test must not leave a cluster running
        pid = int(pid_file.read_text())
        if psutil.pid_exists(pid):
            for child in psutil.Process(pid).children(recursive=True):
                child.kill()
            os.kill(pid, 9)


@pytest.mark.integration
def test_up_status_down_leaves_no_process_behind(run_dir: Path) -> None:
    env = cluster_env(run_dir)
    up = technic(env, "up")
    assert up.returncode == 0, up.stdout + up.stderr + (run_dir / "supervisord.log").read_text()
    supervisord = psutil.Process(int((run_dir / "supervisord.pid").read_text()))
    children = supervisord.children(recursive=True)
    assert len(children) >= len(PROGRAMS)

    status = technic(env, "status")
    assert status.returncode == 0, status.stdout + status.stderr
    for program in PROGRAMS:
        line = next((ln for ln in status.stdout.splitlines() if f" {program} " in f" {ln} "), "")
        assert "RUNNING" in line, f"{program} missing or not running:\n{status.stdout}"
        assert program == "redis" or "SERVING" in line, f"{program} not SERVING:\n{status.stdout}"

    down = technic(env, "down", timeout=120)
    assert down.returncode == 0, down.stdout + down.stderr
    assert not supervisord.is_running()
    alive = [p for p in children if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not alive, f"left behind: {[p.cmdline() for p in alive]}"
    assert technic(env, "status").returncode == 3
