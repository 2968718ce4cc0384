"""Serialized answers of repeated reads, kept in gateway memory so a hit costs a dictionary lookup.

A repeated ``GetScan`` (or cached ``Scan``) with the same request bytes gets the same answer until
something that could change it happens, so the answer is kept as the bytes sent on the wire: no
call to the ranker, no message built or serialized per request. An entry is dropped:

- when the ranker's cache of the same scan expires (the close of the next XNYS session, the TTL the
  ranker gives its Redis keys), so the gateway never serves a scan the ranker no longer has;
- when the orchestrator's ``generation`` moves (a scan finished: a refresh replaced a result, or a
  result gained its explanations), because any page may then read differently;
- for the latest session (a request without ``as_of``), as soon as the orchestrator's latest
  as-of session differs from the one the answer was computed for.

An answer computed while the generation moved is not stored (it may predate the change).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from services.contract.sessions import ttl_until_next_close


@dataclass(frozen=True, slots=True)
class _Entry:
    data: bytes
    generation: int
    expires: float
    # The as-of session the answer is for when it follows the latest session; "" when pinned.
    latest_as_of: str


class PageCache:
    """LRU of serialized answers by request bytes, valid for one orchestrator generation, bounded by
    their total size (one 10,000-row page is ~17 MB, so a count of entries would bound nothing)."""

    def __init__(self, generation: Callable[[], int], fresh_as_of: Callable[[], str], max_bytes: int = 64 << 20,
                 ttl: Callable[[], float] = ttl_until_next_close) -> None:
        self._generation = generation
        self._fresh_as_of = fresh_as_of
        self.max_bytes = max_bytes
        self.size = 0
        self._ttl = ttl
        self._entries: OrderedDict[bytes, _Entry] = OrderedDict()

    def get(self, key: bytes) -> bytes | None:
        """The stored answer when it is still current, else None (and the entry is dropped)."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if (entry.generation != self._generation() or time.monotonic() >= entry.expires
                or (entry.latest_as_of and entry.latest_as_of != self._fresh_as_of())):
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return entry.data

    def token(self) -> int:
        """The generation to pass to :meth:`put` for an answer computed from now on."""
        return self._generation()

    def put(self, key: bytes, data: bytes, token: int, latest_as_of: str = "") -> None:
        """Keep ``data`` for ``key`` unless the generation moved since ``token`` was taken."""
        if token != self._generation() or len(data) > self.max_bytes:
            return
        self._drop(key)
        self._entries[key] = _Entry(data, token, time.monotonic() + self._ttl(), latest_as_of)
        self.size += len(data)
        while self.size > self.max_bytes:
            _, old = self._entries.popitem(last=False)
            self.size -= len(old.data)

    def _drop(self, key: bytes) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self.size -= len(entry.data)

    def __len__(self) -> int:
        return len(self._entries)
