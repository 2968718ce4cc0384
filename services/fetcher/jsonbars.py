"""Parse the ``results`` array of a Polygon aggregates body straight into numpy, in one Numba pass.

A grouped-daily body holds 10,000+ flat row objects; building a Python object per row costs about
15 ms per session, which over a year of sessions is most of a cold scan. This scanner reads the
bytes once and writes the bar fields into a float64 matrix and each row's ticker as a byte span of
the body; no Python object is made per row (tickers become ids in :mod:`services.fetcher.tickers`,
or strings on request). Digits are read eight at a time (SWAR on one 64-bit load), and numbers are
converted exactly as a correctly rounded parser would (mantissa below 2**53 divided or multiplied by
an exact power of ten); anything outside that fast path
(escapes in strings, very long mantissas, unexpected structure) makes :func:`parse_results` return
None, and the caller falls back to a general JSON decoder.

The body is copied once into a buffer ending in zero bytes: a zero ends every token loop (it is
neither a digit, nor whitespace, nor allowed in a string), so the loops need no bounds checks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core.extending import intrinsic
from numba.cpython.unsafe.numbers import trailing_zeros as _trailing_zeros

# Output columns: the bar fields in polygon.BAR_FIELDS order, then the timestamp.
N_COLUMNS = 7
_POW10 = np.array([10.0**i for i in range(23)])
_INT_POW10 = np.array([10**i for i in range(9)], dtype=np.int64)
_MAX_EXACT = float(2**53)  # integers above this are not all exact in a float64
_MAX_DIGITS = 15  # mantissas of up to 15 digits are below 2**53
# Output column of each one-letter key (by its byte): o h l c v, t, and 7 for the ticker T.
_KEYMAP = np.full(256, -1, dtype=np.int64)
_KEYMAP[[ord(k) for k in "ohlcvtT"]] = [0, 1, 2, 3, 4, 6, 7]
_TICKER = 7
_PAD = 16  # zero bytes after the body (a word loaded at its last byte stays inside)
# _scan results besides a row count.
_DECLINE = -1
_FULL = -2


@intrinsic
def _load_word_intrinsic(typingctx: Any, buf: types.Array, pos: types.Integer) -> tuple[Any, Any]:
    """The 8 bytes at ``buf[pos]`` as one little-endian uint64 (an unaligned load)."""

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        array = context.make_array(signature.args[0])(context, builder, args[0])
        address = builder.gep(array.data, [args[1]])
        return builder.load(builder.bitcast(address, ir.IntType(64).as_pointer()), align=1)

    return types.uint64(buf, pos), codegen


# numba's stubs type a call of an intrinsic as taking the typing context too and as never returning (as
# in pure Python); jitted code passes the other arguments and gets the value the codegen builds.
_load_word = cast("Callable[[np.ndarray, int], np.uint64]", _load_word_intrinsic)
trailing_zeros = cast("Callable[[np.uint64], np.uint64]", _trailing_zeros)


_ZEROS = np.uint64(0x3030303030303030)
_HIGH_NIBBLES = np.uint64(0xF0F0F0F0F0F0F0F0)
_LOW_NIBBLES = np.uint64(0x0F0F0F0F0F0F0F0F)
_SIXES = np.uint64(0x0606060606060606)
_PAIR_MASK = np.uint64(0x000000FF000000FF)
_PAIRS_HIGH = np.uint64(100 + (1_000_000 << 32))
_PAIRS_LOW = np.uint64(1 + (10_000 << 32))


@njit(cache=True)
def _digit_run(word: np.uint64) -> int:
    """How many of the 8 bytes of ``word`` (first byte lowest) are ASCII digits before the first other byte."""
    # A byte is a digit when its high nibble is 3, and still 3 after adding 6 (no carry reaches a
    # lower byte, so the first non-digit is always found).
    other = ((word & _HIGH_NIBBLES) ^ _ZEROS) | (((word + _SIXES) & _HIGH_NIBBLES) ^ _ZEROS)
    if other == 0:
        return 8
    return int(np.int64(trailing_zeros(other)) >> 3)  # int() of an int64 is the same int64 in numba


@njit(cache=True)
def _digits_value(word: np.uint64, n: int) -> int:
    """The integer written by the first ``n`` (1..8) bytes of ``word``, all ASCII digits (SWAR)."""
    value = (word << np.uint64(8 * (8 - n))) & _LOW_NIBBLES  # the digits last, zeros before them
    value = value * np.uint64(10) + (value >> np.uint64(8))  # two-digit pairs in bytes 0, 2, 4, 6
    value = ((value & _PAIR_MASK) * _PAIRS_HIGH + ((value >> np.uint64(16)) & _PAIR_MASK) * _PAIRS_LOW) >> np.uint64(32)
    return int(np.int64(value))


@njit(cache=True)
def _digits(first: np.uint64, second: np.uint64, mantissa: int) -> tuple[int, int]:
    """(``mantissa`` with the digit run of the 16 bytes ``first``, ``second`` appended, digits in the run)."""
    n = _digit_run(first)
    if n == 0:
        return mantissa, 0
    mantissa = mantissa * _INT_POW10[n] + _digits_value(first, n)
    if n < 8:
        return mantissa, n
    more = _digit_run(second)
    if more == 0:
        return mantissa, 8
    return mantissa * _INT_POW10[more] + _digits_value(second, more), 8 + more


@njit(cache=True)
def _exponent(buf: np.ndarray, pos: int) -> tuple[int, int]:
    """(exponent, next position) of the exponent whose ``e`` is at ``pos``; next position -1 if malformed."""
    pos += 1
    c = buf[pos]
    negative = c == 45
    if c == 45 or c == 43:
        pos += 1
        c = buf[pos]
    exponent = 0
    start = pos
    while 48 <= c <= 57 and exponent < 1000:
        exponent = exponent * 10 + (c - 48)
        pos += 1
        c = buf[pos]
    if pos == start:
        return 0, -1
    return (-exponent if negative else exponent), pos


@njit(cache=True)
def _exact(mantissa: int, scale: int) -> float:
    """``mantissa * 10**scale`` correctly rounded, NaN when outside the exact fast path."""
    if scale < 0:
        if scale < -22:
            return np.nan
        return float(mantissa) / _POW10[-scale]
    if scale > 22 or mantissa * _POW10[scale] >= _MAX_EXACT:
        return np.nan
    return float(mantissa) * _POW10[scale]


@njit(cache=True)
def _skip_ws(buf: np.ndarray, pos: int) -> int:
    c = buf[pos]
    while c <= 32 and (c == 32 or c == 10 or c == 13 or c == 9):
        pos += 1
        c = buf[pos]
    return pos


@njit(cache=True, nogil=True)
def _scan(buf: np.ndarray, pos: int, values: np.ndarray, spans: np.ndarray) -> tuple[int, int]:
    """Fill rows from the array starting at ``buf[pos] == '['``: (row count, position after the array).

    The row count is ``_DECLINE`` to fall back to a JSON decoder, ``_FULL`` when ``values`` has too
    few rows. A row's ticker goes to ``spans[row]`` as (start, length), length 0 when it has none.
    Releases the GIL, so bodies can be scanned on worker threads while the event loop reads others.

    Every call to a jitted function taking an array costs two atomic reference-count updates, so the
    per-byte work is written out here: helpers take scalars, and whitespace (absent from compact
    bodies) is skipped by a call only where a byte says it is there.
    """
    capacity = len(values)
    rows = 0
    pos = _skip_ws(buf, pos + 1)
    if buf[pos] == 93:
        return 0, pos + 1
    while True:
        if buf[pos] != 123:
            return _DECLINE, 0
        if rows == capacity:
            return _FULL, 0
        for k in range(N_COLUMNS):
            values[rows, k] = np.nan
        spans[rows, 0] = 0
        spans[rows, 1] = 0
        pos += 1
        if buf[pos] <= 32:
            pos = _skip_ws(buf, pos)
        if buf[pos] == 125:
            pos += 1
        else:
            while True:
                if buf[pos] != 34:
                    return _DECLINE, 0
                key = pos + 1
                # Output column of the key (o h l c v vw t), 7 for the ticker ``T``, -1 for any other key:
                # a table look-up, as a chain of comparisons per key cost about a sixth of the whole scan.
                if buf[key] != 34 and buf[key + 1] == 34:
                    column = _KEYMAP[buf[key]]
                    pos = key + 2
                elif buf[key] == 118 and buf[key + 1] == 119 and buf[key + 2] == 34:  # vw
                    column = 5
                    pos = key + 3
                else:
                    column = -1
                    pos = key
                    c = buf[pos]
                    while c != 34:
                        if c == 92 or c < 32:
                            return _DECLINE, 0
                        pos += 1
                        c = buf[pos]
                    pos += 1
                if buf[pos] <= 32:
                    pos = _skip_ws(buf, pos)
                if buf[pos] != 58:
                    return _DECLINE, 0
                pos += 1
                if buf[pos] <= 32:
                    pos = _skip_ws(buf, pos)
                c = buf[pos]
                if 48 <= c <= 57 or c == 45:
                    negative = c == 45
                    if negative:
                        pos += 1
                    mantissa, digits = _digits(_load_word(buf, pos), _load_word(buf, pos + 8), 0)
                    pos += digits
                    scale = 0
                    if buf[pos] == 46:
                        mantissa, fraction = _digits(_load_word(buf, pos + 1), _load_word(buf, pos + 9), mantissa)
                        if fraction == 0:
                            return _DECLINE, 0
                        pos += 1 + fraction
                        scale = -fraction
                        digits += fraction
                    if digits == 0 or digits > _MAX_DIGITS or column == _TICKER:
                        return _DECLINE, 0
                    if buf[pos] == 101 or buf[pos] == 69:
                        exponent, pos = _exponent(buf, pos)
                        if pos < 0:
                            return _DECLINE, 0
                        scale += exponent
                    value = _exact(mantissa, scale)
                    if np.isnan(value):
                        return _DECLINE, 0
                    if column >= 0:
                        values[rows, column] = -value if negative else value
                elif c == 34:
                    start = pos + 1
                    pos = start
                    c = buf[pos]
                    while c != 34:
                        # Escapes, control bytes and non-ASCII text decline (tickers are ASCII).
                        if c == 92 or c < 32 or c > 126:
                            return _DECLINE, 0
                        pos += 1
                        c = buf[pos]
                    if column == _TICKER:
                        spans[rows, 0] = start
                        spans[rows, 1] = pos - start
                    elif column >= 0:
                        return _DECLINE, 0
                    pos += 1
                elif c == 110 and buf[pos + 1] == 117 and buf[pos + 2] == 108 and buf[pos + 3] == 108:  # null
                    # A repeated key's null replaces its earlier value, as in a JSON decoder (the last wins).
                    if column == _TICKER:
                        spans[rows, 1] = 0
                    elif column >= 0:
                        values[rows, column] = np.nan
                    pos += 4
                elif column < 0 and c == 116 and buf[pos + 1] == 114 and buf[pos + 2] == 117 and buf[pos + 3] == 101:
                    pos += 4  # true, outside the bar fields
                elif (
                    column < 0
                    and c == 102
                    and buf[pos + 1] == 97
                    and buf[pos + 2] == 108
                    and buf[pos + 3] == 115
                    and buf[pos + 4] == 101
                ):
                    pos += 5  # false, outside the bar fields
                else:
                    return _DECLINE, 0
                if buf[pos] <= 32:
                    pos = _skip_ws(buf, pos)
                c = buf[pos]
                if c == 44:
                    pos += 1
                    if buf[pos] <= 32:
                        pos = _skip_ws(buf, pos)
                elif c == 125:
                    pos += 1
                    break
                else:
                    return _DECLINE, 0
        rows += 1
        if buf[pos] <= 32:
            pos = _skip_ws(buf, pos)
        if buf[pos] == 93:
            return rows, pos + 1
        if buf[pos] != 44:
            return _DECLINE, 0
        pos += 1
        if buf[pos] <= 32:
            pos = _skip_ws(buf, pos)


@njit(cache=True)
def _join_spans(buf: np.ndarray, spans: np.ndarray) -> np.ndarray:
    """The bytes at ``spans`` of ``buf``, each followed by a newline."""
    out = np.empty(int(spans[:, 1].sum()) + len(spans), dtype=np.uint8)
    used = 0
    for r in range(len(spans)):
        for k in range(spans[r, 0], spans[r, 0] + spans[r, 1]):
            out[used] = buf[k]
            used += 1
        out[used] = 10
        used += 1
    return out


@dataclass(frozen=True)
class ParsedBars:
    """The rows of one aggregates body: bar values, and each row's ticker as a span of ``buf``."""

    values: np.ndarray  # float64 (rows, 7): o h l c v vw t, NaN where absent
    buf: np.ndarray  # uint8: the body, then zero bytes
    spans: np.ndarray  # int64 (rows, 2): ticker start and length in ``buf`` (length 0: no ticker)
    # Where the results array starts and ends in the body: the rest of it is the page's other keys.
    start: int
    end: int

    def tickers(self) -> list[str]:
        """The row tickers as strings ("" for a row without one)."""
        joined = _join_spans(self.buf, self.spans)
        # One C-level split makes every string (a row without a ticker leaves an empty line).
        return joined.tobytes().decode("ascii").split("\n")[: len(self.spans)]


def _empty(buf: np.ndarray, start: int, end: int) -> ParsedBars:
    return ParsedBars(np.empty((0, N_COLUMNS)), buf, np.empty((0, 2), dtype=np.int64), start, end)


def parse_results(body: bytes) -> ParsedBars | None:
    """The rows of an aggregates body; None: use a JSON decoder.

    A body without results (or with ``"results": null``) gives no rows. Only the first ``"results"``
    key is read, so the body must not carry that key inside another object before it. The scan
    releases the GIL, so this can run on a worker thread.
    """
    buf = np.zeros(len(body) + _PAD, dtype=np.uint8)
    buf[: len(body)] = np.frombuffer(body, dtype=np.uint8)
    key = body.find(b'"results"')
    if key < 0:
        return _empty(buf, len(body), len(body))
    pos = int(_skip_ws(buf, key + 9))
    if buf[pos] != 58:
        return None
    pos = int(_skip_ws(buf, pos + 1))
    if body.startswith(b"null", pos):
        return _empty(buf, pos, pos + 4)
    if buf[pos] != 91:
        return None
    # Room for a row per 40 bytes (grouped rows take ~100); a denser body has its rows counted exactly.
    capacity = (len(body) - pos) // 40 + 16
    while True:
        values = np.empty((capacity, N_COLUMNS))
        spans = np.empty((capacity, 2), dtype=np.int64)
        rows, end = _scan(buf, pos, values, spans)
        if rows != _FULL:
            break
        capacity = body.count(b"{", pos) + 1
    if rows < 0:
        return None
    return ParsedBars(values[:rows], buf, spans[:rows], pos, end)
