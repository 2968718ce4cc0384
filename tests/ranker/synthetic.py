"""A synthetic scored universe in the shape compute answers, for the ranker's tests and bench/.

Each symbol has a latent strength; its features (feature-list names), model scores and price levels
are drawn around it so that ratings, alphas and returns agree in sign the way real data roughly
does. Blocks are encoded with the codec exactly as compute sends them. The Rank messages (header
with its win-probability calibration, then ScoreResponse chunks) are built the way the gateway
sends them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from services.common.codec import decode_block, encode_block
from services.contract.features import FEATURES, LEVEL_FIELDS
from services.ranker.engine import ScoredChunk, SymbolInfo
from services.ranker.scoring import WinProbCalibration
from technic.v1 import common_pb2, compute_pb2, ranker_pb2, scan_pb2

LEVELS: tuple[str, ...] = LEVEL_FIELDS
SECTORS: tuple[str, ...] = (
    "Technology",
    "Health Care",
    "Financials",
    "Industrials",
    "Consumer Discretionary",
    "Energy",
    "Materials",
    "Utilities",
    "Real Estate",
    "Communication Services",
    "Consumer Staples",
)
SPARK = 30
FEATURE_VERSION = "synthetic-1"
MODEL_VERSIONS = {"alpha_5d": "test-5d", "alpha_10d": "test-10d"}
# A win-probability table of alpha_10d as Compute.Describe reports it: bin edges of the prediction,
# P(return > 0) per bin.
WIN_PROB_EDGES = (-1e9, -1.0, -0.25, 0.25, 1.0, 1e9)
WIN_PROB_P_UP = (0.40, 0.47, 0.51, 0.55, 0.62)
CALIBRATION = WinProbCalibration.from_table("alpha_10d", MODEL_VERSIONS["alpha_10d"], WIN_PROB_EDGES, WIN_PROB_P_UP)
STATES = {
    "ok": common_pb2.SYMBOL_STATE_OK,
    "insufficient_history": common_pb2.SYMBOL_STATE_INSUFFICIENT_HISTORY,
    "no_data": common_pb2.SYMBOL_STATE_NO_DATA,
    "stale": common_pb2.SYMBOL_STATE_STALE,
    "error": common_pb2.SYMBOL_STATE_ERROR,
}


@dataclass(frozen=True)
class EncodedChunk:
    """A compute answer as bytes: what a ScoreResponse carries."""

    chunk_index: int
    symbols: tuple[str, ...]
    states: tuple[str, ...]
    features: bytes
    scores: bytes
    levels: bytes
    sparklines: bytes
    feature_version: str = FEATURE_VERSION
    model_versions: dict[str, str] = field(default_factory=lambda: dict(MODEL_VERSIONS))

    def decoded(self) -> ScoredChunk:
        return ScoredChunk(
            self.chunk_index,
            self.symbols,
            self.states,
            decode_block(self.features),
            decode_block(self.scores),
            decode_block(self.levels),
            decode_block(self.sparklines),
            self.feature_version,
            dict(self.model_versions),
        )


@dataclass(frozen=True)
class Universe:
    info: SymbolInfo
    chunks: list[EncodedChunk]

    def decoded(self) -> list[ScoredChunk]:
        return [c.decoded() for c in self.chunks]


def synthetic_universe(
    n: int, seed: int = 7, chunk_size: int = 500, unscored: float = 0.03, n_sectors: int = len(SECTORS)
) -> Universe:
    """``n`` symbols in chunks of ``chunk_size``; about ``unscored`` of them in a non-OK state."""
    rng = np.random.default_rng(seed)
    symbols = np.array([f"S{i:05d}" for i in range(n)], dtype=object)
    strength = rng.normal(size=n)
    noise = lambda scale=1.0: rng.normal(scale=scale, size=n)  # noqa: E731
    vol = np.clip(0.35 + 0.15 * noise(), 0.08, 1.2)
    ret_21d = 0.05 * strength + 0.05 * noise()
    close = np.exp(rng.uniform(np.log(3), np.log(800), size=n))
    atr_pct = np.clip(vol / np.sqrt(252) * 100 * 1.3, 0.3, 15)
    rsi = np.clip(50 + 12 * strength + 8 * noise(), 1, 99)
    f = {
        "ret_1d": 0.01 * strength + 0.02 * noise(),
        "ret_5d": 0.02 * strength + 0.03 * noise(),
        "ret_21d": ret_21d,
        "ret_63d": 2 * ret_21d + 0.05 * noise(),
        "ret_126d": 3 * ret_21d + 0.1 * noise(),
        "ret_252d": 4 * ret_21d + 0.2 * noise(),
        "dist_sma_10": 0.02 * strength + 0.01 * noise(),
        "dist_sma_20": 0.03 * strength + 0.02 * noise(),
        "dist_sma_50": 0.05 * strength + 0.03 * noise(),
        "dist_sma_100": 0.08 * strength + 0.04 * noise(),
        "dist_sma_200": 0.1 * strength + 0.05 * noise(),
        "ema_20_50_spread": 0.02 * strength + 0.01 * noise(),
        "dist_52w_high": -np.abs(0.15 - 0.08 * strength + 0.05 * noise()),
        "dist_52w_low": np.abs(0.3 + 0.15 * strength + 0.1 * noise()),
        "rsi_14": rsi,
        "macd_pct": 0.005 * strength,
        "macd_signal_pct": 0.004 * strength,
        "macd_hist_pct": 0.001 * strength + 0.002 * noise(),
        "bb_pct_b": 0.5 + 0.3 * strength + 0.2 * noise(),
        "bb_width": np.clip(0.15 + 0.05 * noise(), 0.02, 1),
        "atr_14_pct": atr_pct,
        "adx_14": np.clip(25 + 8 * noise(), 5, 70),
        "plus_di_14": np.clip(25 + 6 * strength + 4 * noise(), 1, 80),
        "minus_di_14": np.clip(25 - 6 * strength + 4 * noise(), 1, 80),
        "stoch_k": np.clip(50 + 20 * strength + 10 * noise(), 0, 100),
        "stoch_d": np.clip(50 + 18 * strength + 10 * noise(), 0, 100),
        "cci_20": 80 * strength + 40 * noise(),
        "willr_14": np.clip(-50 + 20 * strength + 10 * noise(), -100, 0),
        "obv_slope_21": 0.2 * strength + 0.2 * noise(),
        "realized_vol_21": vol,
        "realized_vol_63": np.clip(vol * (1 + 0.2 * noise()), 0.05, 2),
        "rel_volume_20": np.exp(0.4 * noise()),
        "log_dollar_volume_20": rng.uniform(6.5, 9.5, size=n),
        "body_pct": np.clip(0.3 * strength + 0.3 * noise(), -1, 1),
        "upper_wick_pct": rng.uniform(0, 0.4, size=n),
        "lower_wick_pct": rng.uniform(0, 0.4, size=n),
        "gap_pct": 0.005 * noise(),
        "roc_10": 0.03 * strength + 0.03 * noise(),
    }
    features = np.column_stack([f[name] for name in FEATURES]).astype(np.float32)
    scores = np.column_stack([0.3 * strength + noise(), 0.3 * strength + noise()]).astype(np.float32)
    prev_close = close / (1 + f["ret_1d"])
    adv = 10 ** f["log_dollar_volume_20"]
    lv = {
        "close": close,
        "prev_close": prev_close,
        "open": prev_close * (1 + f["gap_pct"]),
        "high": close * 1.01,
        "low": close * 0.99,
        "volume": adv / close * f["rel_volume_20"],
        "atr_14": close * atr_pct / 100,
        "sma_20": close / (1 + f["dist_sma_20"]),
        "sma_50": close / (1 + f["dist_sma_50"]),
        "sma_200": close / (1 + f["dist_sma_200"]),
        "high_52w": close / (1 + f["dist_52w_high"]),
        "low_52w": close / (1 + f["dist_52w_low"]),
        "avg_volume_20": adv / close,
        "avg_dollar_volume_20": adv,
        "sessions": np.full(n, 260.0),
    }
    levels = np.column_stack([lv[name] for name in LEVELS]).astype(np.float32)
    steps = np.exp(np.cumsum(rng.normal(scale=0.02, size=(n, SPARK)), axis=1))
    sparks = (close[:, None] * steps / steps[:, -1:]).astype(np.float32)
    states = np.full(n, "ok", dtype=object)
    bad = rng.random(n) < unscored
    states[bad] = rng.choice(["insufficient_history", "no_data", "stale", "error"], size=int(bad.sum()))
    no_bars = (states == "no_data") | (states == "stale")
    features[bad] = np.nan
    scores[bad] = np.nan
    levels[no_bars] = np.nan
    info = SymbolInfo(
        symbols=tuple(symbols),
        names=tuple(f"Company {s}" for s in symbols),
        sectors=tuple(SECTORS[i] for i in rng.integers(0, n_sectors, size=n)),
        industries=tuple(f"Industry {i}" for i in rng.integers(0, 40, size=n)),
        market_caps=tuple(rng.uniform(1e8, 1e12, size=n).tolist()),
    )
    chunks = []
    for k, start in enumerate(range(0, n, chunk_size)):
        sl = slice(start, start + chunk_size)
        rows = tuple(symbols[sl])
        chunks.append(
            EncodedChunk(
                chunk_index=k,
                symbols=rows,
                states=tuple(states[sl]),
                features=encode_block(features[sl], rows=rows, fields=FEATURES),
                scores=encode_block(scores[sl], rows=rows, fields=("alpha_5d", "alpha_10d")),
                levels=encode_block(levels[sl], rows=rows, fields=LEVELS),
                sparklines=encode_block(sparks[sl], rows=rows),
            )
        )
    return Universe(info=info, chunks=chunks)


def benchmark_closes(n: int = 260, drift: float = 0.0005, vol: float = 0.01, seed: int = 3) -> np.ndarray:
    """Closes of a benchmark index, oldest first (a geometric random walk)."""
    rng = np.random.default_rng(seed)
    return 400.0 * np.exp(np.cumsum(drift + vol * rng.normal(size=n)))


def win_prob() -> compute_pb2.WinProbCalibration:
    """The calibration message of :data:`CALIBRATION` (what the gateway copies from Compute.Describe)."""
    return compute_pb2.WinProbCalibration(
        model="alpha_10d", version=MODEL_VERSIONS["alpha_10d"], edges=WIN_PROB_EDGES, p_up=WIN_PROB_P_UP
    )


def score_response(c: EncodedChunk) -> compute_pb2.ScoreResponse:
    return compute_pb2.ScoreResponse(
        chunk_index=c.chunk_index,
        symbols=c.symbols,
        states=[STATES[s] for s in c.states],
        features=c.features,
        scores=c.scores,
        levels=c.levels,
        sparklines=c.sparklines,
        feature_version=c.feature_version,
        model_versions=c.model_versions,
        replica="test",
    )


def header(
    u: Universe, fingerprint: str, scan_id: str = "scan-1", prefiltered: int = 3, **options: object
) -> ranker_pb2.RankHeader:
    """The RankHeader of ``u``, with ``prefiltered`` symbols the prefilter removed and the calibration."""
    info = u.info
    return ranker_pb2.RankHeader(
        scan_id=scan_id,
        fingerprint=fingerprint,
        options=scan_pb2.ScanOptions(**options),
        as_of="2026-11-13",
        info=ranker_pb2.SymbolInfo(
            symbols=info.symbols,
            names=info.names,
            sectors=info.sectors,
            industries=info.industries,
            market_caps=info.market_caps,
        ),
        issues=[
            common_pb2.SymbolIssue(symbol=f"PENNY{i}", bucket=common_pb2.BUCKET_FILTERED, reason="prefilter_price")
            for i in range(prefiltered)
        ],
        requested=len(info.symbols) + prefiltered,
        benchmark=encode_block(benchmark_closes().astype(np.float32)[:, None], fields=["close"]),
        stage_seconds={"fetch": 0.2, "compute": 0.1},
        win_prob=win_prob(),
    )


def stream(head: ranker_pb2.RankHeader, u: Universe) -> Iterator[ranker_pb2.RankRequest]:
    """A Rank call's messages: the header, every chunk of ``u``, the end."""
    yield ranker_pb2.RankRequest(header=head)
    for c in u.chunks:
        yield ranker_pb2.RankRequest(chunk=score_response(c))
    yield ranker_pb2.RankRequest(end=ranker_pb2.RankEnd())


def explanation(symbol: str, weight: float = 0.05) -> compute_pb2.SymbolExplanation:
    """A made-up explanation of ``symbol`` in the shape Compute.Explain returns."""
    return compute_pb2.SymbolExplanation(
        symbol=symbol,
        models=[
            compute_pb2.ModelExplanation(
                model=model,
                base_value=0.01,
                prediction=0.2,
                contributions=[
                    compute_pb2.FeatureContribution(feature="rsi_14", label="RSI (14)", value=61.0, contribution=weight)
                ],
            )
            for model in ("alpha_5d", "alpha_10d")
        ],
    )
