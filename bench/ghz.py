"""A ghz-style gRPC load client: ``python -m bench.ghz --call technic.v1.Scanner/GetScan -d '{...}' HOST:PORT``.

It speaks ghz's flags and prints ghz's summary (or its JSON / CSV), for any unary or
server-streaming RPC of the cluster. Methods are resolved from the committed protos (``technic.v1``
and the health service) or, failing that, by server reflection. With ``--cpus N`` the load comes from
N worker processes, so that on a small machine the client is not the bottleneck it measures.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import importlib
import io
import math
import multiprocessing
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import orjson
from google.protobuf import descriptor_pool, json_format, message_factory
from google.protobuf.descriptor import MethodDescriptor

PROTO_MODULES = ("common", "fetcher", "compute", "scan", "ranker", "scanner")
PERCENTILES = (10, 25, 50, 75, 90, 95, 99)
HISTOGRAM_BUCKETS = 10
BAR_WIDTH = 40


@dataclass
class Options:
    target: str
    call: str
    data: list[dict[str, Any]]
    metadata: list[tuple[str, str]]
    concurrency: int
    total: int
    duration: float
    rps: float
    connections: int
    cpus: int
    timeout: float
    insecure: bool
    cacert: bytes


@dataclass
class Results:
    """Raw outcome of a run: one latency (ns) and one status per request, plus error texts."""

    latencies_ns: list[int] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    wall_ns: int = 0

    def merge(self, other: Results) -> None:
        self.latencies_ns += other.latencies_ns
        self.statuses += other.statuses
        self.errors.update(other.errors)
        self.wall_ns = max(self.wall_ns, other.wall_ns)


def _load_committed_protos() -> None:
    for name in PROTO_MODULES:
        importlib.import_module(f"technic.v1.{name}_pb2")
    importlib.import_module("grpc_health.v1.health_pb2")


def resolve_method(call: str, target: str) -> MethodDescriptor:
    """The descriptor of ``package.Service/Method`` (or ``package.Service.Method``)."""
    service_name, _, method_name = call.replace("/", ".").rpartition(".")
    _load_committed_protos()
    pool = descriptor_pool.Default()
    try:
        return pool.FindServiceByName(service_name).FindMethodByName(method_name)
    except (KeyError, AttributeError):
        pass
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
        ProtoReflectionDescriptorDatabase,
    )

    channel = grpc.insecure_channel(target)
    reflected = descriptor_pool.DescriptorPool(ProtoReflectionDescriptorDatabase(channel))
    try:
        method = reflected.FindServiceByName(service_name).FindMethodByName(method_name)
    except KeyError:
        raise SystemExit(f"unknown call {call!r}: not in the committed protos nor listed by reflection") from None
    except grpc.RpcError as exc:
        raise SystemExit(
            f"unknown call {call!r}: not in the committed protos, and reflection at {target} failed: {exc.code().name}"
        ) from None
    finally:
        channel.close()
    if method is None:
        raise SystemExit(f"service {service_name} has no method {method_name}")
    return method


def _requests(method: MethodDescriptor, data: list[dict[str, Any]]) -> list[bytes]:
    request_class = message_factory.GetMessageClass(method.input_type)
    try:
        return [json_format.ParseDict(item, request_class()).SerializeToString() for item in data or [{}]]
    except json_format.ParseError as exc:
        raise SystemExit(f"-d does not fit {method.input_type.full_name}: {exc}") from None


async def _run_async(opts: Options, share_total: int, share_concurrency: int, share_rps: float) -> Results:
    method = resolve_method(opts.call, opts.target)
    payloads = _requests(method, opts.data)
    path = f"/{method.containing_service.full_name}/{method.name}"
    if opts.insecure:
        channels = [
            grpc.aio.insecure_channel(opts.target, options=[("grpc.use_local_subchannel_pool", 1)])
            for _ in range(max(opts.connections, 1))
        ]
    else:
        credentials = grpc.ssl_channel_credentials(opts.cacert)
        channels = [grpc.aio.secure_channel(opts.target, credentials) for _ in range(max(opts.connections, 1))]
    identity = bytes
    stubs = [
        (
            ch.unary_stream(path, request_serializer=identity, response_deserializer=identity)
            if method.server_streaming
            else ch.unary_unary(path, request_serializer=identity, response_deserializer=identity)
        )
        for ch in channels
    ]
    results = Results()
    issued = 0
    started = time.perf_counter_ns()
    deadline = started + int(opts.duration * 1e9) if opts.duration > 0 else 0
    interval_ns = int(1e9 / share_rps) if share_rps > 0 else 0

    async def worker(index: int) -> None:
        nonlocal issued
        stub = stubs[index % len(stubs)]
        while True:
            now = time.perf_counter_ns()
            if (share_total and issued >= share_total) or (deadline and now >= deadline):
                return
            number = issued
            issued += 1
            if interval_ns:
                wait = started + number * interval_ns - now
                if wait > 0:
                    await asyncio.sleep(wait / 1e9)
            payload = payloads[number % len(payloads)]
            begin = time.perf_counter_ns()
            try:
                if method.server_streaming:
                    async for _ in stub(payload, metadata=opts.metadata, timeout=opts.timeout):
                        pass
                else:
                    await stub(payload, metadata=opts.metadata, timeout=opts.timeout)
                status = "OK"
            except grpc.aio.AioRpcError as exc:
                status = _status_name(exc.code())
                results.errors[f"rpc error: code = {status} desc = {exc.details()}"] += 1
            results.latencies_ns.append(time.perf_counter_ns() - begin)
            results.statuses.append(status)

    await asyncio.gather(*(worker(i) for i in range(share_concurrency)))
    results.wall_ns = time.perf_counter_ns() - started
    for channel in channels:
        await channel.close()
    return results


def _status_name(code: grpc.StatusCode) -> str:
    return "".join(part.capitalize() for part in code.name.split("_")) if code != grpc.StatusCode.OK else "OK"


def _run_share(args: tuple[Options, int, int, float]) -> Results:
    opts, total, concurrency, rps = args
    return asyncio.run(_run_async(opts, total, concurrency, rps))


def run(opts: Options) -> Results:
    """Run the load, split over ``opts.cpus`` processes; returns the merged raw results."""
    cpus = max(1, min(opts.cpus, opts.concurrency))
    shares = []
    for i in range(cpus):
        total = opts.total // cpus + (1 if i < opts.total % cpus else 0) if opts.total else 0
        concurrency = opts.concurrency // cpus + (1 if i < opts.concurrency % cpus else 0)
        shares.append((opts, total, concurrency, opts.rps / cpus))
    if cpus == 1:
        return _run_share(shares[0])
    merged = Results()
    with multiprocessing.get_context("spawn").Pool(cpus) as pool:
        for part in pool.map(_run_share, shares):
            merged.merge(part)
    return merged


def report(results: Results) -> dict[str, Any]:
    """ghz's JSON report: durations in nanoseconds, histogram marks in seconds (as ghz writes them)."""
    latencies = np.asarray(results.latencies_ns, dtype=np.int64)
    count = int(latencies.size)
    total = int(results.wall_ns)
    out: dict[str, Any] = {
        "count": count,
        "total": total,
        "average": int(latencies.mean()) if count else 0,
        "fastest": int(latencies.min()) if count else 0,
        "slowest": int(latencies.max()) if count else 0,
        "rps": count / (total / 1e9) if total else 0.0,
        "errorDistribution": dict(results.errors),
        "statusCodeDistribution": dict(Counter(results.statuses)),
        "latencyDistribution": [],
        "histogram": [],
    }
    if count:
        out["latencyDistribution"] = [
            {"percentage": p, "latency": int(np.percentile(latencies, p, method="lower"))} for p in PERCENTILES
        ]
        fastest, slowest = out["fastest"], out["slowest"]
        step = (slowest - fastest) / HISTOGRAM_BUCKETS if slowest > fastest else 1.0
        edges = [fastest + step * i for i in range(HISTOGRAM_BUCKETS + 1)]
        counts, _ = np.histogram(latencies, bins=edges if slowest > fastest else 1)
        marks = edges[:HISTOGRAM_BUCKETS] if slowest > fastest else [fastest]
        out["histogram"] = [
            {"mark": mark / 1e9, "count": int(n), "frequency": float(n) / count}
            for mark, n in zip(marks, counts, strict=True)
        ]
    return out


def _ms(ns: float) -> str:
    return f"{ns / 1e6:.2f} ms"


def format_summary(rep: dict[str, Any]) -> str:
    lines = [
        "",
        "Summary:",
        f"  Count:\t{rep['count']}",
        f"  Total:\t{_ms(rep['total'])}",
        f"  Slowest:\t{_ms(rep['slowest'])}",
        f"  Fastest:\t{_ms(rep['fastest'])}",
        f"  Average:\t{_ms(rep['average'])}",
        f"  Requests/sec:\t{rep['rps']:.2f}",
        "",
        "Response time histogram:",
    ]
    biggest = max((b["count"] for b in rep["histogram"]), default=0)
    for bucket in rep["histogram"]:
        bar = "∎" * (math.ceil(bucket["count"] * BAR_WIDTH / biggest) if biggest and bucket["count"] else 0)
        lines.append(f"  {bucket['mark'] * 1e3:.3f} [{bucket['count']}]\t|{bar}")
    lines += ["", "Latency distribution:"]
    lines += [f"  {p['percentage']} % in {_ms(p['latency'])} " for p in rep["latencyDistribution"]]
    lines += ["", "Status code distribution:"]
    lines += [f"  [{code}]\t{n} responses" for code, n in sorted(rep["statusCodeDistribution"].items())]
    if rep["errorDistribution"]:
        lines += ["", "Error distribution:"]
        lines += [f"  [{n}]\t{text}" for text, n in sorted(rep["errorDistribution"].items(), key=lambda kv: -kv[1])]
    return "\n".join(lines) + "\n"


def format_csv(results: Results) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["duration (ms)", "status", "error"])
    for latency, status in zip(results.latencies_ns, results.statuses, strict=True):
        writer.writerow([f"{latency / 1e6:.3f}", status, "" if status == "OK" else status])
    return buffer.getvalue()


def parse_args(argv: list[str] | None = None) -> tuple[Options, str]:
    parser = argparse.ArgumentParser(prog="python -m bench.ghz", description=__doc__.split("\n\n")[0])
    parser.add_argument("target", help="host:port")
    parser.add_argument("--call", required=True, help="package.Service/Method")
    parser.add_argument("-d", "--data", default="{}", help="request as JSON; an array is sent round-robin")
    parser.add_argument("-m", "--metadata", default="{}", help="request metadata as a JSON object")
    parser.add_argument("-c", "--concurrency", type=int, default=50)
    parser.add_argument("-n", "--total", type=int, default=200, help="requests in all (0 with -z: no cap)")
    parser.add_argument("-z", "--duration", type=float, default=0.0, help="seconds to run (overrides -n)")
    parser.add_argument("--rps", type=float, default=0.0, help="requests per second in all (0: no limit)")
    parser.add_argument("--connections", type=int, default=1)
    parser.add_argument("--cpus", type=int, default=1, help="worker processes generating the load")
    parser.add_argument("-t", "--timeout", type=float, default=20.0, help="per-request deadline, seconds")
    parser.add_argument("--insecure", action="store_true", default=True, help="plaintext (the default)")
    parser.add_argument("--cacert", default="", help="CA certificate (PEM) for TLS; implies not --insecure")
    parser.add_argument("-O", "--format", choices=("summary", "json", "csv"), default="summary")
    args = parser.parse_args(argv)
    if args.concurrency < 1 or args.total < 0 or (args.total == 0 and args.duration <= 0):
        parser.error("need -c >= 1 and either -n > 0 or -z > 0")
    data = orjson.loads(args.data)
    metadata = orjson.loads(args.metadata)
    opts = Options(
        target=args.target,
        call=args.call,
        data=data if isinstance(data, list) else [data],
        metadata=[(str(k).lower(), str(v)) for k, v in metadata.items()],
        concurrency=args.concurrency,
        total=0 if args.duration > 0 else args.total,
        duration=args.duration,
        rps=args.rps,
        connections=args.connections,
        cpus=args.cpus,
        timeout=args.timeout,
        insecure=not args.cacert,
        cacert=Path(args.cacert).read_bytes() if args.cacert else b"",
    )
    return opts, args.format


def main(argv: list[str] | None = None) -> int:
    opts, fmt = parse_args(argv)
    results = run(opts)
    if fmt == "csv":
        sys.stdout.write(format_csv(results))
    elif fmt == "json":
        sys.stdout.write(orjson.dumps(report(results), option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        sys.stdout.write(format_summary(report(results)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
