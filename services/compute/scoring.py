"""One panel chunk in, its scored form out: validation, features, levels, both model scores.

This is what a Score call does, free of gRPC: the servicer only moves bytes and messages.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from services.common.codec import BlockError, decode_block, encode_block
from services.compute.features import (
    FEATURE_VERSION,
    FEATURES,
    LEVEL_FIELDS,
    PANEL_FIELDS,
    SymbolState,
    score_features,
)
from services.compute.models import AlphaModels, Explanation


class ChunkError(ValueError):
    """The chunk or features block is malformed; the message says how."""


@dataclass(frozen=True)
class ScoredChunk:
    symbols: tuple[str, ...]
    states: np.ndarray  # int8 SymbolState values
    features: bytes  # blocks, rows = symbols
    scores: bytes
    levels: bytes
    sparklines: bytes
    seconds: dict[str, float] = field(default_factory=dict)


def parse_panel(data: bytes, symbols: Sequence[str] = ()) -> tuple[np.ndarray, tuple[str, ...]]:
    """Decode and validate a panel chunk block (symbols x sessions x PANEL_FIELDS); symbols from its
    rows or ``symbols``."""
    try:
        block = decode_block(data)
    except BlockError as exc:
        raise ChunkError(f"panel chunk is not a valid block: {exc}") from None
    arr = block.array
    if arr.ndim != 3 or arr.shape[2] != len(PANEL_FIELDS):
        raise ChunkError(f"panel chunk must have shape (symbols, sessions, {len(PANEL_FIELDS)}), got {arr.shape}")
    if block.fields and tuple(block.fields) != PANEL_FIELDS:
        raise ChunkError(f"panel chunk fields must be {', '.join(PANEL_FIELDS)}; got {', '.join(block.fields)}")
    if arr.dtype.kind != "f":
        raise ChunkError(f"panel chunk must hold floats, got {arr.dtype}")
    rows = tuple(block.rows) or tuple(symbols)
    if len(rows) != arr.shape[0]:
        raise ChunkError(f"panel chunk has {arr.shape[0]} rows but {len(rows)} symbols")
    if symbols and tuple(symbols) != rows:
        raise ChunkError("the symbols of the request differ from the rows of the panel chunk")
    return arr, rows


def score_chunk(panel: np.ndarray, symbols: Sequence[str], models: AlphaModels) -> ScoredChunk:
    """Features, levels, sparklines and both scores of a validated panel."""
    t0 = time.perf_counter()
    pf = score_features(panel)
    t1 = time.perf_counter()
    scores = models.score(pf.features, pf.states == SymbolState.OK)
    t2 = time.perf_counter()
    rows = list(symbols)
    meta = {"feature_version": FEATURE_VERSION}
    out = ScoredChunk(
        symbols=tuple(rows),
        states=pf.states,
        features=encode_block(pf.features, rows=rows, fields=FEATURES, meta=meta),
        scores=encode_block(scores, rows=rows, fields=models.names, meta={"model_versions": models.versions}),
        levels=encode_block(pf.levels, rows=rows, fields=LEVEL_FIELDS),
        sparklines=encode_block(pf.sparklines, rows=rows),
        seconds={},
    )
    out.seconds.update({"features": t1 - t0, "predict": t2 - t1, "encode": time.perf_counter() - t2})
    return out


def parse_features(data: bytes) -> tuple[np.ndarray, tuple[str, ...]]:
    """Decode a features block (as Score returns it) into a FEATURES-ordered float32 matrix."""
    try:
        block = decode_block(data)
    except BlockError as exc:
        raise ChunkError(f"features is not a valid block: {exc}") from None
    arr = block.array
    if arr.ndim != 2:
        raise ChunkError(f"features block must be 2-D (symbols, features), got shape {arr.shape}")
    fields = tuple(block.fields)
    missing = [f for f in FEATURES if f not in fields]
    if missing:
        raise ChunkError(f"features block lacks {', '.join(missing)} (feature version {FEATURE_VERSION})")
    if len(block.rows) != arr.shape[0]:
        raise ChunkError("features block must label its rows with symbols")
    cols = [fields.index(f) for f in FEATURES]
    return np.ascontiguousarray(arr[:, cols], dtype=np.float32), tuple(block.rows)


def explain_rows(features: np.ndarray, models: AlphaModels, top_k: int) -> list[list[Explanation]]:
    """Contributions for the given rows only (pred_contribs is costly: callers send the top names)."""
    return models.explain(features, top_k=top_k)
