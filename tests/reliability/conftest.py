"""The cluster the fault tests break: `technic up` under supervisord, on free ports and its own run folder.

Exactly as `make up` runs it (redis through services.common.localredis, the simulator, the fetcher,
two compute replicas, the ranker and the gateway, each restarted by supervisord when it dies), with
a small market, small chunks (so a scan has many chunks in sequence), distinctive secrets (so the log
check can look for them) and a few API keys (one per load client).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
import time
import xmlrpc.client
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import psutil
import pytest
import redis
from supervisor.xmlrpc import SupervisorTransport

from technic.v1 import scan_pb2, scanner_pb2, scanner_pb2_grpc
from tests.runtime.test_cluster import cluster_env, technic
from tests.support import accounted, collect_scan, wait_grpc_serving

API_KEYS = [f"rel-{i:02d}-{secrets.token_hex(8)}" for i in range(64)]
POLYGON_KEY = f"pk-{secrets.token_hex(12)}"
ALL_ROWS = 10_000
SCAN_TIMEOUT = 240.0
RESTART_TIMEOUT = 120.0


@dataclass
class SupervisedCluster:
    """A running supervisord cluster: its environment, processes and addresses."""

    run_dir: Path
    env: dict[str, str]

    @property
    def logs(self) -> Path:
        return self.run_dir / "logs"

    def port(self, name: str) -> int:
        return int(self.env[name])

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port('TECHNIC_GATEWAY_HTTP_PORT')}"

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port('TECHNIC_GATEWAY_PORT')}"

    @property
    def marketsim(self) -> str:
        return self.env["POLYGON_BASE_URL"]

    @property
    def compute_ports(self) -> list[int]:
        base = self.port("TECHNIC_COMPUTE_PORT")
        return [base + i for i in range(int(self.env["TECHNIC_COMPUTE_REPLICAS"]))]

    def supervisor(self) -> Any:
        transport = SupervisorTransport(None, None, f"unix://{self.run_dir / 'supervisor.sock'}")
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport).supervisor

    def info(self, name: str) -> dict[str, Any]:
        return self.supervisor().getProcessInfo(name)

    def pid(self, name: str) -> int:
        return int(self.info(name)["pid"])

    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.env["REDIS_URL"])

    def wait_running(self, name: str, port: int | None, old_pid: int = 0, timeout: float = RESTART_TIMEOUT) -> int:
        """Wait until supervisord runs ``name`` under a pid other than ``old_pid`` and it is SERVING."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(xmlrpc.client.Fault, OSError):
                info = self.info(name)
                if info["statename"] == "RUNNING" and info["pid"] and info["pid"] != old_pid:
                    if port is not None:
                        wait_grpc_serving(port, timeout=max(1.0, deadline - time.monotonic()))
                    return int(info["pid"])
            time.sleep(0.1)
        raise TimeoutError(f"{name} not running again after {timeout} s\n{self.tail(name)}")

    def restart(self, name: str, port: int | None) -> int:
        """Stop and start ``name`` through supervisord; its new pid once it is SERVING again."""
        old = self.pid(name)
        supervisor = self.supervisor()
        supervisor.stopProcess(name, True)
        supervisor.startProcess(name, True)
        return self.wait_running(name, port, old_pid=old)

    def tail(self, name: str, chars: int = 4000) -> str:
        path = self.logs / f"{name.rsplit(':', 1)[-1]}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def log_lines(self, name: str) -> list[str]:
        path = self.logs / f"{name.rsplit(':', 1)[-1]}.log"
        return path.read_text(errors="replace").splitlines() if path.exists() else []

    def set_faults(self, **knobs: float) -> None:
        response = httpx.post(f"{self.marketsim}/admin/faults", json=knobs, timeout=10)
        assert response.status_code == 200, response.text

    def reset_faults(self) -> None:
        assert httpx.post(f"{self.marketsim}/admin/reset", timeout=10).status_code == 200


def _kill_tree(run_dir: Path) -> None:
    pid_file = run_dir / "supervisord.pid"
    if pid_file.exists():
        pid = int(pid_file.read_text())
        if psutil.pid_exists(pid):
            for child in psutil.Process(pid).children(recursive=True):
                child.kill()
            os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SupervisedCluster]:
    run_dir = tmp_path_factory.mktemp("reliability") / "run"
    env = cluster_env(run_dir)
    env.update(
        {
            "TECHNIC_API_KEYS": ",".join(API_KEYS),
            "POLYGON_API_KEY": POLYGON_KEY,
            "TECHNIC_MARKETSIM_API_KEY": POLYGON_KEY,
            "TECHNIC_LOG_LEVEL": "info",
            # `technic up` serves key-less requests by default; these tests check keyed access alone.
            "TECHNIC_HTTP_ANONYMOUS": "false",
            # Small chunks, two in flight: a scan of the small market is many chunks in sequence.
            "TECHNIC_GATEWAY_CHUNK_SIZE": "50",
            "TECHNIC_GATEWAY_INFLIGHT_CHUNKS": "2",
        }
    )
    started = technic(env, "up")
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        yield SupervisedCluster(run_dir=run_dir, env=env)
    finally:
        stopped = technic(env, "down", timeout=120)
        if stopped.returncode != 0:
            _kill_tree(run_dir)
    # The shutdown's log lines too: no secret anywhere in what the cluster wrote.
    assert secrets_in_logs(run_dir, [*API_KEYS, POLYGON_KEY]) == {}


def run_scan(
    target: str,
    options: scan_pb2.ScanOptions,
    refresh: bool = True,
    on_progress: Callable[[scanner_pb2.Progress], None] | None = None,
) -> tuple[list[scanner_pb2.Progress], scan_pb2.ScanResult]:
    """One scan over its own channel (a gateway restart must not break later scans); a deadline, never a hang."""
    with grpc.insecure_channel(target) as channel:
        return collect_scan(
            scanner_pb2_grpc.ScannerStub(channel).Scan(
                scanner_pb2.ScanRequest(options=options, refresh=refresh), timeout=SCAN_TIMEOUT
            ),
            on_progress,
        )


def assert_whole(result: scan_pb2.ScanResult) -> None:
    """Every requested symbol is in exactly one bucket, and every ranked row is in the result."""
    acc = result.accounting
    assert acc.requested > 0 and accounted(result) == acc.requested, acc
    symbols = [r.symbol for r in result.rows] + [i.symbol for i in result.issues]
    assert len(symbols) == len(set(symbols)) == acc.requested
    assert len(result.rows) == acc.ranked == result.total_rows


def ranking(result: scan_pb2.ScanResult) -> list[tuple[str, float]]:
    return [(r.symbol, round(r.composite_score, 6)) for r in sorted(result.rows, key=lambda r: r.rank)]


def secrets_in_logs(log_dir: Path, secret_values: list[str]) -> dict[str, list[str]]:
    """Every log file that holds one of ``secret_values``, with the offending lines' first 200 characters."""
    pattern = re.compile("|".join(re.escape(s) for s in secret_values))
    found: dict[str, list[str]] = {}
    for path in sorted(log_dir.rglob("*.log*")):
        hits = [line[:200] for line in path.read_text(errors="replace").splitlines() if pattern.search(line)]
        if hits:
            found[path.name] = hits
    return found
