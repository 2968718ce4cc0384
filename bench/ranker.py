"""Ranker benchmark: cached page reads beside ranking from scratch and a naive per-row ranking.

``python -m bench.ranker`` ranks a synthetic 6,000-symbol universe (12 chunks, the blocks compute
sends), then reads pages of 50 rows from the cached scan. Every figure is printed beside a
reference measured in the same run, as a ratio:

- rank from scratch (decode chunk blocks, rate, score, rank, plan, filter) vs a naive per-row
  Python ranking of the same rows (dicts per symbol, per-row subscores, sorted percentiles);
- cached page read p50 (domain + ScanResult message, process-memory cache) vs rank from scratch,
  for a page read before (first read: its rows are built) and a page read again;
- the same page over a real gRPC loopback call (GetResults on a grpc.aio server in this process).
"""

from __future__ import annotations

import asyncio
import bisect
import math
import statistics
import sys
import time
from typing import Any

import grpc
import numpy as np
import orjson

from bench.timing import median_seconds
from services.contract.styles import SUBSCORES, style_for
from services.ranker import convert, rating
from services.ranker.cache import ScanCache
from services.ranker.core import Ranker
from services.ranker.engine import RankConfig, RankInput, ScanSpec, rank_scan
from services.ranker.rank import FilterSpec, PageSpec
from services.ranker.result import Issues
from services.ranker.scoring import WinProbCalibration
from services.ranker.service import RankerService
from technic.v1 import ranker_pb2, ranker_pb2_grpc
from tests.ranker.synthetic import FEATURES, Universe, benchmark_closes, synthetic_universe

N = 6000
PAGE = 50
CALIBRATION = WinProbCalibration.from_table(
    "alpha_10d", "bench", [-9.0, -1.0, -0.25, 0.25, 1.0, 9.0], [0.40, 0.47, 0.51, 0.55, 0.62]
)


def scratch(u: Universe, inp: RankInput, config: RankConfig) -> object:
    return rank_scan(inp, u.decoded(), config)


def naive_rank(u: Universe, style_name: str) -> list[tuple[str, float]]:
    """The per-symbol way: one dict per symbol, Python arithmetic per component, sorted percentiles."""
    style = style_for(style_name)
    rows = []
    for chunk in u.decoded():
        for r, symbol in enumerate(chunk.symbols):
            if chunk.states[r] != "ok":
                continue
            f = {name: float(chunk.features.array[r, chunk.features.fields.index(name)]) for name in FEATURES}
            plus, minus = f["plus_di_14"], f["minus_di_14"]
            f["di_balance"] = (plus - minus) / (plus + minus) if plus + minus else math.nan
            f["signed_rel_volume"] = math.copysign(1.0, f["ret_1d"]) * (f["rel_volume_20"] - 1.0)
            f["vol_contraction"] = f["realized_vol_21"] / f["realized_vol_63"]
            subs = {}
            for name, comps in rating.COMPONENTS.items():
                scores = []
                for c in comps:
                    x = f[c.feature]
                    if math.isnan(x):
                        continue
                    if isinstance(c, rating.Ramp):
                        scores.append(min(max((x - c.at0) / (c.at100 - c.at0), 0.0), 1.0) * 100)
                    else:
                        scores.append(min(max(1 - abs(x - c.center) / c.width, 0.0), 1.0) * 100)
                subs[name] = sum(scores) / len(scores) if scores else 50.0
            raw = sum(style.weights[s] * subs[s] for s in SUBSCORES)
            atr = f["atr_14_pct"]
            damp = 1 - 0.5 * min(max((atr - 3) / 7, 0), 1)
            scores_row = chunk.scores.array[r]
            rows.append(
                {
                    "symbol": symbol,
                    "rating": 50 + (raw - 50) * damp,
                    "a5": float(scores_row[0]),
                    "a10": float(scores_row[1]),
                }
            )
    m5, s5 = statistics.fmean(x["a5"] for x in rows), statistics.pstdev(x["a5"] for x in rows)
    m10, s10 = statistics.fmean(x["a10"] for x in rows), statistics.pstdev(x["a10"] for x in rows)
    for x in rows:
        x["alpha"] = style.blend_5d * (x["a5"] - m5) / s5 + (1 - style.blend_5d) * (x["a10"] - m10) / s10
    ratings = sorted(x["rating"] for x in rows)
    alphas = sorted(x["alpha"] for x in rows)
    n = len(rows)
    for x in rows:
        rp = bisect.bisect_left(ratings, x["rating"]) / (n - 1) * 100
        ap = bisect.bisect_left(alphas, x["alpha"]) / (n - 1) * 100
        x["composite"] = 0.65 * rp + 0.35 * ap
    rows.sort(key=lambda x: -x["composite"])
    return [(x["symbol"], x["composite"]) for x in rows]


async def page_reads(ranker: Ranker, fingerprint: str, offsets: list[int]) -> list[float]:
    times = []
    for offset in offsets:
        start = time.perf_counter()
        scan = await ranker.lookup(fingerprint=fingerprint)
        convert.scan_result(
            scan, PageSpec(offset=offset, limit=PAGE), scan_id="bench", cached=True, include_issues=False
        )
        times.append(time.perf_counter() - start)
    return times


async def grpc_reads(ranker: Ranker, fingerprint: str, n: int) -> list[float]:
    server = grpc.aio.server()
    ranker_pb2_grpc.add_RankerServicer_to_server(RankerService(ranker), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    times = []
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = ranker_pb2_grpc.RankerStub(channel)
            request = ranker_pb2.GetResultsRequest(fingerprint=fingerprint, limit=PAGE)
            await stub.GetResults(request)
            for _ in range(n):
                start = time.perf_counter()
                await stub.GetResults(request)
                times.append(time.perf_counter() - start)
    finally:
        await server.stop(None)
    return times


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:9.3f} ms"


async def figures() -> dict[str, Any]:
    """Every figure of this benchmark (seconds), with its references."""
    u = synthetic_universe(N, chunk_size=500)
    style = "Short-term swing"
    inp = RankInput(
        "bench",
        "bench-fp",
        "2026-11-13",
        ScanSpec(style_for(style), FilterSpec(), PageSpec()),
        u.info,
        Issues(),
        N,
        benchmark_closes(),
        {},
        CALIBRATION,
    )
    config = RankConfig()
    scratch(u, inp, config)  # warm imports and caches
    t_scratch = median_seconds(lambda: scratch(u, inp, config), 7)
    t_naive = median_seconds(lambda: naive_rank(u, style), 3)

    ranker = Ranker(config, ScanCache(None, max_scans=4))

    async def chunks():  # type: ignore[no-untyped-def]
        for c in u.decoded():
            yield c

    await ranker.rank(inp, chunks())
    rng = np.random.default_rng(1)
    fresh_offsets = (rng.permutation(N // PAGE - 2) * PAGE).tolist()[:100]
    first = await page_reads(ranker, "bench-fp", fresh_offsets)
    again = await page_reads(ranker, "bench-fp", fresh_offsets * 5)
    over_grpc = await grpc_reads(ranker, "bench-fp", 300)
    return {
        "rank": {"seconds": t_scratch, "reference": t_naive, "reference_name": "naive per-row ranking"},
        "page_read": {
            "seconds": statistics.median(again),
            "reference": t_scratch,
            "reference_name": "rank from scratch",
        },
        "page_first_read": {
            "seconds": statistics.median(first),
            "reference": t_scratch,
            "reference_name": "rank from scratch",
        },
        "page_grpc": {
            "seconds": statistics.median(over_grpc),
            "reference": t_scratch,
            "reference_name": "rank from scratch",
        },
    }


async def main() -> None:
    f = await figures()
    if "--json" in sys.argv[1:]:
        sys.stdout.write(orjson.dumps(f).decode() + "\n")
        return
    t_scratch, t_naive = f["rank"]["seconds"], f["rank"]["reference"]
    p50_again, p50_first, p50_grpc = (
        f["page_read"]["seconds"],
        f["page_first_read"]["seconds"],
        f["page_grpc"]["seconds"],
    )
    print(f"ranker bench: {N} symbols in 12 chunks, pages of {PAGE}")
    print(
        f"  rank from scratch (vectorised)       {ms(t_scratch)}   naive per-row Python {ms(t_naive)}"
        f"   ratio {t_naive / t_scratch:7.1f}x faster"
    )
    print(
        f"  cached page read p50, page read again {ms(p50_again)}   rank from scratch   {ms(t_scratch)}"
        f"   ratio {t_scratch / p50_again:7.1f}x faster   (target <= 3 ms)"
    )
    print(
        f"  cached page read p50, first read      {ms(p50_first)}   rank from scratch   {ms(t_scratch)}"
        f"   ratio {t_scratch / p50_first:7.1f}x faster"
    )
    print(
        f"  GetResults over gRPC loopback p50     {ms(p50_grpc)}   rank from scratch   {ms(t_scratch)}"
        f"   ratio {t_scratch / p50_grpc:7.1f}x faster"
    )


if __name__ == "__main__":
    asyncio.run(main())
