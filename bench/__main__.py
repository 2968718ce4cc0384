"""The benchmark suite: ``python -m bench`` (``make bench``) measures every performance budget.

It starts the cluster on the simulator (or, with ``--attach``, measures the one ``make up`` runs),
then measures, each beside the old single-process design run in the same session (bench/baseline.py):
first start, cold, warm, repeated and incremental scans (several runs each, with the scan's own
stage seconds, the simulator's request count and the resident memory of every process), the
repeated scan under 50 concurrent clients (bench/ghz.py on ``Scanner/GetScan``), the app's HTTP path
(cached ``POST /v1/scan`` and ``GET /v1/symbol/{t}`` through bench/httpload.py, each beside the gRPC
call doing the same work in the same run), warm scan time
against universe size, the fetcher against the cluster's own simulator, and, once the cluster is
down, compute, ranker and simulator components in their own processes. The report (JSON, Markdown,
PNG charts) goes to ``bench/reports/<timestamp>/``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from bench import scan
from bench.baseline import run_baseline
from bench.fetcher import measure as measure_fetcher
from bench.fetcher import top_symbols
from bench.ghz import format_summary
from bench.report import format_text, write_report
from services.common.settings import PROJECT_ROOT

REPORTS = PROJECT_ROOT / "bench" / "reports"
SIZES = (1_500, 3_000, 6_000, 12_000)
COMPONENTS = {
    "compute": ["bench.compute", "--json"],
    "ranker": ["bench.ranker", "--json"],
    "marketsim": ["bench.marketsim", "--json"],
}


def load_average() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def git_commit() -> str:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True)
    return done.stdout.strip()


def run_module(argv: list[str], timeout: float) -> dict[str, Any]:
    """``python -m <argv>`` in its own process; its stdout (or its last line) is the figures as JSON."""
    done = subprocess.run(
        [sys.executable, "-m", *argv], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=timeout
    )
    if done.returncode != 0:
        return {"error": f"exit {done.returncode}: {done.stderr.strip().splitlines()[-1:]}"}
    try:
        return dict(orjson.loads(done.stdout))
    except orjson.JSONDecodeError:
        return dict(orjson.loads(done.stdout.strip().splitlines()[-1]))


def run_ghz(target: str, fingerprint: str, clients: int, total: int, cpus: int) -> tuple[list[str], dict[str, Any]]:
    """bench.ghz against ``Scanner/GetScan`` of a cached scan: (the command, ghz's JSON report)."""
    data = orjson.dumps({"fingerprint": fingerprint, "limit": 100}).decode()
    argv = [
        "bench.ghz",
        "--call",
        "technic.v1.Scanner/GetScan",
        "-d",
        data,
        "-c",
        str(clients),
        "-n",
        str(total),
        "--cpus",
        str(cpus),
        "-O",
        "json",
        target,
    ]
    return argv, run_module(argv, timeout=600)


def percentile_50(report: dict[str, Any]) -> float | None:
    """The p50 of a ghz-style JSON report, in seconds."""
    for point in report.get("latencyDistribution") or []:
        if point["percentage"] == 50:
            return float(point["latency"]) / 1e9
    return None


def run_http(
    url: str,
    headers: dict[str, str],
    clients: int,
    total: int,
    cpus: int,
    compressed: bool = False,
    method: str = "POST",
    body: str = "",
) -> dict[str, Any]:
    """bench.httpload against ``url``: its JSON report (with the mean body bytes)."""
    argv = ["bench.httpload", "-X", method, "-c", str(clients), "-n", str(total), "--cpus", str(cpus), "-O", "json"]
    if body:
        argv += ["-d", body]
    if compressed:
        argv.append("--compressed")
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    return run_module([*argv, url], timeout=600)


def _ok(report: dict[str, Any]) -> bool:
    """Whether every request of a load report was answered (200 / OK)."""
    statuses = report.get("statusCodeDistribution") or {}
    return "error" not in report and set(statuses) <= {"200", "OK"} and bool(statuses)


def measure_http(cluster: scan.Cluster, fingerprint: str, symbol: str, requests: int) -> dict[str, Any]:
    """The app's HTTP path beside gRPC, measured back to back: cached scan p50 at one client, answers/s
    at 50 clients (plain and gzip), body bytes, the cached symbol page's p50."""
    import grpc

    from services.common.channels import make_sync_channel
    from technic.v1 import scanner_pb2, scanner_pb2_grpc

    base = f"http://127.0.0.1:{cluster.http_port}"
    body = orjson.dumps({"limit": 100}).decode()
    target = f"127.0.0.1:{cluster.gateway_port}"
    out: dict[str, Any] = {"load": load_average()}
    # Every process renders and keeps the answer once (connections are spread over the processes).
    run_http(f"{base}/v1/scan", cluster.http_headers, 50, 500, 2, body=body)
    peers = [pid for name, pid in cluster.pids.items() if name.startswith("gateway-")]
    if peers:
        two = run_http(f"{base}/v1/scan", cluster.http_headers, 50, requests, 2, body=body)
        if _ok(two):
            out["scan_rate_two"] = two["rps"]
        for pid in peers:  # the rest is measured on one process, the first
            os.kill(pid, signal.SIGTERM)
        for pid in peers:
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(pid, 0)
    # The symbol page's budget is for its kept answer: asked once (rendered and kept), then measured.
    run_http(f"{base}/v1/symbol/{symbol}", cluster.http_headers, 1, 1, 1, method="GET")
    runs = {
        "scan_p50": run_http(f"{base}/v1/scan", cluster.http_headers, 1, 300, 1, body=body),
        "scan_gzip_p50": run_http(f"{base}/v1/scan", cluster.http_headers, 1, 300, 1, True, body=body),
        "scan_rate": run_http(f"{base}/v1/scan", cluster.http_headers, 50, requests, 2, body=body),
        "scan_gzip_rate": run_http(f"{base}/v1/scan", cluster.http_headers, 50, requests, 2, True, body=body),
        "symbol_p50": run_http(f"{base}/v1/symbol/{symbol}", cluster.http_headers, 1, 300, 1, method="GET"),
    }
    getscan = orjson.dumps({"fingerprint": fingerprint, "limit": 100}).decode()
    getsymbol = orjson.dumps({"symbol": symbol}).decode()
    grpc_runs = {
        "getscan_p50": run_module(
            [
                "bench.ghz",
                "--call",
                "technic.v1.Scanner/GetScan",
                "-d",
                getscan,
                "-c",
                "1",
                "-n",
                "300",
                "-O",
                "json",
                target,
            ],
            timeout=600,
        ),
        "getscan_rate": run_module(
            [
                "bench.ghz",
                "--call",
                "technic.v1.Scanner/GetScan",
                "-d",
                getscan,
                "-c",
                "50",
                "-n",
                str(requests),
                "--cpus",
                "2",
                "-O",
                "json",
                target,
            ],
            timeout=600,
        ),
        "getsymbol_p50": run_module(
            [
                "bench.ghz",
                "--call",
                "technic.v1.Scanner/GetSymbol",
                "-d",
                getsymbol,
                "-c",
                "1",
                "-n",
                "300",
                "-O",
                "json",
                target,
            ],
            timeout=600,
        ),
    }
    for key, report in {**runs, **grpc_runs}.items():
        if not _ok(report):
            out.setdefault("errors", {})[key] = report.get("error") or report.get("statusCodeDistribution")
            continue
        out[key] = report["rps"] if key.endswith("_rate") else percentile_50(report)
    for key, source in (("scan_bytes", "scan_p50"), ("scan_gzip_bytes", "scan_gzip_p50")):
        if _ok(runs[source]):
            out[key] = runs[source]["bodyBytes"]
    with make_sync_channel(target) as channel, contextlib.suppress(grpc.RpcError):
        page = scanner_pb2_grpc.ScannerStub(channel).GetScan(
            scanner_pb2.GetScanRequest(fingerprint=fingerprint, limit=100), timeout=30
        )
        out["getscan_bytes"] = page.ByteSize()
    out["load_after"] = load_average()
    return out


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


async def measure_cluster(args: argparse.Namespace, figures: dict[str, Any]) -> None:
    """Everything that needs the cluster: scans, baseline, ghz, sweep, fetcher."""
    cluster_cm = (
        scan.attached_cluster(args.latency_ms)
        if args.attach
        else scan.local_cluster(args.tickers, args.replicas, args.latency_ms, gateways=args.gateways)
    )
    with cluster_cm as cluster, scan.sim_client(cluster) as http:
        log(f"cluster: {cluster.description}")
        runs = {"cold": args.runs, "warm": args.warm_runs, "repeated": args.repeat, "incremental": args.runs}
        figures.update(await scan.measure(cluster, http, runs))
        log(f"scans measured ({figures['symbols_scanned']:,} symbols); baseline on {args.sample} symbols")
        as_of = figures.get("as_of_latest", figures["as_of"])
        sample = figures.pop("sample_symbols")
        figures["baseline"] = run_baseline(http, sample[: args.sample], as_of)

        argv, ghz = run_ghz(f"127.0.0.1:{cluster.gateway_port}", figures["fingerprint"], 50, args.ghz_requests, 2)
        figures["ghz_command"] = "python -m " + " ".join(argv)
        figures["ghz"] = ghz
        if "error" not in ghz:
            figures["ghz_summary"] = format_summary(ghz)
            figures["repeated_rate"] = ghz["rps"]
        if cluster.http_port and sample:
            log("the app's HTTP path beside gRPC")
            figures["http"] = measure_http(cluster, figures["fingerprint"], sample[0], args.ghz_requests)
            figures["http"]["processes"] = args.gateways
        log("ghz done; universe-size sweep")

        figures["sweep"] = await scan.sweep(cluster, http, list(args.sizes), args.sweep_runs)
        if not args.skip_fetcher:
            log("fetcher against the cluster's simulator")
            scan.flush_bars(cluster.redis_url)
            cluster.restart_fetcher()
            _, symbols = top_symbols(http, 6000)
            figures.setdefault("components", {})["fetcher"] = await measure_fetcher(
                f"127.0.0.1:{cluster.fetcher_port}", http, cluster.redis_url, symbols, 260, cluster.cache_ttl
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--attach", action="store_true", help="measure the cluster `make up` runs")
    parser.add_argument("--tickers", type=int, default=11_000)
    parser.add_argument(
        "--replicas",
        type=int,
        default=min(4, os.cpu_count() or 2),
        help="compute replicas (default: one per CPU, at most 4)",
    )
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--runs", type=int, default=3, help="cold and incremental scans")
    parser.add_argument("--warm-runs", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=200, help="repeated scans for the p50")
    parser.add_argument("--sample", type=int, default=100, help="symbols the old design is measured on")
    parser.add_argument("--ghz-requests", type=int, default=5000)
    parser.add_argument(
        "--gateways",
        type=int,
        default=1,
        help="gateway processes sharing the ports (the HTTP lines are per process at 1)",
    )
    parser.add_argument("--sizes", type=lambda v: [int(x) for x in v.split(",")], default=list(SIZES))
    parser.add_argument("--sweep-runs", type=int, default=3)
    parser.add_argument("--skip-fetcher", action="store_true", help="leave out the fetcher component figures")
    parser.add_argument(
        "--components",
        default=",".join(COMPONENTS),
        help="component benchmarks run after the cluster is down (comma list, '' for none)",
    )
    parser.add_argument("--out", type=Path, default=REPORTS)
    args = parser.parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so every process the suite started is stopped on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    started = dt.datetime.now().astimezone()
    figures: dict[str, Any] = {
        "environment": {
            "started": started.isoformat(timespec="seconds"),
            "cpus": os.cpu_count(),
            "load_before": load_average(),
            "tickers": args.tickers,
            "latency_ms": args.latency_ms,
            "replicas": args.replicas,
            "attached": args.attach,
            "commit": git_commit(),
            "python": sys.version.split()[0],
        }
    }
    clock = time.perf_counter()
    asyncio.run(measure_cluster(args, figures))
    for name in filter(None, args.components.split(",")):
        log(f"component: {name}")
        figures.setdefault("components", {})[name] = run_module(COMPONENTS[name], timeout=600)
    compute = figures.get("components", {}).get("compute", {})
    if "score" in compute:
        figures["compute"] = compute["score"]["seconds"]
    figures["environment"]["load_after"] = load_average()
    figures["environment"]["suite_seconds"] = time.perf_counter() - clock
    folder = args.out / started.strftime("%Y%m%d-%H%M%S")
    paths = write_report(figures, folder)
    print()
    print(format_text(figures))
    print(
        f"\nreport written to {folder} ({', '.join(p.name for p in paths.values())}) "
        f"in {figures['environment']['suite_seconds']:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
