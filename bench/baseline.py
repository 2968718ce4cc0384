"""The old single-process design, the reference every figure of the suite is compared with.

One process, no cache, one symbol at a time: a per-ticker Polygon aggregates request to the
simulator (sequential, a DataFrame per answer), the indicators in pandas, the model input row for
that symbol, then one model call per row for each shipped XGBoost model, and a final sort. It is
measured on a sample of the symbols the cluster scanned, in the same session, and reported per
symbol, so that it scales to any universe size by multiplication (which is what the old design did).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import httpx
import numpy as np

from bench.compute import pandas_indicators
from bench.fetcher import naive_cold, polygon_requests
from services.compute.features import SymbolState, score_features
from services.compute.models import AlphaModels
from services.compute.settings import ComputeSettings

STAGES = ("fetch", "indicators", "features", "models", "rank")
FIELDS = 5


def load_models() -> AlphaModels:
    """The shipped models, one thread each (the old design scored in its one process)."""
    return AlphaModels.load(ComputeSettings().model_dir, threads=1)


def _bars(frame: Any, lookback: int) -> np.ndarray:
    values = frame.to_numpy(dtype=np.float32)[-lookback:] if len(frame) else np.empty((0, FIELDS), np.float32)
    bars = np.full((lookback, FIELDS), np.nan, dtype=np.float32)
    if len(values):
        bars[lookback - len(values) :] = values
    return bars


def run_baseline(
    http: httpx.Client, symbols: Sequence[str], as_of: str, lookback: int = 260, models: AlphaModels | None = None
) -> dict[str, Any]:
    """Scan ``symbols`` the old way against the simulator behind ``http``; seconds in all, per stage, per symbol."""
    if not symbols:
        raise ValueError("the baseline needs at least one symbol")
    models = models or load_models()
    first_day = str(np.datetime64(as_of) - int(lookback * 365 / 252) - 5)
    stages = dict.fromkeys(STAGES, 0.0)
    requests_before = polygon_requests(http)
    scores: list[tuple[float, str]] = []
    started = time.perf_counter()
    for symbol in symbols:
        t0 = time.perf_counter()
        (frame,) = naive_cold(http, [symbol], first_day, as_of)
        bars = _bars(frame, lookback)
        t1 = time.perf_counter()
        pandas_indicators(bars)
        t2 = time.perf_counter()
        computed = score_features(bars[np.newaxis])
        t3 = time.perf_counter()
        row = np.ascontiguousarray(computed.features[:1], dtype=np.float32)
        alpha = (
            [float(m.booster.inplace_predict(row, missing=np.nan)[0]) for m in models.models]
            if computed.states[0] == SymbolState.OK
            else [float("nan")]
        )
        t4 = time.perf_counter()
        scores.append((float(np.nanmean(alpha)) if np.isfinite(alpha).any() else float("-inf"), symbol))
        stages["fetch"] += t1 - t0
        stages["indicators"] += t2 - t1
        stages["features"] += t3 - t2
        stages["models"] += t4 - t3
    t5 = time.perf_counter()
    scores.sort(reverse=True)
    stages["rank"] = time.perf_counter() - t5
    seconds = time.perf_counter() - started
    n = len(symbols)
    return {
        "symbols": n,
        "seconds": seconds,
        "seconds_per_symbol": seconds / n,
        "stages": stages,
        "stages_per_symbol": {k: v / n for k, v in stages.items()},
        "polygon_requests": polygon_requests(http) - requests_before,
        "scored": sum(1 for s, _ in scores if np.isfinite(s)),
    }
