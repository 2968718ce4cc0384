"""Compute benchmark: features + both models for 6,000 x 260 on one thread, and explain for 50.

``python -m bench.compute`` builds a 6,000-symbol, 260-session panel from the simulated market
(as the fetcher would), then prints, each beside a reference measured in the same run:

- features + both models (the Score path, one Numba and one XGBoost thread) vs a TA-Lib per-symbol
  loop and a pandas per-symbol loop computing the same indicators (the references cover indicators
  only, so the ratios understate the gap);
- explain (pred_contribs) for 50 symbols vs the same for all 6,000.
"""

from __future__ import annotations

import os

os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import datetime as dt
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import orjson
import pandas as pd
import talib

from bench.timing import runs
from services.compute.features import SymbolState, score_features, warm_up
from services.compute.models import AlphaModels
from services.compute.settings import ComputeSettings
from services.marketsim.market import MarketConfig, load_market

N, SESSIONS = 6000, 260


def best_of(fn: Callable[[], object], repeat: int) -> float:
    """Wall seconds: the best of fewer than 3 runs, else the median."""
    times = runs(fn, repeat)
    return min(times) if repeat < 3 else statistics.median(times)


def cpu_of(fn: Callable[[], object], repeat: int) -> float:
    """The least thread CPU seconds over ``repeat`` runs: what the work costs when the machine is busy."""
    return min(runs(fn, repeat, time.thread_time))


def talib_loop(panel: np.ndarray) -> None:
    for r in range(panel.shape[0]):
        _o, h, lo, c, v = (panel[r, :, k].astype(np.float64) for k in range(5))
        for n in (10, 20, 50, 100, 200):
            talib.SMA(c, n)
        talib.EMA(c, 20), talib.EMA(c, 50), talib.RSI(c, 14), talib.MACD(c, 12, 26, 9)
        talib.BBANDS(c, 20, 2, 2, 0), talib.ATR(h, lo, c, 14), talib.ADX(h, lo, c, 14)
        talib.PLUS_DI(h, lo, c, 14), talib.MINUS_DI(h, lo, c, 14), talib.STOCH(h, lo, c, 14, 3, 0, 3, 0)
        talib.CCI(h, lo, c, 20), talib.WILLR(h, lo, c, 14), talib.OBV(c, v), talib.MAX(h, 252), talib.MIN(lo, 252)
        talib.ROCP(c, 10)


def pandas_indicators(bars: np.ndarray) -> list[pd.Series]:
    """The old design's indicators for one symbol's (sessions, 5) bars, a pandas DataFrame at a time."""
    df = pd.DataFrame(bars.astype(np.float64), columns=["open", "high", "low", "close", "volume"])
    c, h, lo, v = df["close"], df["high"], df["low"], df["volume"]
    out = [c.rolling(n).mean() for n in (10, 20, 50, 100, 200)]
    out += [c.ewm(span=20, adjust=False).mean(), c.ewm(span=50, adjust=False).mean()]
    d = c.diff()
    out.append(d.clip(lower=0).ewm(alpha=1 / 14, adjust=False).mean() / (-d.clip(upper=0)).ewm(alpha=1 / 14).mean())
    macd = c.ewm(span=12, adjust=False).mean() - c.ewm(span=26, adjust=False).mean()
    out += [macd, macd.ewm(span=9, adjust=False).mean(), c.rolling(20).std(ddof=0)]
    tr = pd.concat([h - lo, (h - c.shift()).abs(), (lo - c.shift()).abs()], axis=1).max(axis=1)
    atr = tr.ewm(alpha=1 / 14, adjust=False).mean()
    up, dn = h.diff(), -lo.diff()
    pdi = 100 * up.where((up > dn) & (up > 0), 0).ewm(alpha=1 / 14, adjust=False).mean() / atr
    mdi = 100 * dn.where((dn > up) & (dn > 0), 0).ewm(alpha=1 / 14, adjust=False).mean() / atr
    out += [atr, pdi, mdi, (100 * (pdi - mdi).abs() / (pdi + mdi)).ewm(alpha=1 / 14, adjust=False).mean()]
    hh, ll = h.rolling(14).max(), lo.rolling(14).min()
    k = (100 * (c - ll) / (hh - ll)).rolling(3).mean()
    out += [k, k.rolling(3).mean(), -100 * (hh - c) / (hh - ll)]
    tp = (h + lo + c) / 3
    out.append(tp.rolling(20).apply(lambda x: np.abs(x - x.mean()).mean(), raw=True))
    out += [(np.sign(d) * v).cumsum(), h.rolling(252).max(), lo.rolling(252).min(), c.pct_change(10)]
    return out


def pandas_loop(panel: np.ndarray) -> None:
    for r in range(panel.shape[0]):
        pandas_indicators(panel[r])


def figures() -> dict[str, Any]:
    """Every figure of this benchmark (seconds), with its references."""
    market = load_market(MarketConfig(n_tickers=11_000, history_sessions=400, today=dt.date(2026, 11, 13)))
    adj = market.adjusted(market.today_index)
    rows = slice(market.today_index - SESSIONS + 1, market.today_index + 1)
    tickers = np.flatnonzero(np.isfinite(adj["close"][market.today_index]))[:N]
    panel = np.stack([adj[f][rows][:, tickers] for f in ("open", "high", "low", "close", "volume")], axis=2)
    panel = np.ascontiguousarray(panel.transpose(1, 0, 2), dtype=np.float32)
    warm_up()
    models = AlphaModels.load(ComputeSettings().model_dir, threads=1)

    def score() -> np.ndarray:
        pf = score_features(panel)
        models.score(pf.features, pf.states == SymbolState.OK)
        return pf.features

    feats = score()
    # Run for a second before timing: on this machine's virtual CPUs the first ~10 runs of a freshly
    # started process take ~1.6x as long (CPU time, not waiting), whatever the kernel.
    until = time.perf_counter() + 1.0
    while time.perf_counter() < until:
        score()
    pf = score_features(panel)
    ok = pf.states == SymbolState.OK
    load_before = os.getloadavg()[0]
    t_feat = best_of(lambda: score_features(panel), 15)
    t_predict = best_of(lambda: models.score(pf.features, ok), 15)
    t_score = best_of(score, 15)
    c_feat = cpu_of(lambda: score_features(panel), 7)
    c_predict = cpu_of(lambda: models.score(pf.features, ok), 7)
    sub = panel[:500]
    t_talib = best_of(lambda: talib_loop(sub), 1) * panel.shape[0] / sub.shape[0]
    t_pandas = best_of(lambda: pandas_loop(panel[:100]), 1) * panel.shape[0] / 100
    top = feats[:50]
    t_explain = best_of(lambda: models.explain(top, top_k=5), 5)
    t_explain_all = best_of(lambda: models.explain(feats, top_k=5), 1)
    return {
        "symbols": int(panel.shape[0]),
        "sessions": SESSIONS,
        "load_average": {"before": load_before, "after": os.getloadavg()[0]},
        "features": {"seconds": t_feat, "cpu_seconds": c_feat},
        "predict": {"seconds": t_predict, "cpu_seconds": c_predict, "rows": int(ok.sum())},
        "score": {
            "seconds": t_score,
            "reference": t_talib,
            "reference_name": "TA-Lib per-symbol loop",
            "pandas_reference": t_pandas,
        },
        "explain_50": {"seconds": t_explain, "reference": t_explain_all, "reference_name": "explain all"},
    }


def main() -> None:
    f = figures()
    t_feat, t_score, t_explain = f["features"]["seconds"], f["score"]["seconds"], f["explain_50"]["seconds"]
    t_talib, t_pandas, t_explain_all = (
        f["score"]["reference"],
        f["score"]["pandas_reference"],
        f["explain_50"]["reference"],
    )
    if "--json" in sys.argv[1:]:
        sys.stdout.write(orjson.dumps(f).decode() + "\n")
        return
    print(f"compute bench: {f['symbols']:,} symbols x {SESSIONS} sessions, 1 Numba + 1 XGBoost thread")
    load, feat, pred = f["load_average"], f["features"], f["predict"]
    print(f"  load average {load['before']:.2f} before, {load['after']:.2f} after (2 cores)")
    print(f"  features only                 {t_feat * 1e3:8.1f} ms   (least CPU {feat['cpu_seconds'] * 1e3:.1f} ms)")
    print(
        f"  both models ({pred['rows']:,} rows)      {pred['seconds'] * 1e3:8.1f} ms   "
        f"(least CPU {pred['cpu_seconds'] * 1e3:.1f} ms)"
    )
    print(f"  features + both models        {t_score * 1e3:8.1f} ms   (budget 60 ms)")
    print(
        f"  TA-Lib per-symbol loop        {t_talib * 1e3:8.1f} ms   ratio {t_talib / t_score:6.1f}x "
        "(extrapolated from 500 symbols, indicators only)"
    )
    print(
        f"  pandas per-symbol loop        {t_pandas * 1e3:8.1f} ms   ratio {t_pandas / t_score:6.1f}x "
        "(extrapolated from 100 symbols, indicators only)"
    )
    print(f"  explain 50 symbols            {t_explain * 1e3:8.1f} ms")
    print(
        f"  explain all {f['symbols']:,} symbols      {t_explain_all * 1e3:8.1f} ms   ratio "
        f"{t_explain_all / t_explain:6.1f}x"
    )


if __name__ == "__main__":
    main()
