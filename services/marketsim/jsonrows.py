"""Serialise a table of bars to a JSON array body in one Numba pass (no per-row Python objects).

Polygon's bar rows are flat objects of numbers (plus the ticker ``T`` in grouped daily). Every
value is written as a fixed-point decimal with at most four fraction digits (trailing zeros and a
bare dot trimmed, so whole numbers print as integers), which is exact for the simulator's prices
(cents, or 1/100 cent below $1), volumes and millisecond timestamps. Building 11,000 row dicts and
handing them to a JSON library costs tens of milliseconds; this costs about one.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numba import njit

SCALE = 10_000  # four decimal places
_MAX_DIGITS = 21  # sign + 19 digits of an int64 + dot


@njit(cache=True, nogil=True)
def _write_int(out: np.ndarray, pos: int, value: int) -> int:
    # Digits go backwards into the 20 bytes after pos (the buffer always has that room), then forward.
    k = pos + 20
    while True:
        k -= 1
        out[k] = 48 + value % 10
        value //= 10
        if value == 0:
            break
    width = pos + 20 - k
    for j in range(width):
        out[pos + j] = out[k + j]
    return pos + width


@njit(cache=True, nogil=True)
def _write_fixed(out: np.ndarray, pos: int, scaled: int) -> int:
    if scaled < 0:
        out[pos] = 45  # '-'
        pos += 1
        scaled = -scaled
    pos = _write_int(out, pos, scaled // 10_000)
    frac = scaled % 10_000
    if frac:
        out[pos] = 46  # '.'
        pos += 1
        div = 1000
        while frac:
            out[pos] = 48 + frac // div
            pos += 1
            frac %= div
            div //= 10
    return pos


@njit(cache=True, nogil=True)
def _write_rows(
    labels: np.ndarray,
    label_len: np.ndarray,
    values: np.ndarray,
    keys: np.ndarray,
    key_off: np.ndarray,
    label_key: np.ndarray,
    tail: np.ndarray,
    out: np.ndarray,
) -> int:
    n, k = values.shape
    pos = 0
    for i in range(n):
        if i:
            out[pos] = 44  # ','
            pos += 1
        out[pos] = 123  # '{'
        pos += 1
        if label_key.size:
            for b in label_key:
                out[pos] = b
                pos += 1
            for j in range(label_len[i]):
                out[pos] = labels[i, j]
                pos += 1
            out[pos] = 34  # '"'
            out[pos + 1] = 44
            pos += 2
        for j in range(k):
            if j:
                out[pos] = 44
                pos += 1
            for b in range(key_off[j], key_off[j + 1]):
                out[pos] = keys[b]
                pos += 1
            pos = _write_fixed(out, pos, values[i, j])
        for b in tail:
            out[pos] = b
            pos += 1
        out[pos] = 125  # '}'
        pos += 1
    return pos


def label_bytes(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ASCII labels (e.g. tickers) as a fixed-width uint8 matrix and their lengths."""
    raw = np.asarray(labels).astype("S")
    width = max(raw.dtype.itemsize, 1)
    matrix = (
        np.frombuffer(raw.tobytes(), dtype=np.uint8).reshape(len(raw), width)
        if len(raw)
        else np.zeros((0, width), dtype=np.uint8)
    )
    return matrix, np.char.str_len(raw).astype(np.int64)


def rows_json(
    columns: Sequence[tuple[str, np.ndarray]],
    labels: tuple[str, np.ndarray, np.ndarray] | None = None,
    tail: bytes = b"",
) -> bytes:
    """``{"<label key>":"<label>","k1":v1,...<tail>},...`` for every row (no surrounding brackets).

    ``columns`` are (key, float or int array) pairs of equal length; values must be finite.
    ``labels`` is (key, uint8 matrix, lengths) from :func:`label_bytes`, written first as a string;
    ``tail`` is raw JSON appended to every row (e.g. ``,"otc":true``).
    """
    n = len(columns[0][1]) if columns else 0
    if n == 0:
        return b""
    values = np.empty((n, len(columns)), dtype=np.int64)
    for j, (_, column) in enumerate(columns):
        values[:, j] = np.rint(np.asarray(column, dtype=np.float64) * SCALE)
    key_parts = [f'"{key}":'.encode() for key, _ in columns]
    keys = np.frombuffer(b"".join(key_parts), dtype=np.uint8)
    key_off = np.concatenate(([0], np.cumsum([len(p) for p in key_parts]))).astype(np.int64)
    if labels is None:
        label_key = np.zeros(0, dtype=np.uint8)
        matrix, lengths = np.zeros((n, 1), dtype=np.uint8), np.zeros(n, dtype=np.int64)
    else:
        label_key = np.frombuffer(f'"{labels[0]}":"'.encode(), dtype=np.uint8)
        matrix, lengths = labels[1], labels[2]
    tail_bytes = np.frombuffer(tail, dtype=np.uint8)
    per_row = 4 + len(label_key) + matrix.shape[1] + len(keys) + len(tail) + len(columns) * (_MAX_DIGITS + 1)
    out = np.empty(n * per_row, dtype=np.uint8)
    size = _write_rows(matrix, lengths, values, keys, key_off, label_key, tail_bytes, out)
    return out[:size].tobytes()
