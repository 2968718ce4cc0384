"""The whole cluster as real processes on free ports, once per test session (:func:`running_cluster`
starts another for a module that changes the market).

redis-server, the market simulator (a small market: 600 tickers, 400 sessions to 2026-11-13), the
fetcher, two compute replicas, the ranker and the gateway, each started as ``python -m ...`` with
its configuration in environment variables, exactly as supervisord starts them.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import httpx
import pytest

from technic.v1 import scanner_pb2_grpc
from tests.support import ServiceProcess, free_port, start_redis, start_service, wait_grpc_serving

API_KEY = "integration-key"
MARKET = {
    "TECHNIC_MARKETSIM_N_TICKERS": "600",
    "TECHNIC_MARKETSIM_HISTORY_SESSIONS": "400",
    "TECHNIC_MARKETSIM_TODAY": "2026-11-13",
}
START_TIMEOUT = 240.0


@dataclass
class Cluster:
    """Addresses and processes of a running cluster."""

    logdir: Path
    env: dict[str, str]
    gateway_port: int
    http_port: int
    compute_ports: list[int]
    processes: dict[str, ServiceProcess] = field(default_factory=dict)
    gateway_env: dict[str, str] = field(default_factory=dict)

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.gateway_port}"

    def start_compute(self, index: int) -> ServiceProcess:
        port = self.compute_ports[index]
        proc = start_service("services.compute", port, self.logdir, {**self.env, "TECHNIC_COMPUTE_PORT": str(port)})
        self.processes[f"compute-{index}"] = proc
        wait_grpc_serving(port, timeout=START_TIMEOUT, proc=proc)
        return proc

    def start_gateway(self) -> ServiceProcess:
        proc = start_service("gateway", self.gateway_port, self.logdir, self.gateway_env)
        self.processes["gateway"] = proc
        wait_grpc_serving(self.gateway_port, timeout=START_TIMEOUT, proc=proc)
        _wait_http(f"{self.http}/version", proc)
        return proc

    def logs(self) -> str:
        return "\n".join(f"--- {name}\n{proc.log()[-3000:]}" for name, proc in self.processes.items())


def _wait_http(url: str, proc: ServiceProcess, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.process.poll() is not None:
            raise RuntimeError(f"{proc.module} exited with {proc.process.returncode}:\n{proc.log()[-4000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        time.sleep(0.1)
    raise TimeoutError(f"{url} not healthy after {timeout} s\n{proc.log()[-4000:]}")


@contextlib.contextmanager
def running_cluster(
    tmp_path_factory: pytest.TempPathFactory,
    compute_replicas: int = 2,
    fetcher_env: dict[str, str] | None = None,
    gateway_env: dict[str, str] | None = None,
) -> Iterator[Cluster]:
    """A whole cluster with its own Redis and simulator, stopped on exit (the gateway must exit 0).

    ``fetcher_env`` and ``gateway_env`` add settings of those two processes (e.g. shorter trust of
    the latest session for a suite that moves the simulator on)."""
    logdir = tmp_path_factory.mktemp("cluster-logs")
    # A Redis of its own: other suites leave raw sessions of other simulated markets under the same keys.
    redis_server = start_redis(tmp_path_factory.mktemp("cluster-redis"))
    ports = {name: free_port() for name in ("marketsim", "fetcher", "ranker", "gateway", "http")}
    compute_ports = [free_port() for _ in range(compute_replicas)]
    env = {"REDIS_URL": redis_server.url, "TECHNIC_LOG_LEVEL": "info"}
    # Another model folder than the committed artifacts (compute and ranker read it), when given.
    if os.environ.get("TECHNIC_MODEL_DIR"):
        env["TECHNIC_MODEL_DIR"] = os.environ["TECHNIC_MODEL_DIR"]
    cluster = Cluster(
        logdir=logdir, env=env, gateway_port=ports["gateway"], http_port=ports["http"], compute_ports=compute_ports
    )
    try:
        sim = start_service(
            "services.marketsim",
            ports["marketsim"],
            logdir,
            {
                **env,
                **MARKET,
                "TECHNIC_MARKETSIM_PORT": str(ports["marketsim"]),
                "TECHNIC_MARKETSIM_CACHE_DIR": str(tmp_path_factory.mktemp("market-cache")),
            },
        )
        cluster.processes["marketsim"] = sim
        fetcher = start_service(
            "services.fetcher",
            ports["fetcher"],
            logdir,
            {
                **env,
                "TECHNIC_FETCHER_PORT": str(ports["fetcher"]),
                "POLYGON_BASE_URL": f"http://127.0.0.1:{ports['marketsim']}",
                **(fetcher_env or {}),
            },
        )
        cluster.processes["fetcher"] = fetcher
        ranker = start_service(
            "services.ranker", ports["ranker"], logdir, {**env, "TECHNIC_RANKER_PORT": str(ports["ranker"])}
        )
        cluster.processes["ranker"] = ranker
        _wait_http(f"http://127.0.0.1:{ports['marketsim']}/health", sim)
        for index in range(len(compute_ports)):
            cluster.start_compute(index)
        wait_grpc_serving(ports["fetcher"], timeout=START_TIMEOUT, proc=fetcher)
        wait_grpc_serving(ports["ranker"], timeout=START_TIMEOUT, proc=ranker)
        cluster.gateway_env = {
            **env,
            "TECHNIC_GATEWAY_PORT": str(ports["gateway"]),
            "TECHNIC_GATEWAY_HTTP_PORT": str(ports["http"]),
            "TECHNIC_GATEWAY_HTTP_HOST": "127.0.0.1",
            "TECHNIC_API_KEYS": API_KEY,
            "TECHNIC_FETCHER_TARGET": f"127.0.0.1:{ports['fetcher']}",
            "TECHNIC_RANKER_TARGET": f"127.0.0.1:{ports['ranker']}",
            "TECHNIC_COMPUTE_TARGET": "ipv4:" + ",".join(f"127.0.0.1:{p}" for p in compute_ports),
            # Small chunks, two in flight: a scan of the small market has several chunks in sequence.
            "TECHNIC_GATEWAY_CHUNK_SIZE": "50",
            "TECHNIC_GATEWAY_INFLIGHT_CHUNKS": "2",
            **(gateway_env or {}),
        }
        cluster.start_gateway()
        yield cluster
    finally:
        codes = {name: proc.terminate() for name, proc in reversed(cluster.processes.items())}
        redis_server.stop()
        gateway_code = codes.get("gateway")
        assert gateway_code in (None, 0), f"gateway exited with {gateway_code} on SIGTERM\n{cluster.logs()}"


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory) as running:
        yield running


@pytest.fixture(scope="session")
def scanner(cluster: Cluster) -> Iterator[scanner_pb2_grpc.ScannerStub]:
    with grpc.insecure_channel(cluster.target) as channel:
        yield scanner_pb2_grpc.ScannerStub(channel)


@pytest.fixture(scope="session")
def http(cluster: Cluster) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=cluster.http, headers={"X-API-Key": API_KEY}, timeout=120.0) as client:
        yield client
