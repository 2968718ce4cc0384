"""Real parts for tests: a redis-server on a free loopback port, service processes, health waits."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def consecutive_free_ports(count: int, attempts: int = 50) -> int:
    """The first of ``count`` consecutive loopback ports that are all free right now."""
    for _ in range(attempts):
        first = free_port()
        if first + count - 1 > 65535:
            continue
        try:
            with contextlib.ExitStack() as stack:
                for port in range(first, first + count):
                    sock = stack.enter_context(socket.socket())
                    sock.bind(("127.0.0.1", port))
            return first
        except OSError:
            continue
    raise RuntimeError(f"no {count} consecutive free ports found")


def cluster_port_env(compute_replicas: int) -> dict[str, str]:
    """Free loopback ports for every gRPC/HTTP service of a cluster, and the targets pointing at them."""
    base = consecutive_free_ports(compute_replicas)
    fetcher, ranker = free_port(), free_port()
    return {
        "TECHNIC_COMPUTE_REPLICAS": str(compute_replicas),
        "TECHNIC_COMPUTE_PORT": str(base),
        "TECHNIC_COMPUTE_TARGET": "ipv4:" + ",".join(f"127.0.0.1:{base + i}" for i in range(compute_replicas)),
        "TECHNIC_FETCHER_PORT": str(fetcher),
        "TECHNIC_FETCHER_TARGET": f"127.0.0.1:{fetcher}",
        "TECHNIC_RANKER_PORT": str(ranker),
        "TECHNIC_RANKER_TARGET": f"127.0.0.1:{ranker}",
        "TECHNIC_GATEWAY_PORT": str(free_port()),
        "TECHNIC_GATEWAY_HTTP_PORT": str(free_port()),
        "TECHNIC_GATEWAY_HTTP_HOST": "127.0.0.1",
    }


def wait_for_port(port: int, timeout: float = 30.0, host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout} s")


@dataclass
class RedisServer:
    """A redis-server process owned by a test."""

    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


def start_redis(workdir: Path, port: int | None = None) -> RedisServer:
    """Start redis-server on a free (or the given) loopback port, no persistence."""
    exe = shutil.which("redis-server")
    if exe is None:
        raise RuntimeError("redis-server is not installed: run `make setup` (installs it as root)")
    port = port or free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [
            exe,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
            "--protected-mode",
            "yes",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_port(port)
    return RedisServer(port=port, process=process)


@dataclass
class ServiceProcess:
    """A service started as ``python -m <module>`` with its own environment and log file."""

    module: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def terminate(self, timeout: float = 15.0) -> int:
        """SIGTERM, wait, and return the exit code (kills after ``timeout``)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return int(self.process.returncode)


def service_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TECHNIC_", "POLYGON_"))}
    env.pop("REDIS_URL", None)
    env.update({"TECHNIC_LOG_FORMAT": "json", "PYTHONUNBUFFERED": "1"})
    env.update(extra or {})
    return env


def start_service(module: str, port: int, logdir: Path, env: Mapping[str, str] | None = None) -> ServiceProcess:
    """Start ``python -m module`` (it must read its port from ``env``) and return at once."""
    logdir.mkdir(parents=True, exist_ok=True)
    log_path = logdir / f"{module.replace('.', '_')}-{port}.log"
    handle = log_path.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", module], cwd=PROJECT_ROOT, env=service_env(env), stdout=handle, stderr=subprocess.STDOUT
    )
    handle.close()
    return ServiceProcess(module=module, port=port, process=process, log_path=log_path)


def wait_grpc_serving(
    port: int, service: str = "", timeout: float = 60.0, proc: ServiceProcess | None = None, host: str = "127.0.0.1"
) -> None:
    """Poll the official grpc.health.v1 client until ``service`` is SERVING."""
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(f"{host}:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if proc is not None and proc.process.poll() is not None:
                raise RuntimeError(f"{proc.module} exited with {proc.process.returncode}:\n{proc.log()[-4000:]}")
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=1.0)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.1)
    detail = proc.log()[-4000:] if proc else ""
    raise TimeoutError(f"port {port} not SERVING after {timeout} s\n{detail}")


@contextlib.contextmanager
def running_service(
    module: str, port: int, logdir: Path, env: Mapping[str, str] | None = None, timeout: float = 120.0
) -> Iterator[ServiceProcess]:
    """Start a gRPC service process, wait until SERVING, and stop it afterwards."""
    proc = start_service(module, port, logdir, env)
    try:
        wait_grpc_serving(port, timeout=timeout, proc=proc)
        yield proc
    finally:
        proc.terminate()


def collect_scan(events: Iterable[Any], on_progress: Callable[[Any], None] | None = None) -> tuple[list[Any], Any]:
    """The progress events and the final result of one ``Scanner.Scan`` stream."""
    progress: list[Any] = []
    result = None
    for event in events:
        if event.HasField("progress"):
            progress.append(event.progress)
            if on_progress is not None:
                on_progress(event.progress)
        else:
            result = event.result
    assert result is not None, "the stream ended without a result"
    return progress, result


def accounted(result: Any) -> int:
    """Symbols a ScanResult accounts for: ranked + filtered + skipped + errored."""
    acc = result.accounting
    return acc.ranked + sum(acc.filtered.values()) + sum(acc.skipped.values()) + sum(acc.errored.values())


# Keys of a scan result that the Flutter app's ScanResult.fromJson reads.
APP_RESULT_KEYS = {
    "ticker",
    "signal",
    "rrr",
    "entry",
    "stop",
    "target",
    "note",
    "sparkline",
    "TechRating",
    "AlphaScore",
    "ATR14_pct",
    "Sector",
    "Industry",
    "PlayStyle",
    "win_prob_10d",
    "InstitutionalCoreScore",
    "ICS_Tier",
    "QualityScore",
    "merit_score",
    "merit_band",
    "merit_flags",
    "merit_summary",
    "option_strategies",
}
