"""Drive the local cluster under supervisord: ``technic up``, ``technic down``, ``technic status``.

``up`` starts supervisord with deploy/supervisord.conf (daemonised, state under TECHNIC_RUN_DIR) and
waits until every process runs and answers its health check; ``down`` stops supervisord and every
process it started and waits until none is left; ``status`` prints each process with its health.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import xmlrpc.client
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc
from rich.console import Console
from rich.table import Table
from supervisor.xmlrpc import SupervisorTransport

from services.common.channels import make_sync_channel
from services.common.settings import PROJECT_ROOT, CommonSettings

CONFIG = PROJECT_ROOT / "deploy" / "supervisord.conf"
# The simulator's default key (its TECHNIC_MARKETSIM_API_KEY); not a secret.
SIMULATOR_API_KEY = "technic-simulator"


class ClusterSettings(CommonSettings):
    """Where the processes listen, for health checks (the same variables the services read)."""

    fetcher_port: int = 50052
    ranker_port: int = 50053
    compute_port: int = 50061
    compute_replicas: int = 4
    gateway_port: int = 50051
    gateway_http_port: int = 8080
    gateway_processes: int = 1
    marketsim_port: int = 8900
    start_marketsim: bool = True
    up_timeout_seconds: float = 300.0


@dataclass
class ProcessHealth:
    name: str
    state: str
    pid: int
    uptime: str
    health: str
    detail: str = ""


def environment(settings: ClusterSettings, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment supervisord and every process of the local cluster start with.

    When the cluster runs the simulator, the fetcher talks to it with the simulator's own key and
    address, whatever ``POLYGON_API_KEY`` / ``POLYGON_BASE_URL`` say in the shell (the simulator
    refuses any other key). The local cluster serves the app's requests without a key unless
    ``TECHNIC_HTTP_ANONYMOUS`` says otherwise. ``TECHNIC_GATEWAY_PEERS`` (the gateway processes
    beyond the first, for supervisord's ``numprocs``) follows ``TECHNIC_GATEWAY_PROCESSES``.
    """
    env = dict(os.environ if base is None else base)
    env.setdefault("TECHNIC_RUN_DIR", str(settings.run_dir))
    env.setdefault("TECHNIC_PYTHON", sys.executable)
    env.setdefault("TECHNIC_COMPUTE_REPLICAS", str(settings.compute_replicas))
    env.setdefault("TECHNIC_START_MARKETSIM", "true" if settings.start_marketsim else "false")
    env.setdefault("TECHNIC_LOG_FORMAT", "json")
    env.setdefault("TECHNIC_HTTP_ANONYMOUS", "true")
    env.setdefault("TECHNIC_GATEWAY_PROCESSES", str(settings.gateway_processes))
    env["TECHNIC_GATEWAY_PEERS"] = str(max(1, int(env["TECHNIC_GATEWAY_PROCESSES"])) - 1)
    if settings.start_marketsim:
        key = env.get("TECHNIC_MARKETSIM_API_KEY") or SIMULATOR_API_KEY
        env["TECHNIC_MARKETSIM_API_KEY"] = key
        env["POLYGON_API_KEY"] = key
        env["POLYGON_BASE_URL"] = f"http://127.0.0.1:{settings.marketsim_port}"
    return env


def _proxy(settings: ClusterSettings) -> xmlrpc.client.ServerProxy:
    socket_path = Path(os.environ.get("TECHNIC_RUN_DIR", settings.run_dir)) / "supervisor.sock"
    transport = SupervisorTransport(None, None, f"unix://{socket_path}")
    return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)


def supervisor_running(settings: ClusterSettings) -> bool:
    try:
        state = cast(dict[str, Any], _proxy(settings).supervisor.getState())
        return state["statename"] == "RUNNING"
    except (OSError, xmlrpc.client.Fault):
        return False


def _grpc_health(port: int, service: str = "") -> str:
    with make_sync_channel(f"127.0.0.1:{port}", CommonSettings()) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=1.0
            )
        except grpc.RpcError as exc:
            return "NOT_FOUND" if exc.code() == grpc.StatusCode.NOT_FOUND else "UNREACHABLE"
    return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


def _http_health(port: int) -> str:
    try:
        response = httpx.get(f"http://127.0.0.1:{port}/health", timeout=1.0)
    except httpx.HTTPError:
        return "UNREACHABLE"
    return "SERVING" if response.status_code == 200 else f"HTTP {response.status_code}"


def _check(settings: ClusterSettings, name: str) -> tuple[str, str]:
    """(health, detail) of one supervised process."""
    group, _, proc = name.partition(":")
    if group == "marketsim":
        return _http_health(settings.marketsim_port), f"http :{settings.marketsim_port}"
    if group == "redis":
        return "-", settings.redis_url.rsplit("@", 1)[-1]
    ports = {
        "fetcher": settings.fetcher_port,
        "ranker": settings.ranker_port,
        "gateway": settings.gateway_port,
        "gateway-peer": settings.gateway_port,
    }
    port = settings.compute_port + int(proc.rsplit("-", 1)[-1]) - 1 if group == "compute" else ports[group]
    health = _grpc_health(port)
    detail = f"grpc :{port}"
    if group.startswith("gateway"):
        detail += f", http :{settings.gateway_http_port} {_http_health(settings.gateway_http_port)}"
        if settings.gateway_processes > 1:
            # The ports are shared: the kernel picks which process answers a health check.
            detail += f" (ports shared by {settings.gateway_processes} processes)"
    if health == "SERVING" and _grpc_health(port, "technic.redis") == "NOT_SERVING":
        detail += ", redis unavailable (degraded)"
    return health, detail


def collect(settings: ClusterSettings) -> list[ProcessHealth]:
    """Every supervised process with its supervisor state and health."""
    # XML-RPC answers are untyped; supervisord documents these as lists of structs.
    infos = cast(list[dict[str, Any]], _proxy(settings).supervisor.getAllProcessInfo())
    rows = []
    for info in infos:
        name = f"{info['group']}:{info['name']}" if info["group"] != info["name"] else info["name"]
        running = info["statename"] == "RUNNING"
        health, detail = _check(settings, name) if running else ("-", info.get("spawnerr", ""))
        uptime = info["description"].split("uptime ")[-1] if running else ""
        rows.append(ProcessHealth(name, info["statename"], info["pid"], uptime, health, detail))
    return rows


def _ready(rows: list[ProcessHealth]) -> bool:
    return all(r.state == "RUNNING" and r.health in ("SERVING", "-") for r in rows if r.state != "STOPPED")


def print_table(rows: list[ProcessHealth], console: Console) -> None:
    table = Table(title="technic cluster")
    for column in ("process", "state", "pid", "uptime", "health", "detail"):
        table.add_column(column)
    for r in rows:
        colour = "green" if r.health in ("SERVING", "-") and r.state == "RUNNING" else "red"
        table.add_row(r.name, r.state, str(r.pid or ""), r.uptime, f"[{colour}]{r.health}[/]", r.detail)
    console.print(table)


def up(settings: ClusterSettings | None = None, console: Console | None = None) -> int:
    """Start the cluster (or the stopped parts of it) and wait until every process is healthy."""
    settings = settings or ClusterSettings()
    console = console or Console(stderr=True)
    env = environment(settings)
    run_dir = Path(env["TECHNIC_RUN_DIR"])
    (run_dir / "logs").mkdir(parents=True, exist_ok=True)
    if supervisor_running(settings):
        _proxy(settings).supervisor.startAllProcesses(True)
    else:
        subprocess.run(
            [sys.executable, "-m", "supervisor.supervisord", "-c", str(CONFIG)], env=env, cwd=PROJECT_ROOT, check=True
        )
    deadline = time.monotonic() + settings.up_timeout_seconds
    rows: list[ProcessHealth] = []
    with console.status("starting the cluster (the first start generates the market and compiles kernels)"):
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, xmlrpc.client.Fault):
                rows = collect(settings)
                if rows and _ready(rows):
                    break
            time.sleep(0.5)
    print_table(rows, console)
    if not rows or not _ready(rows):
        console.print(
            f"[red]the cluster is not healthy after {settings.up_timeout_seconds:.0f} s;"
            f" logs are in {run_dir / 'logs'}[/]"
        )
        return 1
    return 0


def status(settings: ClusterSettings | None = None, console: Console | None = None) -> int:
    """Print every process and its health; non-zero when the cluster is down or unhealthy."""
    settings = settings or ClusterSettings()
    console = console or Console()
    if not supervisor_running(settings):
        console.print("the cluster is not running (start it with `technic up`)")
        return 3
    rows = collect(settings)
    print_table(rows, console)
    return 0 if _ready(rows) else 1


def down(settings: ClusterSettings | None = None, console: Console | None = None, timeout: float = 60.0) -> int:
    """Stop supervisord and everything it started; wait until its pid is gone."""
    settings = settings or ClusterSettings()
    console = console or Console(stderr=True)
    pid_file = Path(os.environ.get("TECHNIC_RUN_DIR", settings.run_dir)) / "supervisord.pid"
    if not supervisor_running(settings):
        console.print("the cluster is not running")
        return 0
    pid = int(pid_file.read_text().strip()) if pid_file.exists() else 0
    with contextlib.suppress(OSError, xmlrpc.client.Fault):
        _proxy(settings).supervisor.shutdown()
    deadline = time.monotonic() + timeout
    while pid and time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        if pid:
            console.print(f"[red]supervisord (pid {pid}) did not stop within {timeout:.0f} s[/]")
            return 1
    console.print("the cluster is stopped")
    return 0
