"""Market simulator benchmark: ``python -m bench.marketsim``.

Measures the simulator on the default market (about 11,000 tickers, 800 sessions):

* server time to build one grouped-daily day (about 10,400 rows), Numba row writer + envelope,
  beside serialising the same day as per-row dicts with ``json.dumps`` (the naive way) and with
  ``orjson.dumps`` (a fast library on the same dicts), as ratios (budget: < 20 ms a day);
* server time to answer a day already built (LRU hit: request id + bytes);
* grouped-daily requests per second from 16 concurrent httpx clients against the real server
  process (the days cycle over 20 cached sessions), beside the ceiling of a naive server that
  runs ``json.dumps`` per request (1 / its serialisation time), as a ratio; the server's own
  request count (``/admin/stats``) is checked against the client's.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import psutil

from bench.fetcher import free_port
from bench.timing import median_seconds
from services.common.settings import PROJECT_ROOT
from services.marketsim.market import Market, MarketConfig, default_cache_dir, load_market
from services.marketsim.polygon import PolygonApi

API_KEY = "bench-key"
DAYS = 20
BUDGET_MS = 20.0
WARM_SESSIONS = 260  # the server's default: days built in the background after start
QUERY = {"adjusted": "false", "include_otc": "true"}  # what the fetcher asks for


def _ms(fn: Callable[[], object], repeat: int) -> float:
    return median_seconds(fn, repeat) * 1000.0


def naive_rows(market: Market, index: int) -> list[dict[str, object]]:
    """One dict per ticker, the way a straightforward server builds a grouped-daily answer."""
    rows = []
    end_ms = int(market.session_end_ms[index])
    for i, ticker in enumerate(market.tickers.tolist()):
        close = float(market.close[index, i])
        if close != close:
            continue
        row: dict[str, object] = {
            "T": ticker,
            "v": float(market.volume[index, i]),
            "vw": float(market.vwap[index, i]),
            "o": float(market.open[index, i]),
            "c": close,
            "h": float(market.high[index, i]),
            "l": float(market.low[index, i]),
            "t": end_ms,
            "n": int(market.trades[index, i]),
        }
        if market.ref["market"][i] == "otc":
            row["otc"] = True
        rows.append(row)
    return rows


def naive_body(market: Market, index: int, dumps: Callable[[object], str | bytes]) -> bytes:
    """The whole grouped-daily answer from per-row dicts, serialised by ``dumps``."""
    rows = naive_rows(market, index)
    body = dumps(
        {
            "queryCount": len(rows),
            "resultsCount": len(rows),
            "adjusted": False,
            "results": rows,
            "status": "OK",
            "request_id": "x",
        }
    )
    return body.encode() if isinstance(body, str) else body


def start_server(port: int, config: MarketConfig, cache: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TECHNIC_")}
    env.update(
        {
            "TECHNIC_MARKETSIM_PORT": str(port),
            "TECHNIC_MARKETSIM_API_KEY": API_KEY,
            "TECHNIC_MARKETSIM_N_TICKERS": str(config.n_tickers),
            "TECHNIC_MARKETSIM_HISTORY_SESSIONS": str(config.history_sessions),
            "TECHNIC_MARKETSIM_TODAY": str(config.today),
            "TECHNIC_MARKETSIM_CACHE_DIR": str(cache),
            "TECHNIC_LOG_LEVEL": "warning",
        }
    )
    return subprocess.Popen([sys.executable, "-m", "services.marketsim"], cwd=PROJECT_ROOT, env=env)


def wait_health(url: str, proc: subprocess.Popen[bytes], timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the simulator exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/health", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise TimeoutError("the simulator did not become healthy")


async def load(url: str, days: list[str], clients: int, seconds: float) -> tuple[int, int, int, list[float]]:
    """``clients`` concurrent request loops for ``seconds``: (ok, errors, bytes, latencies in s)."""
    ok = errors = size = 0
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(
        base_url=url, limits=limits, timeout=30, headers={"Authorization": f"Bearer {API_KEY}"}
    ) as client:
        stop = time.monotonic() + seconds

        async def worker(offset: int) -> None:
            nonlocal ok, errors, size
            k = offset
            while time.monotonic() < stop:
                started = time.perf_counter()
                reply = await client.get(
                    f"/v2/aggs/grouped/locale/us/market/stocks/{days[k % len(days)]}",
                    params=QUERY,
                )
                latencies.append(time.perf_counter() - started)
                if reply.status_code == 200:
                    ok += 1
                    size += len(reply.content)
                else:
                    errors += 1
                k += 1

        await asyncio.gather(*(worker(i) for i in range(clients)))
    return ok, errors, size, latencies


def build_figures(market: Market, indices: list[int]) -> dict[str, Any]:
    """Server-side time to build a grouped day (median over ``indices``) and to answer a built one (s)."""
    days = [market.session_date(i).isoformat() for i in indices]
    api = PolygonApi(market)
    api.grouped_daily(days[0], QUERY)  # compiles the row writer
    rows = len(api.grouped_rows(indices[-1], False, True)[0])
    build = statistics.median(_ms(partial(api.build_grouped, i, False, True), 3) for i in indices)
    reference = statistics.median(_ms(partial(naive_body, market, i, json.dumps), 1) for i in indices[:5])
    fast_lib = statistics.median(_ms(partial(naive_body, market, i, orjson.dumps), 1) for i in indices[:5])
    hit = _ms(lambda: api.grouped_daily(days[-1], QUERY), 200)
    return {
        "rows": rows,
        "build_day": {
            "seconds": build / 1000,
            "reference": reference / 1000,
            "reference_name": "json.dumps per-row dicts",
            "orjson_reference": fast_lib / 1000,
        },
        "answer_cached_day": {
            "seconds": hit / 1000,
            "reference": reference / 1000,
            "reference_name": "json.dumps per-row dicts",
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--n-tickers", type=int, default=11_000)
    parser.add_argument("--today", type=dt.date.fromisoformat, default=dt.date(2026, 11, 13))
    parser.add_argument("--json", action="store_true", help="print the build figures as JSON (no server run)")
    args = parser.parse_args()

    cache = default_cache_dir()
    config = MarketConfig(n_tickers=args.n_tickers, today=args.today)
    started = time.perf_counter()
    market = load_market(config, cache)
    print(
        f"market: {len(market.tickers)} tickers x {len(market.sessions)} sessions, today {market.today}, "
        f"loaded in {time.perf_counter() - started:.2f} s (generated on first use, then memory-mapped)"
    )
    indices = list(range(market.today_index - DAYS + 1, market.today_index + 1))
    days = [market.session_date(i).isoformat() for i in indices]

    build = build_figures(market, indices)
    rows, hit = build["rows"], build["answer_cached_day"]["seconds"] * 1000.0
    build_ms, reference = build["build_day"]["seconds"] * 1000.0, build["build_day"]["reference"] * 1000.0
    fast_lib = build["build_day"]["orjson_reference"] * 1000.0
    if args.json:
        sys.stdout.write(orjson.dumps(build).decode() + "\n")
        return

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_server(port, config, cache)
    try:
        wait_health(url, proc)
        healthy = time.perf_counter()
        while httpx.get(f"{url}/health").json()["warmed"] < WARM_SESSIONS:
            time.sleep(0.05)
        warm_seconds = time.perf_counter() - healthy
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=30) as client:
            for day in days:
                assert client.get(f"/v2/aggs/grouped/locale/us/market/stocks/{day}", params=QUERY).status_code == 200
            single = _ms(
                lambda: (
                    client.get(
                        f"/v2/aggs/grouped/locale/us/market/stocks/{days[-1]}",
                        params=QUERY,
                    ).content
                ),
                50,
            )
            before = int(client.get("/admin/stats").json()["requests"].get("grouped", 0))
        server = psutil.Process(proc.pid)
        cpu_before = server.cpu_times()
        ok, errors, size, latencies = asyncio.run(load(url, days, args.clients, args.seconds))
        cpu_after = server.cpu_times()
        server_cpu = (cpu_after.user + cpu_after.system - cpu_before.user - cpu_before.system) / max(ok, 1) * 1000
        after = int(httpx.get(f"{url}/admin/stats").json()["requests"].get("grouped", 0))
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)

    rps = ok / args.seconds
    naive_rps = 1000.0 / reference
    lat = np.array(latencies) * 1000.0
    print(f"\ngrouped daily, {rows} rows a day ({len(days)} sessions)")
    print(
        f"  build one day (server, cold)   {build_ms:8.2f} ms   json.dumps per-row dicts {reference:8.2f} ms   "
        f"ratio {reference / build_ms:6.1f}x faster   (orjson per-row dicts {fast_lib:.2f} ms, "
        f"{fast_lib / build_ms:.1f}x)   budget < {BUDGET_MS:.0f} ms: {'met' if build_ms < BUDGET_MS else 'MISSED'}"
    )
    print(
        f"  answer a cached day (server)   {hit:8.3f} ms   vs building it with json.dumps              "
        f"ratio {reference / hit:6.0f}x faster"
    )
    print(f"  one HTTP request, one client   {single:8.2f} ms (client-observed, {size / max(ok, 1) / 1e6:.2f} MB)")
    print(
        f"  {args.clients} concurrent clients          {rps:8.1f} req/s  naive json.dumps server ceiling "
        f"{naive_rps:6.1f} req/s   ratio {rps / naive_rps:6.1f}x   "
        f"(p50 {np.percentile(lat, 50):.1f} ms, p99 {np.percentile(lat, 99):.1f} ms, "
        f"{size / args.seconds / 1e6:.0f} MB/s, errors {errors})"
    )
    print(
        f"  server CPU per request         {server_cpu:8.2f} ms (user + system, under load): about "
        f"{1000 / max(server_cpu, 1e-3):.0f} req/s per core; the Python client, on the same cores, is the limit"
    )
    print(
        f"  background warm-up of {WARM_SESSIONS} days {warm_seconds:6.2f} s after /health "
        f"({warm_seconds / WARM_SESSIONS * 1000:.1f} ms a day, while serving)"
    )
    print(f"  server counted {after - before} grouped requests for {ok + errors} sent; exit code on SIGTERM {code}")


if __name__ == "__main__":
    main()
