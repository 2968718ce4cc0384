"""Process-wide ticker -> integer id, so rows are matched with numpy instead of string compares.

A year of grouped-daily bodies names about three million ticker rows. Besides the Python dict that
strings are looked up in, the index keeps its tickers in a Numba hash table, so the ticker spans of
a parsed body (services/fetcher/jsonbars.py) become ids in one pass without making a string per
row; only tickers the index has not seen yet are decoded.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from itertools import repeat

import numpy as np
from numba import njit

# Bytes of a ticker kept in the hash table; a longer one is looked up by its string only.
WIDTH = 16
_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)


@njit(cache=True, inline="always")
def _fnv1a(data: np.ndarray, start: int, length: int) -> np.uint64:
    """FNV-1a of ``data[start:start + length]``; :func:`_lookup` writes the same loop out inline."""
    h = _FNV_OFFSET
    for k in range(start, start + length):
        h = (h ^ np.uint64(data[k])) * _FNV_PRIME
    return h


@njit(cache=True, nogil=True)
def _lookup(
    buf: np.ndarray, spans: np.ndarray, slots: np.ndarray, keys: np.ndarray, lengths: np.ndarray, out: np.ndarray
) -> int:
    """Ids of the tickers at ``spans`` of ``buf`` into ``out`` (-1: not in the table); the count of -1."""
    mask = np.uint64(len(slots) - 1)
    missing = 0
    for r in range(len(spans)):
        start, length = spans[r, 0], spans[r, 1]
        out[r] = -1
        if length == 0 or length > WIDTH:
            missing += 1
            continue
        h = _FNV_OFFSET  # FNV-1a written out: a call taking an array costs two atomic reference counts
        for k in range(start, start + length):
            h = (h ^ np.uint64(buf[k])) * _FNV_PRIME
        h &= mask
        while True:
            i = slots[h]
            if i < 0:
                missing += 1
                break
            if lengths[i] == length:
                same = True
                for k in range(length):
                    if keys[i, k] != buf[start + k]:
                        same = False
                        break
                if same:
                    out[r] = i
                    break
            h = (h + np.uint64(1)) & mask
    return missing


@njit(cache=True)
def _insert(ids: np.ndarray, slots: np.ndarray, keys: np.ndarray, lengths: np.ndarray) -> None:
    """Put ``ids`` (whose keys and lengths are set, length > 0) into the open-addressing ``slots``."""
    mask = np.uint64(len(slots) - 1)
    for i in ids:
        h = _fnv1a(keys[i], 0, lengths[i]) & mask
        while slots[h] >= 0:
            h = (h + np.uint64(1)) & mask
        slots[h] = i


class TickerIndex:
    """Ticker strings <-> dense integer ids, the same for the life of the process. Thread-safe."""

    def __init__(self, capacity: int = 16384) -> None:
        capacity = 1 << (capacity - 1).bit_length()  # the slot mask needs a power of two
        self._ids: dict[str, int] = {}
        self._names = np.empty(capacity, dtype=object)  # by id; a fancy index gives many at once
        self._count = 0
        self._lock = threading.Lock()
        self._keys = np.zeros((capacity, WIDTH), dtype=np.uint8)
        self._lengths = np.zeros(capacity, dtype=np.int64)
        self._slots = np.full(2 * capacity, -1, dtype=np.int64)

    def __len__(self) -> int:
        return self._count

    def ids(self, tickers: Iterable[str], *, add: bool = True) -> np.ndarray:
        """Ids of ``tickers`` (new ones are added when ``add``, else get -1)."""
        tickers = tickers if isinstance(tickers, list | tuple) else list(tickers)
        with self._lock:
            return self._ids_locked(tickers, add)

    def ids_of_spans(self, buf: np.ndarray, spans: np.ndarray) -> np.ndarray:
        """Ids of the tickers at ``spans`` ((start, length) rows) of the ASCII bytes ``buf``, adding new ones."""
        out = np.empty(len(spans), dtype=np.int64)
        with self._lock:
            if _lookup(buf, spans, self._slots, self._keys, self._lengths, out):
                missing = np.flatnonzero(out < 0)
                names = [buf[s : s + n].tobytes().decode("ascii") for s, n in spans[missing].tolist()]
                out[missing] = self._ids_locked(names, True)
        return out

    def names(self, ids: np.ndarray) -> list[str]:
        """The tickers of ``ids`` (all known)."""
        return self._names[ids].tolist()

    def _ids_locked(self, tickers: list[str] | tuple[str, ...], add: bool) -> np.ndarray:
        table = self._ids
        ids = np.fromiter(map(table.get, tickers, repeat(-1)), dtype=np.int64, count=len(tickers))
        if add:
            added: list[str] = []
            for i in np.flatnonzero(ids < 0).tolist():
                ticker = tickers[i]
                if ticker not in table:
                    table[ticker] = self._count + len(added)
                    added.append(ticker)
                ids[i] = table[ticker]
            if added:
                self._add(added)
        return ids

    def _add(self, added: list[str]) -> None:
        """Give ``added`` the next ids: in the name array and the hash table, growing both first if full."""
        first = self._count
        if first + len(added) > len(self._lengths):
            self._grow(2 * (first + len(added)))
        self._names[first : first + len(added)] = added
        self._count += len(added)
        fresh = []
        for i, ticker in enumerate(added, start=first):
            raw = ticker.encode("utf-8")
            if 0 < len(raw) <= WIDTH:
                self._keys[i, : len(raw)] = np.frombuffer(raw, dtype=np.uint8)
                self._lengths[i] = len(raw)
                fresh.append(i)
        _insert(np.asarray(fresh, dtype=np.int64), self._slots, self._keys, self._lengths)

    def _grow(self, capacity: int) -> None:
        capacity = 1 << (capacity - 1).bit_length()  # the slot mask needs a power of two
        keys = np.zeros((capacity, WIDTH), dtype=np.uint8)
        lengths = np.zeros(capacity, dtype=np.int64)
        keys[: len(self._keys)] = self._keys
        lengths[: len(self._lengths)] = self._lengths
        names = np.empty(capacity, dtype=object)
        names[: self._count] = self._names[: self._count]
        self._keys, self._lengths, self._names = keys, lengths, names
        self._slots = np.full(2 * capacity, -1, dtype=np.int64)
        _insert(np.flatnonzero(lengths > 0), self._slots, self._keys, self._lengths)
