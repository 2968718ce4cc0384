"""From a scan header and scored chunks to a ranked scan: merge, rate, score, plan, filter, rank.

Every symbol of the request ends in exactly one bucket. The header's issues (prefiltered, no data)
come as they are; compute states map to skipped or errored (STATE_BUCKETS); symbols announced in
the header that no chunk carried are errored ("not_scored"); the filters remove rows by name; the
rest is ranked. Percentiles (overall and within sector) are taken over every scored row before the
filters, so filtering a scan does not change a name's percentile; ``rank`` is 1..n over the rows
that remain, by composite score. The derived scores (ICS, merit, risk label: derived.py) are
computed for the ranked rows and stored with them.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import pandas as pd
import structlog

from services.common.codec import Block
from services.contract.columns import NUMBER_COLUMNS, SIGNALS, SUBSCORE_COLUMNS, TEXT_COLUMNS
from services.contract.models import MODEL_NAMES as MODELS
from services.contract.styles import SUBSCORES, TradeStyleSpec
from services.ranker import rating
from services.ranker.derived import derive
from services.ranker.errors import RankerInputError, allowed
from services.ranker.plan import trade_plans
from services.ranker.rank import FilterSpec, PageSpec, apply_filters, check_column, check_filters, percentile
from services.ranker.result import Accounting, Issues, Mover, RankedScan
from services.ranker.scoring import UNKNOWN_REGIME, WinProbCalibration, alpha_score, composite, market_regime

log = structlog.get_logger(__name__)

REQUIRED_LEVELS = ("close", "prev_close", "atr_14", "avg_dollar_volume_20")
# Compute state -> (bucket, reason) for symbols that were not scored.
STATE_BUCKETS: dict[str, tuple[str, str]] = {
    "insufficient_history": ("skipped", "insufficient_history"),
    "no_data": ("skipped", "no_data"),
    "stale": ("skipped", "stale"),
    "error": ("errored", "compute_error"),
    "unspecified": ("errored", "unknown_state"),
}
ISSUE_BUCKETS = ("filtered", "skipped", "errored")


@dataclass(frozen=True)
class ScoredChunk:
    """One compute answer, decoded: per-symbol states and the four blocks (rows = symbols)."""

    chunk_index: int
    symbols: tuple[str, ...]
    states: tuple[str, ...]
    features: Block
    scores: Block
    levels: Block
    sparklines: Block | None
    feature_version: str = ""
    model_versions: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SymbolInfo:
    """Reference columns of the symbols the chunks will carry (index i describes one symbol)."""

    symbols: tuple[str, ...]
    names: tuple[str, ...]
    sectors: tuple[str, ...]
    industries: tuple[str, ...]
    market_caps: tuple[float, ...]


@dataclass(frozen=True)
class ScanSpec:
    style: TradeStyleSpec
    filters: FilterSpec
    page: PageSpec


@dataclass(frozen=True)
class RankInput:
    scan_id: str
    fingerprint: str
    as_of: str
    spec: ScanSpec
    info: SymbolInfo
    issues: Issues
    requested: int
    benchmark: np.ndarray
    stage_seconds: dict[str, float]
    # The win-probability calibration of the models that scored the chunks (from the header).
    calibration: WinProbCalibration


@dataclass(frozen=True)
class RankConfig:
    alpha_weight: float = 0.35
    liquidity_floor: float = 20_000_000.0
    liquidity_damping: float = 0.3
    account_risk: float = 1000.0
    movers: int = 5


def validate_input(inp: RankInput) -> None:
    """Reject a header the ranking cannot honour, before any chunk is read."""
    if not inp.fingerprint:
        raise RankerInputError("header.fingerprint is required (the cache key of the ranked scan)")
    info = inp.info
    lengths = {len(info.symbols), len(info.names), len(info.sectors), len(info.industries), len(info.market_caps)}
    if len(lengths) != 1:
        raise RankerInputError(
            "header.info columns (symbols, names, sectors, industries, market_caps) must have equal lengths"
        )
    if pd.Index(info.symbols).has_duplicates:
        raise RankerInputError("header.info.symbols has duplicates")
    bad = sorted(set(inp.issues.buckets) - set(ISSUE_BUCKETS))
    if bad:
        raise RankerInputError(f"header issue bucket(s) {', '.join(bad)}; allowed: {allowed(ISSUE_BUCKETS)}")
    if inp.requested != len(info.symbols) + len(inp.issues):
        raise RankerInputError(
            f"header.requested is {inp.requested} but info ({len(info.symbols)}) "
            f"+ issues ({len(inp.issues)}) = {len(info.symbols) + len(inp.issues)}"
        )
    check_filters(inp.spec.filters, sorted(set(info.sectors)), SIGNALS, None)


@lru_cache(maxsize=64)
def _field_positions(fields: tuple[str, ...], names: tuple[str, ...]) -> tuple[int, ...] | None:
    """Position of each of ``names`` in ``fields`` (-1 when absent; None when ``fields`` repeats a name).
    Every chunk of a scan has the same layout, so this runs once per layout, not per chunk and block."""
    where = {name: i for i, name in enumerate(fields)}
    if len(where) != len(fields):
        return None
    return tuple(where.get(name, -1) for name in names)


def _columns(block: Block, names: Sequence[str], what: str, chunk: int) -> np.ndarray:
    """``block``'s columns ``names`` as float64 (rows, len(names)); missing names are an input error."""
    positions = _field_positions(tuple(block.fields), tuple(names))
    if positions is None:
        raise RankerInputError(f"chunk {chunk}: {what} block repeats a field name")
    if -1 in positions:
        missing = [n for n, i in zip(names, positions, strict=True) if i < 0]
        raise RankerInputError(f"chunk {chunk}: {what} block lacks {', '.join(missing)}")
    return np.asarray(block.array, dtype=np.float64).reshape(block.array.shape[0], -1)[:, list(positions)]


@dataclass
class Merged:
    symbols: np.ndarray
    states: np.ndarray
    feature_names: tuple[str, ...]
    features: np.ndarray
    scores: np.ndarray
    levels: dict[str, np.ndarray]
    sparklines: np.ndarray
    feature_version: str
    model_versions: dict[str, str]


def merge(chunks: Sequence[ScoredChunk]) -> Merged:
    """Concatenate chunks (in chunk order) into columns; reject malformed or inconsistent chunks."""
    chunks = sorted(chunks, key=lambda c: c.chunk_index)
    first = chunks[0] if chunks else None
    names = first.features.fields if first else tuple(rating.REQUIRED_FEATURES)
    missing = sorted(set(rating.REQUIRED_FEATURES) - set(names))
    if missing:
        raise RankerInputError(f"features block lacks {', '.join(missing)} (the rating needs them)")
    # Required level fields, then the optional ones every chunk carries.
    shared = set.intersection(*(set(c.levels.fields) for c in chunks)) if chunks else set()
    level_names = (
        *REQUIRED_LEVELS,
        *(f for f in (first.levels.fields if first else ()) if f in shared and f not in REQUIRED_LEVELS),
    )
    width = max(
        (c.sparklines.array.shape[-1] for c in chunks if c.sparklines is not None and c.sparklines.array.ndim == 2),
        default=0,
    )
    feature_version = first.feature_version if first else ""
    feats, scores, levels, sparks = [], [], [], []
    for c in chunks:
        n = len(c.symbols)
        if len(c.states) != n:
            raise RankerInputError(f"chunk {c.chunk_index}: {len(c.states)} states for {n} symbols")
        for what, block in (("features", c.features), ("scores", c.scores), ("levels", c.levels)):
            if block.array.ndim != 2 or block.array.shape[0] != n:
                raise RankerInputError(
                    f"chunk {c.chunk_index}: {what} block has shape {block.array.shape}, expected ({n}, fields)"
                )
        if c.feature_version != feature_version:
            raise RankerInputError(
                f"chunk {c.chunk_index}: feature version {c.feature_version!r} differs from {feature_version!r}"
            )
        feats.append(_columns(c.features, names, "features", c.chunk_index).astype(np.float32))
        scores.append(_columns(c.scores, MODELS, "scores", c.chunk_index))
        levels.append(_columns(c.levels, level_names, "levels", c.chunk_index))
        spark = np.full((n, width), np.nan, dtype=np.float32)
        if c.sparklines is not None and c.sparklines.array.ndim == 2 and c.sparklines.array.shape[0] == n:
            w = c.sparklines.array.shape[1]
            spark[:, width - w :] = c.sparklines.array
        sparks.append(spark)
    symbols = np.asarray([s for c in chunks for s in c.symbols], dtype=object)
    if pd.Index(symbols).has_duplicates:
        dup = pd.Index(symbols)[pd.Index(symbols).duplicated()].unique()[:10]
        raise RankerInputError(f"symbols arrive in more than one chunk: {', '.join(map(str, dup))}")
    level_matrix = np.concatenate(levels) if levels else np.empty((0, len(level_names)))
    return Merged(
        symbols=symbols,
        states=np.asarray([s for c in chunks for s in c.states], dtype=object),
        feature_names=tuple(names),
        features=np.concatenate(feats) if feats else np.empty((0, len(names)), dtype=np.float32),
        scores=np.concatenate(scores) if scores else np.empty((0, len(MODELS))),
        levels={name: level_matrix[:, i] for i, name in enumerate(level_names)},
        sparklines=np.concatenate(sparks) if sparks else np.empty((0, 0), dtype=np.float32),
        feature_version=feature_version,
        model_versions=dict(first.model_versions) if first else {},
    )


def rank_scan(
    inp: RankInput, chunks: Sequence[ScoredChunk], config: RankConfig, now: float | None = None
) -> RankedScan:
    """The ranked scan of ``inp`` from its scored ``chunks``; RankerInputError on bad input."""
    started = time.perf_counter()
    validate_input(inp)
    m = merge(chunks)
    style, filters = inp.spec.style, inp.spec.filters
    issues = Issues(
        list(inp.issues.symbols), list(inp.issues.buckets), list(inp.issues.reasons), list(inp.issues.details)
    )

    info_index = pd.Index(inp.info.symbols)
    where = info_index.get_indexer(m.symbols)
    if (where < 0).any():
        stray = m.symbols[where < 0][:10]
        raise RankerInputError(f"chunk symbols not announced in header.info: {', '.join(map(str, stray))}")
    unseen = np.ones(len(info_index), dtype=bool)
    unseen[where] = False
    issues.extend(
        [inp.info.symbols[i] for i in np.flatnonzero(unseen)],
        "errored",
        ["not_scored"] * int(unseen.sum()),
        "no scored chunk carried this symbol",
    )

    close = m.levels["close"]
    ok_state = m.states == "ok"
    bad_levels = ok_state & ~(np.isfinite(close) & (close > 0))
    for state, (bucket, state_reason) in STATE_BUCKETS.items():
        sel = m.states == state
        issues.extend(m.symbols[sel].tolist(), bucket, [state_reason] * int(sel.sum()))
    known_states = np.isin(m.states, ["ok", *STATE_BUCKETS])
    issues.extend(m.symbols[~known_states].tolist(), "errored", ["unknown_state"] * int((~known_states).sum()))
    issues.extend(
        m.symbols[bad_levels].tolist(),
        "errored",
        ["invalid_levels"] * int(bad_levels.sum()),
        "state OK but no positive close",
    )

    ok = ok_state & ~bad_levels
    info_rows = where[ok]
    n = int(ok.sum())
    feats = m.features[ok]
    fcols = {name: feats[:, i].astype(np.float64) for i, name in enumerate(m.feature_names)}
    lv = {k: v[ok] for k, v in m.levels.items()}
    a5, a10 = m.scores[ok, 0], m.scores[ok, 1]
    sectors = np.asarray(inp.info.sectors, dtype=object)[info_rows]

    subs = rating.subscores(fcols)
    tech = rating.tech_rating(subs, fcols["atr_14_pct"], style)
    signal, side = rating.signals(tech, style)
    everyone = np.ones(n, dtype=bool)
    alpha = alpha_score(a5, a10, everyone, style)
    comp = composite(
        tech,
        alpha,
        lv["avg_dollar_volume_20"],
        everyone,
        config.alpha_weight,
        config.liquidity_floor,
        config.liquidity_damping,
    )
    plans = trade_plans(close[ok], lv["atr_14"], side == "short", style, config.account_risk)
    with np.errstate(invalid="ignore", divide="ignore"):
        change_pct = (lv["close"] / lv["prev_close"] - 1.0) * 100.0
    values: dict[str, np.ndarray] = {
        "rank": np.full(n, np.nan),
        "tech_rating": tech,
        "alpha_score": alpha,
        "composite_score": comp.score,
        "percentile": percentile(comp.score),
        "sector_percentile": percentile(comp.score, groups=sectors),
        "rating_percentile": comp.rating_percentile,
        "alpha_percentile": comp.alpha_percentile,
        "win_prob_10d": inp.calibration(a10),
        "alpha_5d": a5,
        "alpha_10d": a10,
        "last_close": lv["close"],
        "change_pct": change_pct,
        "atr_pct": fcols["atr_14_pct"],
        "avg_dollar_volume": lv["avg_dollar_volume_20"],
        "market_cap": np.asarray(inp.info.market_caps, dtype=np.float64)[info_rows],
        "entry": plans.entry,
        "stop": plans.stop,
        "target": plans.target,
        "reward_risk": plans.reward_risk,
        "position_size": plans.position_size,
        **{col: subs[name] for col, name in zip(SUBSCORE_COLUMNS, SUBSCORES, strict=True)},
    }
    text = {
        "symbol": m.symbols[ok],
        "name": np.asarray(inp.info.names, dtype=object)[info_rows],
        "sector": sectors,
        "industry": np.asarray(inp.info.industries, dtype=object)[info_rows],
        "signal": signal,
        "side": side,
    }
    check_filters(filters, sorted(set(inp.info.sectors)), SIGNALS, (*NUMBER_COLUMNS, *m.feature_names))
    check_column(inp.spec.page.sort_by, (*NUMBER_COLUMNS, *m.feature_names, *TEXT_COLUMNS), "sort")

    reason = apply_filters(filters, {**fcols, **values, **text}, n)
    dropped = reason != ""
    issues.extend(text["symbol"][dropped].tolist(), "filtered", reason[dropped].tolist(), "removed by a filter")

    kept = np.flatnonzero(~dropped)
    best_first = kept[np.argsort(-comp.score[kept], kind="stable")]
    numbers = np.column_stack([values[c] for c in NUMBER_COLUMNS]) if n else np.empty((0, len(NUMBER_COLUMNS)))
    numbers = numbers[best_first]
    numbers[:, NUMBER_COLUMNS.index("rank")] = np.arange(1, len(best_first) + 1)
    text = {k: v[best_first] for k, v in text.items()}
    features = feats[best_first]
    sparklines = m.sparklines[ok][best_first]
    scores = derive(
        numbers[:, NUMBER_COLUMNS.index("percentile")],
        numbers[:, NUMBER_COLUMNS.index("avg_dollar_volume")],
        numbers[:, NUMBER_COLUMNS.index("atr_pct")],
        fcols["rsi_14"][best_first],
        numbers[:, NUMBER_COLUMNS.index("last_close")],
        text["signal"],
        numbers[:, [NUMBER_COLUMNS.index(c) for c in SUBSCORE_COLUMNS]],
    )
    rel_volume = fcols["rel_volume_20"][best_first] if "rel_volume_20" in fcols else np.full(len(best_first), np.nan)

    counts = Counter(zip(issues.buckets, issues.reasons, strict=True))
    accounting = Accounting(
        requested=inp.requested,
        ranked=len(best_first),
        **{b: {r: c for (bb, r), c in sorted(counts.items()) if bb == b} for b in ISSUE_BUCKETS},  # type: ignore[arg-type]
    )
    if accounting.total() != inp.requested:
        raise RankerInputError(f"accounting covers {accounting.total()} symbols, request had {inp.requested}")
    versions = m.model_versions
    cal = inp.calibration
    if versions.get(cal.model) and cal.version and versions[cal.model] != cal.version:
        log.warning(
            "win_prob calibration is for another model version",
            model=cal.model,
            calibration_version=cal.version,
            scoring_version=versions[cal.model],
        )
    stage = dict(inp.stage_seconds)
    stage["rank"] = time.perf_counter() - started
    return RankedScan(
        scan_id=inp.scan_id,
        fingerprint=inp.fingerprint,
        as_of=inp.as_of,
        style=style.name,
        feature_version=m.feature_version,
        model_versions=versions,
        created_unix=time.time() if now is None else now,
        stage_seconds=stage,
        regime=market_regime(inp.benchmark) if len(inp.benchmark) else UNKNOWN_REGIME,
        accounting=accounting,
        issues=issues,
        movers=movers(
            text["symbol"], text["sector"], numbers[:, NUMBER_COLUMNS.index("change_pct")], rel_volume, config.movers
        ),
        text=text,
        numbers=numbers,
        feature_names=m.feature_names,
        features=features,
        sparklines=sparklines,
        derived=scores,
    )


def movers(
    symbols: np.ndarray, sectors: np.ndarray, change_pct: np.ndarray, rel_volume: np.ndarray, k: int
) -> list[Mover]:
    """The ``k`` biggest gainers (best first), then the ``k`` biggest losers (worst first)."""
    finite = np.flatnonzero(np.isfinite(change_pct))
    by_change = finite[np.argsort(-change_pct[finite], kind="stable")]
    up = [i for i in by_change[:k] if change_pct[i] > 0]
    down = [i for i in by_change[::-1][:k] if change_pct[i] < 0]
    out = []
    for i in (*up, *down):
        volume = f", {rel_volume[i]:.1f}x average volume" if np.isfinite(rel_volume[i]) else ""
        out.append(Mover(int(i), str(symbols[i]), float(change_pct[i]), f"{sectors[i]}{volume}"))
    return out
