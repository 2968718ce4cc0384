"""Parse the ``results`` array of a Polygon aggregates body straight into numpy, in one Numba pass.

A grouped-daily body holds 10,000+ flat row objects; building a Python object per row costs about
15 ms per session, which over a year of sessions is most of a cold scan. This scanner reads the
bytes once and writes the bar fields into a float64 matrix and the ticker's byte offsets into two
int64 arrays. Numbers are converted exactly as a correctly rounded parser would (mantissa below
2**53 divided or multiplied by an exact power of ten); anything outside that fast path (escapes in
strings, very long mantissas, unexpected structure) makes :func:`parse_results` return None, and
the caller falls back to a general JSON decoder.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# Output columns: the bar fields in polygon.BAR_FIELDS order, then the timestamp.
N_COLUMNS = 7
_POW10 = np.array([10.0 ** i for i in range(23)])
_MAX_EXACT = float(2 ** 53)  # integers above this are not all exact in a float64
# Output column of each one-letter key (by its byte): o h l c v, t, and 7 for the ticker T.
_KEYMAP = np.full(256, -1, dtype=np.int64)
_KEYMAP[[ord(k) for k in "ohlcvtT"]] = [0, 1, 2, 3, 4, 6, 7]


@njit(cache=True, inline="always")
def _skip_ws(buf: np.ndarray, pos: int) -> int:
    while pos < len(buf) and buf[pos] <= 32 and (buf[pos] == 32 or buf[pos] == 10 or buf[pos] == 13 or buf[pos] == 9):
        pos += 1
    return pos


@njit(cache=True, inline="always")
def _number(buf: np.ndarray, pos: int, pow10: np.ndarray) -> tuple[float, int]:
    """(value, next position); next position -1 when the number is outside the exact fast path."""
    negative = False
    if buf[pos] == 45:
        negative = True
        pos += 1
    mantissa = 0
    digits = 0
    scale = 0
    seen = False
    while pos < len(buf) and 48 <= buf[pos] <= 57:
        mantissa = mantissa * 10 + (buf[pos] - 48)
        digits += 1
        pos += 1
        seen = True
    if pos < len(buf) and buf[pos] == 46:
        pos += 1
        while pos < len(buf) and 48 <= buf[pos] <= 57:
            mantissa = mantissa * 10 + (buf[pos] - 48)
            digits += 1
            scale -= 1
            pos += 1
            seen = True
    if not seen or digits > 15:
        return 0.0, -1
    if pos < len(buf) and (buf[pos] == 101 or buf[pos] == 69):
        pos += 1
        exp_negative = False
        if buf[pos] == 45 or buf[pos] == 43:
            exp_negative = buf[pos] == 45
            pos += 1
        exponent = 0
        exp_digits = 0
        while pos < len(buf) and 48 <= buf[pos] <= 57:
            exponent = exponent * 10 + (buf[pos] - 48)
            exp_digits += 1
            pos += 1
        if exp_digits == 0 or exponent > 300:
            return 0.0, -1
        scale += -exponent if exp_negative else exponent
    if scale < -22 or scale > 22:
        return 0.0, -1
    value = float(mantissa) / pow10[-scale] if scale < 0 else float(mantissa) * pow10[scale]
    if scale > 0 and mantissa * pow10[scale] >= _MAX_EXACT:
        return 0.0, -1
    return (-value if negative else value), pos


@njit(cache=True, nogil=True)
def _scan(buf: np.ndarray, pos: int, values: np.ndarray, joined: np.ndarray, pow10: np.ndarray,
          keymap: np.ndarray) -> tuple[int, int]:
    """Fill rows from the array starting at ``buf[pos] == '['``: (row count, bytes used in ``joined``),
    row count -1 to fall back. Each row's ticker goes to ``joined`` followed by a newline.

    Releases the GIL, so bodies can be scanned on worker threads while the event loop reads others.
    """
    n = len(buf)
    used = 0
    pos += 1
    rows = 0
    pos = _skip_ws(buf, pos)
    if pos < n and buf[pos] == 93:
        return 0, 0
    while pos < n:
        if rows >= len(values) or buf[pos] != 123:
            return -1, 0
        pos += 1
        while True:
            pos = _skip_ws(buf, pos)
            if pos >= n:
                return -1, 0
            if buf[pos] == 125:
                pos += 1
                break
            if buf[pos] != 34:
                return -1, 0
            key_start = pos + 1
            pos = key_start
            while pos < n and buf[pos] != 34:
                if buf[pos] == 92 or buf[pos] < 32:
                    return -1, 0
                pos += 1
            # Output column of the key (o h l c v vw t), 7 for the ticker ``T``, -1 for any other key: a
            # table look-up, as a chain of comparisons per key cost about a sixth of the whole scan.
            if pos - key_start == 1:
                column = keymap[buf[key_start]]
            elif pos - key_start == 2 and buf[key_start] == 118 and buf[key_start + 1] == 119:  # vw
                column = 5
            else:
                column = -1
            pos = _skip_ws(buf, pos + 1)
            if pos >= n or buf[pos] != 58:
                return -1, 0
            pos = _skip_ws(buf, pos + 1)
            if pos >= n:
                return -1, 0
            ch = buf[pos]
            if ch == 34:
                start = pos + 1
                pos = start
                while pos < n and buf[pos] != 34:
                    # Escapes, control bytes and non-ASCII text decline (tickers are ASCII).
                    if buf[pos] == 92 or buf[pos] < 32 or buf[pos] > 126:
                        return -1, 0
                    pos += 1
                if pos >= n:
                    return -1, 0
                if column == 7:
                    for k in range(start, pos):
                        joined[used] = buf[k]
                        used += 1
                elif column >= 0:
                    return -1, 0
                pos += 1
            elif ch == 110 or ch == 116 or ch == 102:  # null, true, false
                while pos < n and 97 <= buf[pos] <= 122:
                    pos += 1
                if 0 <= column < N_COLUMNS and ch != 110:
                    return -1, 0
            elif ch == 45 or 48 <= ch <= 57:
                value, pos = _number(buf, pos, pow10)
                if pos < 0:
                    return -1, 0
                if 0 <= column < N_COLUMNS:
                    values[rows, column] = value
                elif column == 7:
                    return -1, 0
            else:
                return -1, 0
            pos = _skip_ws(buf, pos)
            if pos < n and buf[pos] == 44:
                pos += 1
        joined[used] = 10
        used += 1
        rows += 1
        pos = _skip_ws(buf, pos)
        if pos < n and buf[pos] == 44:
            pos = _skip_ws(buf, pos + 1)
        elif pos < n and buf[pos] == 93:
            return rows, used
        else:
            return -1, 0
    return -1, 0


def parse_results(body: bytes) -> tuple[list[str], np.ndarray] | None:
    """(tickers, float64 (rows, 7) of o h l c v vw t) of an aggregates body; None: use a JSON decoder.

    Tickers are "" for rows without ``T`` (per-ticker ranges); absent numbers are NaN. The scan
    releases the GIL, so this can run on a worker thread. A body
    without results (or with ``"results": null``) gives empty arrays. Only the first ``"results"``
    key is read, so the body must not carry that key inside another object before it.
    """
    key = body.find(b'"results"')
    if key < 0:
        return [], np.empty((0, N_COLUMNS))
    buf = np.frombuffer(body, dtype=np.uint8)
    pos = int(_skip_ws(buf, key + 9))
    if pos >= len(buf) or buf[pos] != 58:
        return None
    pos = int(_skip_ws(buf, pos + 1))
    if body.startswith(b"null", pos):
        return [], np.empty((0, N_COLUMNS))
    if pos >= len(buf) or buf[pos] != 91:
        return None
    # Every row is an object, so the count of '{' bounds the rows; a ticker (and its newline) takes
    # fewer bytes than its row, so the body's length bounds the joined tickers.
    capacity = body.count(b"{", pos)
    values = np.full((capacity, N_COLUMNS), np.nan)
    joined = np.empty(len(body) - pos, dtype=np.uint8)
    rows, used = _scan(buf, pos, values, joined, _POW10, _KEYMAP)
    if rows < 0:
        return None
    # One C-level split makes every ticker string (a row without ``T`` leaves an empty line).
    tickers = joined[:used].tobytes().decode("ascii").split("\n")[:rows]
    return tickers, values[:rows]
