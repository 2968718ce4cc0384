"""End-to-end scan benchmark over the gateway's gRPC Scanner API: ``python -m bench.scan``.

Starts the whole cluster as processes on free ports (redis-server, the simulator with about 11,000
tickers and 50 ms per request, fetcher, ``--replicas`` compute replicas, ranker, gateway), or
attaches to the one ``technic up`` runs, then measures full-universe scans through ``Scanner.Scan``:

* first start: nothing cached at all, ticker details fetched for the prefilter's survivors (<= 10 s);
* cold: no bars cached (Redis emptied of everything but the universe, fetcher restarted) (<= 3 s);
* warm: raw days cached, the scan asked again with ``refresh`` (<= 150 ms);
* repeated: the identical scan, p50 of many (<= 3 ms);
* incremental: the simulator advances one session, the scan is asked again (<= 400 ms).

Each scan figure is measured several times (median, min, max) with the scan's own per-stage
seconds and the simulator's request count, while the resident memory of every cluster process is
sampled. The reference is the old design (bench/baseline.py) on a ``--sample`` of the scanned symbols.
The whole suite (``python -m bench``) adds the other budget lines and writes the report.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import xmlrpc.client
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx
import orjson
import psutil
import redis
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.fetcher import advance_session, free_port, polygon_requests, process, wait_port
from bench.report import budget_table, format_table, per_symbol_line, spread, stage_lines
from gateway.views import after_prefilter
from services.common.channels import make_channel, make_sync_channel
from services.fetcher.settings import SIMULATOR_API_KEY
from technic.v1 import scan_pb2, scanner_pb2, scanner_pb2_grpc

UNIVERSE_KEYS = b"technic:universe:*"
WARM_SESSIONS = 260  # the simulator's default warm-up (TECHNIC_MARKETSIM_WARM_SESSIONS)
CACHE_TTL_SECONDS = 0.5  # the latest-session caches of fetcher and gateway in a cluster this module starts
BENCH_API_KEY = "technic-bench-key"  # the gateway key of a cluster this module starts; not a secret


def wait_serving(port: int, timeout: float = 600.0) -> None:
    """Poll grpc.health.v1 until the process on ``port`` is SERVING."""
    deadline = time.monotonic() + timeout
    with make_sync_channel(f"127.0.0.1:{port}") as channel:  # TLS too, when the cluster uses it
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            with contextlib.suppress(grpc.RpcError):
                reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            time.sleep(0.2)
    raise TimeoutError(f"port {port} not SERVING after {timeout} s")


def wait_simulator(url: str, timeout: float = 600.0) -> None:
    """Wait until the simulator answers and has built the sessions it warms at start (as Polygon has them)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError, ValueError):
            health = httpx.get(f"{url}/health", timeout=2).json()
            if health.get("warmed", 0) >= WARM_SESSIONS:
                return
        time.sleep(0.2)
    raise TimeoutError(f"the simulator at {url} did not warm {WARM_SESSIONS} sessions in {timeout} s")


@dataclass
class Cluster:
    """Where a running cluster listens, its processes, and how to restart its fetcher cold."""

    gateway_port: int
    fetcher_port: int
    sim_url: str
    redis_url: str
    cache_ttl: float
    description: str
    pids: dict[str, int] = field(default_factory=dict)
    restart: Any = None  # () -> None: restart the fetcher process and wait until it serves
    http_port: int = 0
    # Headers the gateway's HTTP API needs from the bench (its API key).
    http_headers: dict[str, str] = field(default_factory=dict)

    def restart_fetcher(self) -> None:
        self.restart()
        wait_serving(self.fetcher_port)


@contextlib.contextmanager
def local_cluster(
    tickers: int, replicas: int, latency_ms: float, work: Path | None = None, gateways: int = 1
) -> Iterator[Cluster]:
    """Start redis-server, simulator, fetcher, compute x ``replicas``, ranker and ``gateways`` gateway
    processes (sharing one gRPC and one HTTP port) on free ports."""
    work = work or Path(tempfile.mkdtemp(prefix="technic-bench-"))
    exe = shutil.which("redis-server")
    if exe is None:
        raise SystemExit("redis-server is not installed: run `make setup`")
    ports = {name: free_port() for name in ("redis", "sim", "fetcher", "ranker", "gateway", "http")}
    compute_ports = [free_port() for _ in range(replicas)]
    redis_url = f"redis://127.0.0.1:{ports['redis']}/0"
    base = {"REDIS_URL": redis_url, "TECHNIC_LOG_LEVEL": "warning", "TECHNIC_LOG_FORMAT": "json"}
    sim_env = {
        **base,
        "TECHNIC_MARKETSIM_PORT": str(ports["sim"]),
        "TECHNIC_MARKETSIM_N_TICKERS": str(tickers),
        "TECHNIC_MARKETSIM_FAULTS": orjson.dumps({"latency_ms": latency_ms}).decode(),
    }
    fetcher_env = {
        **base,
        "TECHNIC_FETCHER_PORT": str(ports["fetcher"]),
        "TECHNIC_FETCHER_LATEST_TTL": str(CACHE_TTL_SECONDS),
        "POLYGON_BASE_URL": f"http://127.0.0.1:{ports['sim']}",
    }
    gateway_env = {
        **base,
        "TECHNIC_GATEWAY_PORT": str(ports["gateway"]),
        "TECHNIC_GATEWAY_HTTP_PORT": str(ports["http"]),
        "TECHNIC_GATEWAY_HTTP_HOST": "127.0.0.1",
        "TECHNIC_FETCHER_TARGET": f"127.0.0.1:{ports['fetcher']}",
        "TECHNIC_RANKER_TARGET": f"127.0.0.1:{ports['ranker']}",
        "TECHNIC_COMPUTE_TARGET": "ipv4:" + ",".join(f"127.0.0.1:{p}" for p in compute_ports),
        "TECHNIC_GATEWAY_AS_OF_TTL_SECONDS": str(CACHE_TTL_SECONDS),
        "TECHNIC_GATEWAY_PROCESSES": str(gateways),
        # The HTTP figures measure serving, so the per-key limit is set far above any load
        # (it is still checked on every request).
        "TECHNIC_API_KEYS": BENCH_API_KEY,
        "TECHNIC_GATEWAY_RATE_LIMIT": "1000000000",
        "TECHNIC_GATEWAY_RATE_BURST": "1000000000",
    }
    python = sys.executable
    pids: dict[str, int] = {}
    restarts = 0
    with contextlib.ExitStack() as stack:
        pids["redis"] = stack.enter_context(
            process(
                [exe, "--port", str(ports["redis"]), "--save", "", "--appendonly", "no", "--dir", str(work)],
                {},
                work / "redis.log",
            )
        ).pid
        pids["marketsim"] = stack.enter_context(
            process([python, "-m", "services.marketsim"], sim_env, work / "marketsim.log")
        ).pid
        for i, port in enumerate(compute_ports):
            pids[f"compute-{i + 1}"] = stack.enter_context(
                process(
                    [python, "-m", "services.compute"],
                    {**base, "TECHNIC_COMPUTE_PORT": str(port)},
                    work / f"compute-{i + 1}.log",
                )
            ).pid
        pids["ranker"] = stack.enter_context(
            process(
                [python, "-m", "services.ranker"],
                {**base, "TECHNIC_RANKER_PORT": str(ports["ranker"])},
                work / "ranker.log",
            )
        ).pid
        fetcher = stack.enter_context(contextlib.ExitStack())
        pids["fetcher"] = fetcher.enter_context(
            process([python, "-m", "services.fetcher"], fetcher_env, work / "fetcher.log")
        ).pid
        for i in range(1, gateways + 1):
            name = "gateway" if i == 1 else f"gateway-{i}"
            pids[name] = stack.enter_context(process([python, "-m", "gateway"], gateway_env, work / f"{name}.log")).pid

        def restart() -> None:
            nonlocal restarts
            restarts += 1
            fetcher.close()
            pids["fetcher"] = fetcher.enter_context(
                process([python, "-m", "services.fetcher"], fetcher_env, work / f"fetcher-{restarts}.log")
            ).pid

        wait_port(ports["redis"])
        wait_simulator(f"http://127.0.0.1:{ports['sim']}")
        for port in (ports["fetcher"], ports["ranker"], *compute_ports, ports["gateway"]):
            wait_serving(port)
        yield Cluster(
            ports["gateway"],
            ports["fetcher"],
            f"http://127.0.0.1:{ports['sim']}",
            redis_url,
            CACHE_TTL_SECONDS,
            f"{tickers} tickers at {latency_ms} ms per request, {replicas} compute "
            f"replicas, {gateways} gateway process(es), started by the bench (logs in {work})",
            pids,
            restart,
            ports["http"],
            {"X-API-Key": BENCH_API_KEY},
        )


@contextlib.contextmanager
def attached_cluster(latency_ms: float) -> Iterator[Cluster]:
    """The cluster ``technic up`` runs under supervisord; the simulator's latency is set for the run."""
    from gateway.cluster import ClusterSettings, _proxy, collect
    from gateway.settings import GatewaySettings
    from services.fetcher.settings import FetcherSettings

    settings = ClusterSettings()
    proxy = _proxy(settings)
    pids = {row.name: row.pid for row in collect(settings) if row.pid}
    if "gateway" not in pids:
        raise SystemExit("no running cluster to attach to: start it with `make up`")
    sim_url = f"http://127.0.0.1:{settings.marketsim_port}"
    headers = {"Authorization": f"Bearer {SIMULATOR_API_KEY}"}
    faults = httpx.get(f"{sim_url}/admin/faults", headers=headers).json()
    httpx.post(f"{sim_url}/admin/faults", json={**faults, "latency_ms": latency_ms}, headers=headers).raise_for_status()

    def restart() -> None:
        proxy.supervisor.stopProcess("fetcher")
        proxy.supervisor.startProcess("fetcher")
        with contextlib.suppress(OSError, xmlrpc.client.Fault):
            pids.update({row.name: row.pid for row in collect(settings) if row.pid})

    ttl = max(FetcherSettings().fetcher_latest_ttl, GatewaySettings().gateway_as_of_ttl_seconds)
    try:
        yield Cluster(
            settings.gateway_port,
            settings.fetcher_port,
            sim_url,
            settings.redis_url,
            ttl,
            f"the running cluster (supervisord), simulator at {latency_ms} ms per request",
            pids,
            restart,
        )
    finally:
        httpx.post(f"{sim_url}/admin/faults", json=faults, headers=headers)


class MemorySampler:
    """Resident memory of every cluster process (and its children), sampled in a thread.

    Keeps each process's peak and the peak of the sum over all of them. RSS counts shared pages in
    every process that maps them, so the sum is an upper bound of what the cluster holds.
    """

    def __init__(self, cluster: Cluster, interval: float = 0.05) -> None:
        self.cluster = cluster
        self.interval = interval
        self.peak_total = 0
        self.at_peak: dict[str, int] = {}
        self.peaks: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> dict[str, int]:
        out = {}
        for name, pid in list(self.cluster.pids.items()):
            with contextlib.suppress(psutil.Error):
                proc = psutil.Process(pid)
                out[name] = proc.memory_info().rss + sum(
                    c.memory_info().rss for c in proc.children(recursive=True) if c.is_running()
                )
        return out

    def _run(self) -> None:
        while not self._stop.is_set():
            now = self.sample()
            total = sum(now.values())
            for name, rss in now.items():
                self.peaks[name] = max(self.peaks.get(name, 0), rss)
            if total > self.peak_total:
                self.peak_total, self.at_peak = total, now
            self._stop.wait(self.interval)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def figures(self) -> dict[str, Any]:
        mb = 1 / 2**20
        return {
            "peak_total_mb": self.peak_total * mb,
            "at_peak_mb": {k: v * mb for k, v in sorted(self.at_peak.items())},
            "process_peak_mb": {k: v * mb for k, v in sorted(self.peaks.items())},
        }


async def scan(
    stub: scanner_pb2_grpc.ScannerStub, options: scan_pb2.ScanOptions, refresh: bool = False
) -> tuple[float, scan_pb2.ScanResult]:
    """One ``Scanner.Scan`` to its result: (client seconds, result)."""
    start = time.perf_counter()
    result = None
    async for event in stub.Scan(scanner_pb2.ScanRequest(options=options, refresh=refresh), timeout=600):
        if event.HasField("result"):
            result = event.result
    if result is None:
        raise RuntimeError("the scan stream ended without a result")
    return time.perf_counter() - start, result


async def measured_scan(
    stub: scanner_pb2_grpc.ScannerStub, http: httpx.Client, options: scan_pb2.ScanOptions, refresh: bool
) -> tuple[dict[str, Any], scan_pb2.ScanResult]:
    """One scan with its stage seconds, accounting and the simulator requests it caused."""
    before = polygon_requests(http)
    seconds, result = await scan(stub, options, refresh)
    acc = result.accounting
    return {
        "seconds": seconds,
        "stages": dict(result.stage_seconds),
        "requested": acc.requested,
        "scanned": after_prefilter(acc),
        "ranked": acc.ranked,
        "as_of": result.as_of,
        "cached": result.cached,
        "polygon_requests": polygon_requests(http) - before,
    }, result


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median/min/max seconds of ``runs``, the median of each stage, and the runs themselves."""
    names = {s for r in runs for s in r["stages"]}
    return {
        **spread([r["seconds"] for r in runs]),
        "stages": {s: statistics.median(r["stages"].get(s, 0.0) for r in runs) for s in sorted(names)},
        "polygon_requests": statistics.median(r["polygon_requests"] for r in runs),
        "all": runs,
    }


def flush_bars(redis_url: str) -> None:
    """Delete every project key but the universe reference (the cold-scan precondition)."""
    client = redis.Redis.from_url(redis_url)
    keep = set(client.scan_iter(match=UNIVERSE_KEYS))
    drop = [k for k in client.scan_iter(match=b"technic:*") if k not in keep]
    if drop:
        client.delete(*drop)
    client.close()


async def measure(
    cluster: Cluster, http: httpx.Client, runs: dict[str, int], options: scan_pb2.ScanOptions | None = None
) -> dict[str, Any]:
    """Every scan figure of the budget except compute: a dict of summaries (see ``summarise``).

    ``runs`` gives how many times to measure cold, warm, repeated and incremental scans. The first
    start is measured once when the cluster has never scanned (Redis holds no universe yet).
    """
    options = options or scan_pb2.ScanOptions(limit=100)
    out: dict[str, Any] = {}
    async with make_channel(f"127.0.0.1:{cluster.gateway_port}") as channel:
        stub = scanner_pb2_grpc.ScannerStub(channel)
        with MemorySampler(cluster) as memory:
            client = redis.Redis.from_url(cluster.redis_url)
            fresh = not any(True for _ in client.scan_iter(match=UNIVERSE_KEYS, count=1000))
            client.close()
            try:
                first, result = await measured_scan(stub, http, options, refresh=True)
                if fresh:
                    out["first_start"] = summarise([first])
            except grpc.RpcError as exc:
                # Reported, not hidden: the line stays empty and the report says why; the rest goes on.
                out["first_start_error"] = f"{exc.code().name}: {exc.details()}"
                first, result = await measured_scan(stub, http, options, refresh=True)
            out["symbols_scanned"] = first["scanned"]
            out["as_of"] = result.as_of
            out["sample_symbols"] = [r.symbol for r in result.rows]
            cold = []
            for _ in range(runs["cold"]):
                flush_bars(cluster.redis_url)
                cluster.restart_fetcher()
                await asyncio.sleep(cluster.cache_ttl + 0.1)
                cold.append((await measured_scan(stub, http, options, refresh=True))[0])
            out["cold"] = summarise(cold)
            out["warm"] = summarise(
                [(await measured_scan(stub, http, options, refresh=True))[0] for _ in range(runs["warm"])]
            )
        out["memory_detail"] = memory.figures()
        out["memory"] = out["memory_detail"]["peak_total_mb"]
        _, cached = await scan(stub, options)
        out["fingerprint"] = cached.fingerprint
        repeated = [(await scan(stub, options))[0] for _ in range(runs["repeated"])]
        out["repeated"] = spread(repeated)  # its median is the p50
        incremental = []
        for _ in range(runs["incremental"]):
            before = out.get("as_of_latest", out["as_of"])
            advance_session(http, cluster.cache_ttl)
            figure, result = await measured_scan(stub, http, options, refresh=False)
            if result.as_of <= before:
                raise RuntimeError(f"the new session was not picked up ({result.as_of} after {before})")
            out["as_of_latest"] = result.as_of
            out["fingerprint"] = result.fingerprint  # the latest scan, cached by the ranker
            incremental.append(figure)
        out["incremental"] = summarise(incremental)
    return out


async def sweep(cluster: Cluster, http: httpx.Client, sizes: list[int], runs: int) -> list[dict[str, Any]]:
    """Warm scan time against universe size: prefilter floors off, ETFs in, ``max_symbols`` = size."""
    points = []
    async with make_channel(f"127.0.0.1:{cluster.gateway_port}") as channel:
        stub = scanner_pb2_grpc.ScannerStub(channel)
        for size in sizes:
            options = scan_pb2.ScanOptions(
                limit=100, max_symbols=size, min_price=0.0, min_dollar_volume=0.0, include_etfs=True
            )
            await scan(stub, options, refresh=True)  # days of symbols outside the default universe
            figures = [(await measured_scan(stub, http, options, refresh=True))[0] for _ in range(runs)]
            points.append({"requested": size, "symbols": figures[-1]["scanned"], "warm": summarise(figures)})
    return points


def sim_client(cluster: Cluster) -> httpx.Client:
    return httpx.Client(base_url=cluster.sim_url, timeout=120, headers={"Authorization": f"Bearer {SIMULATOR_API_KEY}"})


DEFAULT_RUNS = {"cold": 3, "warm": 5, "repeated": 200, "incremental": 3}


async def run(args: argparse.Namespace) -> None:
    from bench.baseline import run_baseline

    with (
        (
            attached_cluster(args.latency_ms)
            if args.attach
            else local_cluster(args.tickers, args.replicas, args.latency_ms)
        ) as cluster,
        sim_client(cluster) as http,
    ):
        print(f"cluster: {cluster.description}")
        figures = await measure(cluster, http, DEFAULT_RUNS)
        figures["baseline"] = run_baseline(http, figures["sample_symbols"][: args.sample], figures["as_of"])
    print(format_table(budget_table(figures)))
    print(per_symbol_line(figures))
    print("\n".join(stage_lines(figures)))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.scan", description=__doc__.split("\n")[0])
    parser.add_argument("--tickers", type=int, default=11_000)
    parser.add_argument(
        "--replicas",
        type=int,
        default=min(4, os.cpu_count() or 2),
        help="compute replicas (default: one per CPU, at most 4)",
    )
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--sample", type=int, default=50)
    parser.add_argument("--attach", action="store_true", help="measure the cluster `make up` runs")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
