"""Load: 50 HTTP and 50 gRPC clients mixing new and cached scans, no error, no memory growth.

The fast subset runs 10 s, the reliability suite 60 s. Latency percentiles are printed (and kept in
the run folder as load.json) for the README; nothing here asserts a time.
"""

from __future__ import annotations

import asyncio
import random
import time

import grpc
import httpx
import numpy as np
import orjson
import psutil
import pytest

from technic.v1 import scan_pb2, scanner_pb2, scanner_pb2_grpc
from tests.reliability.conftest import API_KEYS, SupervisedCluster, run_scan

HTTP_CLIENTS = 50
GRPC_CLIENTS = 50
NEW_EVERY = 10  # one request in ten is a scan nobody asked before (a watchlist of three names)
WARM_UP_SHARE = 0.25
MAX_GROWTH = 1.10
PROCESSES = ("gateway", "fetcher", "ranker", "compute:compute-1", "compute:compute-2")


def _rss(cluster: SupervisedCluster) -> dict[str, int]:
    return {name: psutil.Process(cluster.pid(name)).memory_info().rss for name in PROCESSES}


async def _load(cluster: SupervisedCluster, seconds: float, symbols: list[str]) -> dict:
    stop_at = time.monotonic() + seconds
    latencies: dict[str, list[float]] = {"http cached": [], "http new": [], "grpc cached": [], "grpc new": []}
    errors: list[str] = []
    memory: dict[str, dict[str, int]] = {}

    def watchlist(rng: random.Random) -> list[str]:
        return rng.sample(symbols, 3)

    async def http_client(index: int, client: httpx.AsyncClient) -> None:
        rng = random.Random(index)
        headers = {"X-API-Key": API_KEYS[10 + index]}
        n = 0
        while time.monotonic() < stop_at:
            n += 1
            new = n % NEW_EVERY == index % NEW_EVERY
            body = {"universe": watchlist(rng), "limit": 10} if new else {"limit": 20}
            t = time.perf_counter()
            try:
                response = await client.post("/v1/scan", json=body, headers=headers)
                ok = response.status_code == 200 and response.json()["results"] is not None
                if not ok:
                    errors.append(f"http {response.status_code}: {response.text[:200]}")
            except httpx.HTTPError as exc:
                errors.append(f"http {exc!r}")
            latencies["http new" if new else "http cached"].append(time.perf_counter() - t)

    async def grpc_client(index: int, stub: scanner_pb2_grpc.ScannerStub) -> None:
        rng = random.Random(1000 + index)
        n = 0
        while time.monotonic() < stop_at:
            n += 1
            new = n % NEW_EVERY == index % NEW_EVERY
            options = scan_pb2.ScanOptions(universe=watchlist(rng), limit=10) if new else scan_pb2.ScanOptions(limit=20)
            t = time.perf_counter()
            try:
                results = [
                    e
                    async for e in stub.Scan(scanner_pb2.ScanRequest(options=options), timeout=120)
                    if e.HasField("result")
                ]
                if len(results) != 1:
                    errors.append("grpc: no result")
            except grpc.aio.AioRpcError as exc:
                errors.append(f"grpc {exc.code().name}: {exc.details()}")
            latencies["grpc new" if new else "grpc cached"].append(time.perf_counter() - t)

    async def sample_memory() -> None:
        await asyncio.sleep(seconds * WARM_UP_SHARE)
        memory["warm"] = _rss(cluster)
        await asyncio.sleep(max(0.0, stop_at - time.monotonic()))
        memory["end"] = _rss(cluster)

    channels = [
        grpc.aio.insecure_channel(cluster.target, options=[("grpc.use_local_subchannel_pool", 1)]) for _ in range(5)
    ]
    async with httpx.AsyncClient(
        base_url=cluster.http, timeout=120, limits=httpx.Limits(max_connections=HTTP_CLIENTS)
    ) as client:
        await asyncio.gather(
            sample_memory(),
            *(http_client(i, client) for i in range(HTTP_CLIENTS)),
            *(grpc_client(i, scanner_pb2_grpc.ScannerStub(channels[i % len(channels)])) for i in range(GRPC_CLIENTS)),
        )
    for channel in channels:
        await channel.close()
    return {"latencies": latencies, "errors": errors, "memory": memory}


@pytest.mark.parametrize("seconds", [10.0, pytest.param(60.0, marks=pytest.mark.reliability)])
def test_mixed_load_without_errors_or_memory_growth(cluster: SupervisedCluster, seconds: float) -> None:
    _, full = run_scan(cluster.target, scan_pb2.ScanOptions(limit=10_000), refresh=False)
    symbols = [r.symbol for r in full.rows]
    run_scan(cluster.target, scan_pb2.ScanOptions(limit=20), refresh=False)  # the cached scan is cached
    assert (
        httpx.post(
            f"{cluster.http}/v1/scan", json={"limit": 20}, headers={"X-API-Key": API_KEYS[10]}, timeout=120
        ).status_code
        == 200
    )

    report = asyncio.run(_load(cluster, seconds, symbols))

    assert report["errors"] == [], report["errors"][:20]
    figures = {
        kind: {
            "requests": len(values),
            "p50_ms": round(float(np.percentile(values, 50)) * 1000, 1),
            "p99_ms": round(float(np.percentile(values, 99)) * 1000, 1),
        }
        for kind, values in report["latencies"].items()
        if values
    }
    growth = {name: round(report["memory"]["end"][name] / report["memory"]["warm"][name], 3) for name in PROCESSES}
    summary = {
        "seconds": seconds,
        "load_average": psutil.getloadavg(),
        "figures": figures,
        "rss_growth": growth,
        "rss_mb_end": {k: round(v / 2**20) for k, v in report["memory"]["end"].items()},
    }
    (cluster.run_dir / f"load-{int(seconds)}s.json").write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
    print(orjson.dumps(summary).decode())
    assert all(f["requests"] > 0 for f in figures.values()) and len(figures) == 4, figures
    assert all(g <= MAX_GROWTH for g in growth.values()), growth
