"""The image's entrypoint, run here: supervisord with deploy/supervisord.conf in the foreground and
the runtime environment the Dockerfile sets (single-host program set: gateway, fetcher, 4 compute,
ranker; Redis external; no simulator), pointed at a simulator standing in for Polygon. A full scan
goes through; SIGTERM stops everything with exit 0."""

from __future__ import annotations

import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import psutil
import pytest
import redis

from tests.support import (
    PROJECT_ROOT,
    RedisServer,
    cluster_port_env,
    free_port,
    service_env,
    start_service,
)

DOCKERFILE = PROJECT_ROOT / "deploy" / "Dockerfile"
API_KEY = "entrypoint-test-key"
SIM_KEY = "technic-simulator"


def runtime_stage() -> str:
    """The Dockerfile's last stage, with line continuations joined."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    return text[text.rindex("\nFROM ") :]


def image_environment() -> dict[str, str]:
    env: dict[str, str] = {}
    for line in re.findall(r"^ENV (.+)$", runtime_stage(), re.M):
        for word in shlex.split(line):
            key, _, value = word.partition("=")
            env[key] = value
    return env


def image_entrypoint() -> list[str]:
    (match,) = re.findall(r"^ENTRYPOINT (\[.+\])$", runtime_stage(), re.M)
    return list(orjson.loads(match))


@pytest.fixture
def simulator(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    proc = start_service(
        "services.marketsim",
        port,
        tmp_path / "sim",
        {
            "TECHNIC_MARKETSIM_PORT": str(port),
            "TECHNIC_MARKETSIM_N_TICKERS": "600",
            "TECHNIC_MARKETSIM_HISTORY_SESSIONS": "400",
            "TECHNIC_MARKETSIM_TODAY": "2026-11-13",
            "TECHNIC_MARKETSIM_CACHE_DIR": str(tmp_path / "market-cache"),
        },
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/health", 120)
        yield url
    finally:
        proc.terminate()


def wait_http(url: str, timeout: float, ready: str | None = None) -> httpx.Response:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            response = httpx.get(url, timeout=2)
            if response.status_code == 200 and (ready is None or response.json().get("status") == ready):
                return response
            last = response.text
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.3)
    raise TimeoutError(f"{url} not ready after {timeout} s: {last}")


@pytest.mark.integration
def test_entrypoint_runs_the_single_host_program_set_and_scans(
    tmp_path: Path,
    redis_server: RedisServer,
    simulator: str,
) -> None:
    entrypoint = image_entrypoint()
    assert entrypoint[:2] == ["supervisord", "-n"]
    config = PROJECT_ROOT / entrypoint[entrypoint.index("-c") + 1].removeprefix("/app/")
    env = image_environment()
    assert env["TECHNIC_START_MARKETSIM"] == "false" and env["TECHNIC_COMPUTE_REPLICAS"] == "4"
    run_dir = tmp_path / "run"
    (run_dir / "logs").mkdir(parents=True)
    redis.Redis.from_url(redis_server.url).flushdb()  # other suites leave other markets' sessions
    env.update(
        {
            # Where this machine differs from the image: paths, interpreter, ports, the market, Redis.
            "TECHNIC_PYTHON": sys.executable,
            "TECHNIC_RUN_DIR": str(run_dir),
            "NUMBA_CACHE_DIR": "",
            "TECHNIC_GATEWAY_HTTP_HOST": "127.0.0.1",
            "REDIS_URL": redis_server.url,
            "POLYGON_BASE_URL": simulator,
            "POLYGON_API_KEY": SIM_KEY,
            "TECHNIC_API_KEYS": API_KEY,
            **cluster_port_env(compute_replicas=int(env["TECHNIC_COMPUTE_REPLICAS"])),
        }
    )
    env = service_env({k: v for k, v in env.items() if v != ""})
    command = [str(Path(sys.executable).parent / entrypoint[0]), *entrypoint[1:-1], str(config)]
    supervisord = subprocess.Popen(
        command, cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    http = f"http://127.0.0.1:{env['TECHNIC_GATEWAY_HTTP_PORT']}"
    try:
        health = wait_http(f"{http}/health", 240, ready="ok").json()
        programs = {p.cmdline()[-1] for p in psutil.Process(supervisord.pid).children() if p.cmdline()}
        assert "services.marketsim" not in programs
        assert {"services.fetcher", "services.ranker", "gateway", "services.compute"} <= programs
        assert (
            len([p for p in psutil.Process(supervisord.pid).children() if p.cmdline()[-1:] == ["services.compute"]])
            == 4
        )
        assert set(health["backends"]) >= {"fetcher", "ranker"}

        scan = httpx.post(f"{http}/v1/scan", headers={"X-API-Key": API_KEY}, json={}, timeout=240)
        assert scan.status_code == 200, scan.text
        body = scan.json()
        assert body["status"] == "ok" and body["results"] and body["symbols_scanned"] > 0
        assert body["results"][0]["ticker"] and body["results"][0]["TechRating"] is not None
    finally:
        children = psutil.Process(supervisord.pid).children(recursive=True)
        supervisord.send_signal(signal.SIGTERM)
        code = supervisord.wait(60)
        logs = "\n".join(p.read_text(errors="replace")[-1500:] for p in (run_dir / "logs").glob("*.log"))
    assert code == 0, logs
    assert not [p for p in children if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
