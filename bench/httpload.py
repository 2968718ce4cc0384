"""A ghz-style HTTP load client: ``python -m bench.httpload -X POST -d '{...}' http://HOST:PORT/v1/scan``.

The same flags and the same summary as :mod:`bench.ghz` (count, total, slowest, fastest, average,
requests/s, latency distribution, status codes), for the HTTP API the app calls. Bodies are not
decompressed, so ``--compressed`` (``Accept-Encoding: gzip``) measures the bytes on the wire; the
summary adds the mean body size. With ``--cpus N`` the load comes from N worker processes.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import sys
import time
from dataclasses import dataclass, field

import aiohttp
import orjson

from bench.ghz import Results, format_csv, format_summary, report


@dataclass
class HttpOptions:
    url: str
    method: str
    body: bytes
    headers: dict[str, str]
    concurrency: int
    total: int
    duration: float
    cpus: int
    timeout: float


@dataclass
class HttpResults(Results):
    """Results plus the body bytes of every answer as sent (compressed when the server compressed)."""

    body_bytes: list[int] = field(default_factory=list)

    def merge(self, other: Results) -> None:
        super().merge(other)
        if isinstance(other, HttpResults):
            self.body_bytes += other.body_bytes


async def _run_async(opts: HttpOptions, share_total: int, share_concurrency: int) -> HttpResults:
    results = HttpResults()
    issued = 0
    connector = aiohttp.TCPConnector(limit=share_concurrency, force_close=False)
    timeout = aiohttp.ClientTimeout(total=opts.timeout)
    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, auto_decompress=False, headers=opts.headers
    ) as session:
        started = time.perf_counter_ns()
        deadline = started + int(opts.duration * 1e9) if opts.duration > 0 else 0

        async def worker() -> None:
            nonlocal issued
            while True:
                now = time.perf_counter_ns()
                if (share_total and issued >= share_total) or (deadline and now >= deadline):
                    return
                issued += 1
                begin = time.perf_counter_ns()
                try:
                    async with session.request(opts.method, opts.url, data=opts.body or None) as response:
                        body = await response.read()
                    status = str(response.status)
                    results.body_bytes.append(len(body))
                    if response.status >= 400:
                        results.errors[f"{response.status}: {body[:120].decode(errors='replace')}"] += 1
                except (aiohttp.ClientError, TimeoutError) as exc:
                    status = type(exc).__name__
                    results.errors[repr(exc)[:160]] += 1
                results.latencies_ns.append(time.perf_counter_ns() - begin)
                results.statuses.append(status)

        await asyncio.gather(*(worker() for _ in range(share_concurrency)))
        results.wall_ns = time.perf_counter_ns() - started
    return results


def _run_share(args: tuple[HttpOptions, int, int]) -> HttpResults:
    opts, total, concurrency = args
    return asyncio.run(_run_async(opts, total, concurrency))


def run(opts: HttpOptions) -> HttpResults:
    """Run the load, split over ``opts.cpus`` processes; returns the merged raw results."""
    cpus = max(1, min(opts.cpus, opts.concurrency))
    shares = []
    for i in range(cpus):
        total = opts.total // cpus + (1 if i < opts.total % cpus else 0) if opts.total else 0
        shares.append((opts, total, opts.concurrency // cpus + (1 if i < opts.concurrency % cpus else 0)))
    if cpus == 1:
        return _run_share(shares[0])
    merged = HttpResults()
    with multiprocessing.get_context("spawn").Pool(cpus) as pool:
        for part in pool.map(_run_share, shares):
            merged.merge(part)
    return merged


def http_report(results: HttpResults) -> dict[str, object]:
    """ghz's JSON report plus the mean body size in bytes."""
    out = report(results)
    out["bodyBytes"] = sum(results.body_bytes) / len(results.body_bytes) if results.body_bytes else 0.0
    return out


def parse_args(argv: list[str] | None = None) -> tuple[HttpOptions, str]:
    parser = argparse.ArgumentParser(prog="python -m bench.httpload", description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="http://host:port/path")
    parser.add_argument("-X", "--method", default="GET")
    parser.add_argument("-d", "--data", default="", help="request body (JSON); implies Content-Type JSON")
    parser.add_argument("-H", "--header", action="append", default=[], help="'Name: value', repeatable")
    parser.add_argument("--compressed", action="store_true", help="ask for gzip (Accept-Encoding: gzip)")
    parser.add_argument("-c", "--concurrency", type=int, default=50)
    parser.add_argument("-n", "--total", type=int, default=200, help="requests in all (0 with -z: no cap)")
    parser.add_argument("-z", "--duration", type=float, default=0.0, help="seconds to run (overrides -n)")
    parser.add_argument("--cpus", type=int, default=1, help="worker processes generating the load")
    parser.add_argument("-t", "--timeout", type=float, default=20.0, help="per-request timeout, seconds")
    parser.add_argument("-O", "--format", choices=("summary", "json", "csv"), default="summary")
    args = parser.parse_args(argv)
    if args.concurrency < 1 or args.total < 0 or (args.total == 0 and args.duration <= 0):
        parser.error("need -c >= 1 and either -n > 0 or -z > 0")
    headers = {"Accept": "application/json", "Accept-Encoding": "gzip" if args.compressed else "identity"}
    if args.data:
        headers["Content-Type"] = "application/json"
    for item in args.header:
        name, _, value = item.partition(":")
        headers[name.strip()] = value.strip()
    opts = HttpOptions(
        url=args.url,
        method=args.method.upper(),
        body=args.data.encode(),
        headers=headers,
        concurrency=args.concurrency,
        total=0 if args.duration > 0 else args.total,
        duration=args.duration,
        cpus=args.cpus,
        timeout=args.timeout,
    )
    return opts, args.format


def main(argv: list[str] | None = None) -> int:
    opts, fmt = parse_args(argv)
    results = run(opts)
    if fmt == "csv":
        sys.stdout.write(format_csv(results))
    elif fmt == "json":
        sys.stdout.write(orjson.dumps(http_report(results), option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        rep = http_report(results)
        sys.stdout.write(format_summary(rep) + f"\nMean body size:\t{rep['bodyBytes']:.0f} bytes\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
