"""End-to-end scan benchmark over the gateway's gRPC Scanner API: ``python -m bench.scan``.

Starts the whole cluster as processes on free ports (redis-server, the simulator with about 11,000
tickers and 50 ms per request, fetcher, ``--replicas`` compute replicas, ranker, gateway), then
measures full-universe scans through ``Scanner.Scan``:

* first start: nothing cached at all, ticker details fetched for the prefilter's survivors (<= 10 s);
* cold: no bars cached (Redis emptied of everything but the universe, fetcher restarted) (<= 3 s);
* warm: raw days cached, the scan asked again with ``refresh`` (<= 150 ms);
* repeated: the identical scan, p50 of many (<= 3 ms), and scans/s with 50 concurrent clients;
* incremental: the simulator advances one session, the scan is asked again (<= 400 ms).

Each figure comes with the scan's per-stage seconds and beside the old design measured in the same
run: one request per ticker, a DataFrame per answer, pandas indicators per symbol, timed on a
``--sample`` of the prefiltered symbols and scaled to all of them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import grpc
import httpx
import numpy as np
import orjson
import redis
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.compute import pandas_loop
from bench.fetcher import free_port, naive_cold, process, wait_port, warm_simulator
from gateway.views import after_prefilter
from services.common.channels import make_channel
from services.fetcher.settings import SIMULATOR_API_KEY
from technic.v1 import scan_pb2, scanner_pb2, scanner_pb2_grpc

UNIVERSE_KEYS = b"technic:universe:*"


def wait_serving(port: int, timeout: float = 600.0) -> None:
    """Poll grpc.health.v1 until the process on ``port`` is SERVING."""
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            with contextlib.suppress(grpc.RpcError):
                reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            time.sleep(0.2)
    raise TimeoutError(f"port {port} not SERVING after {timeout} s")


async def scan(stub: scanner_pb2_grpc.ScannerStub, options: scan_pb2.ScanOptions,
               refresh: bool = False) -> tuple[float, scan_pb2.ScanResult]:
    start = time.perf_counter()
    result = None
    async for event in stub.Scan(scanner_pb2.ScanRequest(options=options, refresh=refresh), timeout=600):
        if event.HasField("result"):
            result = event.result
    assert result is not None
    return time.perf_counter() - start, result


def naive_seconds(http: httpx.Client, symbols: list[str], as_of: str, lookback: int) -> float:
    """The old design on ``symbols``: per-ticker requests, DataFrames, pandas indicators per symbol."""
    start = time.perf_counter()
    first = str(np.datetime64(as_of) - int(lookback * 1.5))
    frames = naive_cold(http, symbols, first, as_of)
    panel = np.full((len(frames), lookback, 5), np.nan)
    for i, frame in enumerate(frames):
        values = frame.to_numpy()[-lookback:] if len(frame) else np.empty((0, 5))
        panel[i, lookback - len(values):] = values
    pandas_loop(panel)
    scores = sorted(((np.nanmean(panel[i, -20:, 3]), s) for i, s in enumerate(symbols)), reverse=True)
    assert len(scores) == len(symbols)
    return time.perf_counter() - start


def report(name: str, seconds: float, reference: float, target: float, result: scan_pb2.ScanResult | None) -> None:
    verdict = "ok" if seconds <= target else "MISSED"
    print(f"{name:<22} {seconds * 1000:10.1f} ms   old design {reference:9.1f} s   ratio {reference / seconds:10.1f}x"
          f"   target <= {target * 1000:.0f} ms {verdict}")
    if result is not None:
        stages = ", ".join(f"{k} {v * 1000:.0f}" for k, v in sorted(result.stage_seconds.items(),
                                                                    key=lambda kv: -kv[1]))
        acc = result.accounting
        print(f"{'':<22} ranked {acc.ranked} of {acc.requested}, as of {result.as_of}, cached {result.cached}; "
              f"stages (ms): {stages}")


async def concurrent_rate(stub: scanner_pb2_grpc.ScannerStub, options: scan_pb2.ScanOptions, clients: int,
                          seconds: float) -> float:
    done = 0
    stop = time.perf_counter() + seconds

    async def client() -> None:
        nonlocal done
        while time.perf_counter() < stop:
            await scan(stub, options)
            done += 1

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return done / (time.perf_counter() - start)


async def run(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="technic-bench-scan-"))
    exe = shutil.which("redis-server")
    if exe is None:
        raise SystemExit("redis-server is not installed: run `make setup`")
    ports = {name: free_port() for name in ("redis", "sim", "fetcher", "ranker", "gateway", "http")}
    compute_ports = [free_port() for _ in range(args.replicas)]
    redis_url = f"redis://127.0.0.1:{ports['redis']}/0"
    base = {"REDIS_URL": redis_url, "TECHNIC_LOG_LEVEL": "warning", "TECHNIC_LOG_FORMAT": "json"}
    sim_env = {**base, "TECHNIC_MARKETSIM_PORT": str(ports["sim"]), "TECHNIC_MARKETSIM_N_TICKERS": str(args.tickers),
               "TECHNIC_MARKETSIM_FAULTS": orjson.dumps({"latency_ms": args.latency_ms}).decode()}
    fetcher_env = {**base, "TECHNIC_FETCHER_PORT": str(ports["fetcher"]), "TECHNIC_FETCHER_LATEST_TTL": "0.5",
                   "POLYGON_BASE_URL": f"http://127.0.0.1:{ports['sim']}"}
    gateway_env = {**base, "TECHNIC_GATEWAY_PORT": str(ports["gateway"]),
                   "TECHNIC_GATEWAY_HTTP_PORT": str(ports["http"]), "TECHNIC_GATEWAY_HTTP_HOST": "127.0.0.1",
                   "TECHNIC_FETCHER_TARGET": f"127.0.0.1:{ports['fetcher']}",
                   "TECHNIC_RANKER_TARGET": f"127.0.0.1:{ports['ranker']}",
                   "TECHNIC_COMPUTE_TARGET": "ipv4:" + ",".join(f"127.0.0.1:{p}" for p in compute_ports),
                   "TECHNIC_GATEWAY_AS_OF_TTL_SECONDS": "0.5"}
    python = sys.executable
    with contextlib.ExitStack() as stack:
        stack.enter_context(process([exe, "--port", str(ports["redis"]), "--save", "", "--appendonly", "no",
                                     "--dir", str(work)], {}, work / "redis.log"))
        stack.enter_context(process([python, "-m", "services.marketsim"], sim_env, work / "marketsim.log"))
        for i, port in enumerate(compute_ports):
            stack.enter_context(process([python, "-m", "services.compute"], {**base, "TECHNIC_COMPUTE_PORT": str(port)},
                                        work / f"compute-{i}.log"))
        stack.enter_context(process([python, "-m", "services.ranker"], {**base, "TECHNIC_RANKER_PORT":
                                                                        str(ports["ranker"])}, work / "ranker.log"))
        fetcher = stack.enter_context(contextlib.ExitStack())
        fetcher.enter_context(process([python, "-m", "services.fetcher"], fetcher_env, work / "fetcher.log"))
        stack.enter_context(process([python, "-m", "gateway"], gateway_env, work / "gateway.log"))
        wait_port(ports["redis"])
        wait_port(ports["sim"])
        for port in (ports["fetcher"], ports["ranker"], *compute_ports, ports["gateway"]):
            wait_serving(port)
        http = stack.enter_context(httpx.Client(base_url=f"http://127.0.0.1:{ports['sim']}", timeout=120,
                                                headers={"Authorization": f"Bearer {SIMULATOR_API_KEY}"}))
        print(f"cluster up: {args.tickers} tickers at {args.latency_ms} ms per request, {args.replicas} compute "
              f"replicas; logs in {work}")
        options = scan_pb2.ScanOptions(limit=100)
        channel = make_channel(f"127.0.0.1:{ports['gateway']}")
        stub = scanner_pb2_grpc.ScannerStub(channel)

        first_s, first = await scan(stub, options, refresh=True)
        today = first.as_of
        await warm_simulator(f"http://127.0.0.1:{ports['sim']}", today, options.lookback_days or 262)

        # Reference: the old per-symbol design on a sample of the scanned symbols, scaled to all.
        scanned = after_prefilter(first.accounting)
        sample = [r.symbol for r in first.rows][: args.sample]
        reference = naive_seconds(http, sample, today, 260) * max(scanned, 1) / len(sample)
        report("first start", first_s, reference, 10.0, first)

        # Cold: keep only the universe reference in Redis and restart the fetcher (its memory too).
        client = redis.Redis.from_url(redis_url)
        keep = set(client.scan_iter(match=UNIVERSE_KEYS))
        drop = [k for k in client.scan_iter(match=b"technic:*") if k not in keep]
        if drop:
            client.delete(*drop)
        fetcher.close()
        fetcher.enter_context(process([python, "-m", "services.fetcher"], fetcher_env, work / "fetcher-2.log"))
        wait_serving(ports["fetcher"])
        await asyncio.sleep(0.6)
        cold_s, cold = await scan(stub, options, refresh=True)
        report("cold full scan", cold_s, reference, 3.0, cold)

        warm = [await scan(stub, options, refresh=True) for _ in range(3)]
        warm_s = statistics.median(s for s, _ in warm)
        report("warm full scan", warm_s, reference, 0.150, warm[-1][1])

        await scan(stub, options)
        repeated = sorted([(await scan(stub, options))[0] for _ in range(args.repeat)])
        report("repeated (p50)", repeated[len(repeated) // 2], reference, 0.003, None)
        rate = await concurrent_rate(stub, options, 50, 3.0)
        print(f"{'repeated, 50 clients':<22} {rate:10.0f} scans/s   target >= 3000 scans/s "
              f"{'ok' if rate >= 3000 else 'MISSED'}")

        http.post("/admin/advance", json={"sessions": 1}).raise_for_status()
        await asyncio.sleep(0.6)  # past the gateway's and the fetcher's latest-session caches
        new_s, new = await scan(stub, options)
        assert new.as_of > today, f"the new session was not picked up ({new.as_of})"
        report("incremental", new_s, reference, 0.400, new)
        await channel.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.scan", description=__doc__.split("\n")[0])
    parser.add_argument("--tickers", type=int, default=11_000)
    parser.add_argument("--replicas", type=int, default=2, help="compute replicas (4 on a 4-CPU host)")
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--sample", type=int, default=50)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
