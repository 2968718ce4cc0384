"""Fetcher benchmark: ``python -m bench.fetcher``.

Starts a redis-server, the market simulator (about 11,000 tickers, 50 ms per request) and the
fetcher, then measures through gRPC:

* cold prefetch: 6,000 symbols x 260 sessions, nothing cached (target <= 2.5 s);
* warm panel build: the same request again, raw sessions cached (target <= 100 ms);
* one new session: the simulator advances one session, the request is repeated (target <= 300 ms).

Each figure is printed beside the old design's way of doing the same work, measured in the same
run on a 100-symbol sample and scaled to 6,000: one request per ticker, sequentially, each answer
parsed into a pandas DataFrame (cold), one pickled DataFrame per symbol read back from Redis
(warm), one request per ticker for the new bar (new session).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import pickle
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import numpy as np
import orjson
import pandas as pd
import redis

from services.common.channels import make_channel
from services.common.settings import PROJECT_ROOT
from services.fetcher.calendar import TradingCalendar
from services.fetcher.settings import SIMULATOR_API_KEY
from technic.v1 import fetcher_pb2, fetcher_pb2_grpc

SAMPLE = 100
GROUPED_PARAMS = {"adjusted": "false", "include_otc": "true"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on port {port} after {timeout} s")


@contextlib.contextmanager
def process(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as handle:
        proc = subprocess.Popen(
            args, cwd=PROJECT_ROOT, env={**os.environ, **env}, stdout=handle, stderr=subprocess.STDOUT
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


async def prefetch(
    stub: fetcher_pb2_grpc.FetcherStub, symbols: list[str], lookback: int, as_of: str = ""
) -> fetcher_pb2.PrefetchResponse:
    async def requests() -> AsyncIterator[fetcher_pb2.PrefetchRequest]:
        yield fetcher_pb2.PrefetchRequest(
            header=fetcher_pb2.PrefetchHeader(scan_id="bench", lookback=lookback, as_of=as_of)
        )
        for lo in range(0, len(symbols), 1000):
            yield fetcher_pb2.PrefetchRequest(batch=fetcher_pb2.SymbolBatch(symbols=symbols[lo : lo + 1000]))

    final = None
    async for reply in stub.Prefetch(requests(), timeout=600):
        if reply.done:
            final = reply
    assert final is not None, "Prefetch ended without its final message"
    return final


async def warm_simulator(url: str, today: str, n: int) -> None:
    days = TradingCalendar().window(np.datetime64(today), n)
    headers = {"Authorization": f"Bearer {SIMULATOR_API_KEY}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=120) as http:
        gate = asyncio.Semaphore(16)

        async def one(day: np.datetime64) -> None:
            async with gate:
                await http.get(f"/v2/aggs/grouped/locale/us/market/stocks/{day}", params=GROUPED_PARAMS)

        await asyncio.gather(*(one(d) for d in days))


def naive_cold(http: httpx.Client, symbols: list[str], start: str, end: str) -> list[pd.DataFrame]:
    """The old design: one request per ticker, one after the other, a DataFrame per answer."""
    frames = []
    for symbol in symbols:
        body = orjson.loads(
            http.get(
                f"/v2/aggs/ticker/{symbol}/range/1/day/{start}/{end}",
                params={"adjusted": "true", "sort": "asc", "limit": 50000},
            ).content
        )
        frame = pd.DataFrame(body.get("results") or [])
        if not frame.empty:
            frame["date"] = pd.to_datetime(frame["t"], unit="ms")
            frame = frame.set_index("date")[["o", "h", "l", "c", "v"]]
        frames.append(frame)
    return frames


def naive_warm(client: redis.Redis, symbols: list[str], frames: list[pd.DataFrame], n_sessions: int) -> float:
    """The old design's cache: a pickled DataFrame per symbol, read back and stacked one by one (seconds)."""
    for symbol, frame in zip(symbols, frames, strict=True):
        client.set(f"technic:bench:naive:{symbol}", pickle.dumps(frame))
    start = time.perf_counter()
    rows = []
    for symbol in symbols:
        frame = pickle.loads(client.get(f"technic:bench:naive:{symbol}"))
        values = np.full((n_sessions, 5), np.nan, dtype=np.float32)
        tail = frame.to_numpy(dtype=np.float32)[-n_sessions:]
        if len(tail):
            values[-len(tail) :] = tail
        rows.append(values)
    np.stack(rows)
    return time.perf_counter() - start


def line(name: str, seconds: float, reference: float, target: float, extra: str = "") -> None:
    verdict = "ok" if seconds <= target else "MISSED"
    print(
        f"{name:<28} {seconds * 1000:10.1f} ms   old design {reference:10.2f} s   "
        f"ratio {reference / seconds:9.1f}x   target <= {target * 1000:.0f} ms {verdict}"
        f"{'   ' + extra if extra else ''}"
    )


def counters(reply: fetcher_pb2.PrefetchResponse) -> dict[str, float]:
    """The fetcher's own request counters and phase seconds for one Prefetch."""
    return {
        **{k: float(v) for k, v in reply.stats.counters.items()},
        **{f"{k}_seconds": float(v) for k, v in reply.stats.seconds.items()},
    }


def counters_text(c: dict[str, float]) -> str:
    phases = ", ".join(f"{k[:-8]} {v * 1000:.0f} ms" for k, v in sorted(c.items()) if k.endswith("_seconds"))
    return (
        f"requests {c.get('requests', 0):.0f}, retries {c.get('retries', 0):.0f}, "
        f"{c.get('bytes', 0) / 1e6:.0f} MB, cache hits {c.get('cache_hits', 0):.0f}; {phases}"
    )


def polygon_requests(http: httpx.Client) -> int:
    """Polygon requests the simulator has answered so far (``/admin/stats``; admin calls are not counted)."""
    return int(http.get("/admin/stats").json()["total"])


def advance_session(http: httpx.Client, cache_ttl: float) -> None:
    """The simulator moves on one session; wait past the latest-session caches: a value is trusted for
    ``cache_ttl`` seconds after the probe that found it, and a probe takes a few round trips."""
    http.post("/admin/advance", json={"sessions": 1}).raise_for_status()
    time.sleep(cache_ttl + 0.3)


def top_symbols(http: httpx.Client, n: int) -> tuple[str, list[str]]:
    """The simulator's latest session and its ``n`` most traded names (asked directly, the fetcher stays cold)."""
    today = str(np.datetime64(time.time_ns() // 86_400_000_000_000, "D"))
    for _ in range(30):
        body = orjson.loads(
            http.get(f"/v2/aggs/grouped/locale/us/market/stocks/{today}", params=GROUPED_PARAMS).content
        )
        if body.get("results"):
            break
        today = str(np.datetime64(today) - 1)
    rows = body["results"]
    dollar = np.array([r["c"] * r["v"] for r in rows])
    return today, [rows[i]["T"] for i in np.argsort(-dollar)[:n]]


async def measure(
    fetcher_target: str, http: httpx.Client, redis_url: str, symbols: list[str], lookback: int, cache_ttl: float
) -> dict[str, dict[str, object]]:
    """Cold prefetch (the fetcher must be cold), warm panel build (median of 5), one new session appended.

    Each figure comes with the old design's time for the same work, measured on a 100-symbol sample
    and scaled to ``symbols``; the simulator advances one session on the way.
    """
    async with make_channel(fetcher_target) as channel:
        stub = fetcher_pb2_grpc.FetcherStub(channel)
        start = time.perf_counter()
        cold = await prefetch(stub, symbols, lookback)
        cold_s = time.perf_counter() - start
        warm_runs = []
        for _ in range(5):
            start = time.perf_counter()
            warm = await prefetch(stub, symbols, lookback)
            warm_runs.append(time.perf_counter() - start)
        advance_session(http, cache_ttl)
        start = time.perf_counter()
        new = await prefetch(stub, symbols, lookback)
        new_s = time.perf_counter() - start
        if new.as_of <= cold.as_of:
            raise RuntimeError(f"the new session was not picked up ({new.as_of} vs {cold.as_of})")

    sample = symbols[:SAMPLE]
    scale = len(symbols) / len(sample)
    # Calendar days spanning the lookback (252 sessions a year).
    start_day = str(np.datetime64(cold.as_of) - int(lookback * 365 / 252) - 5)
    start = time.perf_counter()
    frames = naive_cold(http, sample, start_day, cold.as_of)
    naive_cold_s = (time.perf_counter() - start) * scale
    client = redis.Redis.from_url(redis_url)
    naive_warm_s = naive_warm(client, sample, frames, lookback) * scale
    client.delete(*(f"technic:bench:naive:{s}" for s in sample))
    client.close()
    start = time.perf_counter()
    naive_cold(http, sample, new.as_of, new.as_of)
    naive_new_s = (time.perf_counter() - start) * scale
    return {
        "cold": {
            "seconds": cold_s,
            "reference": naive_cold_s,
            "reference_name": "per-ticker requests",
            "target": 2.5,
            "counters": counters(cold),
        },
        "warm": {
            "seconds": statistics.median(warm_runs),
            "min": min(warm_runs),
            "max": max(warm_runs),
            "reference": naive_warm_s,
            "reference_name": "pickled DataFrame per symbol",
            "target": 0.1,
            "counters": counters(warm),
        },
        "append": {
            "seconds": new_s,
            "reference": naive_new_s,
            "reference_name": "per-ticker requests",
            "target": 0.3,
            "counters": counters(new),
        },
    }


async def run(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="technic-bench-fetcher-"))
    redis_port, sim_port, fetcher_port = free_port(), free_port(), free_port()
    exe = shutil.which("redis-server")
    if exe is None:
        raise SystemExit("redis-server is not installed: run `make setup`")
    sim_env = {
        "TECHNIC_MARKETSIM_PORT": str(sim_port),
        "TECHNIC_MARKETSIM_N_TICKERS": str(args.tickers),
        "TECHNIC_MARKETSIM_FAULTS": orjson.dumps({"latency_ms": args.latency_ms}).decode(),
        "TECHNIC_LOG_LEVEL": "warning",
    }
    redis_url = f"redis://127.0.0.1:{redis_port}/0"
    fetcher_env = {
        "TECHNIC_FETCHER_PORT": str(fetcher_port),
        "POLYGON_BASE_URL": f"http://127.0.0.1:{sim_port}",
        "REDIS_URL": redis_url,
        "TECHNIC_FETCHER_LATEST_TTL": "0.5",
        "TECHNIC_LOG_LEVEL": "warning",
    }
    with contextlib.ExitStack() as stack:
        stack.enter_context(
            process(
                [exe, "--port", str(redis_port), "--save", "", "--appendonly", "no", "--dir", str(work)],
                {},
                work / "redis.log",
            )
        )
        stack.enter_context(process([sys.executable, "-m", "services.marketsim"], sim_env, work / "marketsim.log"))
        wait_port(redis_port)
        wait_port(sim_port)
        http = stack.enter_context(
            httpx.Client(
                base_url=f"http://127.0.0.1:{sim_port}",
                timeout=60,
                headers={"Authorization": f"Bearer {SIMULATOR_API_KEY}"},
            )
        )
        stack.enter_context(process([sys.executable, "-m", "services.fetcher"], fetcher_env, work / "fetcher.log"))
        wait_port(fetcher_port)
        today, symbols = top_symbols(http, args.symbols)
        print(
            f"simulator: latest session {today}, {args.latency_ms} ms per request; "
            f"{len(symbols)} symbols x {args.lookback} sessions"
        )
        # The simulator builds each session's body on first request; build them all now so that it is
        # not the bottleneck it simulates.
        await warm_simulator(f"http://127.0.0.1:{sim_port}", today, args.lookback + 2)
        figures = await measure(f"127.0.0.1:{fetcher_port}", http, redis_url, symbols, args.lookback, 0.5)

    print(f"{'':<28} {'fetcher':>13}")
    for name, key in (("cold prefetch", "cold"), ("warm panel build", "warm"), ("one new session appended", "append")):
        f = figures[key]
        line(name, f["seconds"], f["reference"], f["target"], counters_text(f["counters"]))  # type: ignore[arg-type]
    shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tickers", type=int, default=11_000)
    parser.add_argument("--symbols", type=int, default=6_000)
    parser.add_argument("--lookback", type=int, default=260)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
