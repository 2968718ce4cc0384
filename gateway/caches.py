"""The gateway's result caches, in one place: finished results, serialized answers, their keys.

- :func:`fingerprint` names a ranked scan: normalized options (without the page), as-of session,
  feature and model versions. The ranker caches ranked scans under it too.
- :class:`ResultStore` keeps finished results (pages of them) in process, the top rows of the last
  scan of each request (explained early by the next scan of it), and the latest result; its
  ``generation`` moves whenever a scan finishes, because any cached answer may then read differently.
- :class:`PageCache` keeps serialized answers of repeated reads (gRPC ``Scan``/``GetScan``, symbol
  pages, the HTTP API's rendered bodies) by their request bytes or :func:`symbol_key`, so a hit
  costs a dictionary lookup. An entry is dropped when the ranker's cache of
  the scan expires (the next XNYS close), when the generation moves, or, for the latest session (a
  request without ``as_of``), as soon as the latest as-of session differs from the answer's. An
  answer computed while the generation moved is not stored (it may predate the change).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass

import orjson
from cachetools import LRUCache

from gateway.settings import GatewaySettings
from services.contract.sessions import ttl_until_next_close
from technic.v1 import scan_pb2

PageKey = tuple[str, int, int, str, bool]
# Sessions of history on a symbol page when the request says none (days 0).
DEFAULT_DAYS = 90


def fingerprint(options: scan_pb2.ScanOptions, as_of: str, feature_version: str, model_versions: dict[str, str]) -> str:
    """Hash of the normalized options (without the page), as-of session and versions."""
    ranking = scan_pb2.ScanOptions()
    ranking.CopyFrom(options)
    for name in ("offset", "limit", "sort_by", "ascending", "as_of"):
        ranking.ClearField(name)
    digest = hashlib.sha256(ranking.SerializeToString(deterministic=True))
    digest.update(
        orjson.dumps(
            {"as_of": as_of, "features": feature_version, "models": model_versions}, option=orjson.OPT_SORT_KEYS
        )
    )
    return digest.hexdigest()[:32]


def page_key(fp: str, options: scan_pb2.ScanOptions) -> PageKey:
    return (fp, options.offset, options.limit, options.sort_by, options.ascending)


def symbol_key(symbol: str, days: int) -> bytes:
    """The key of a symbol page: the ticker as it is looked up (stripped, upper case) and the sessions
    of history it shows (0: :data:`DEFAULT_DAYS`). Kept under it in a :class:`PageCache` that follows
    the latest session, a page lives until that session or the latest scan changes."""
    return f"{symbol.strip().upper()}\n{days or DEFAULT_DAYS}".encode()


class ResultStore:
    """Finished results by fingerprint and page, the top rows of each request, the latest result."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self._results: LRUCache[PageKey, scan_pb2.ScanResult] = LRUCache(settings.gateway_result_cache_entries)
        self._top_rows: LRUCache[bytes, list[str]] = LRUCache(settings.gateway_result_cache_entries)
        self.latest: scan_pb2.ScanResult | None = None
        self.generation = 0

    def get(self, key: PageKey) -> scan_pb2.ScanResult | None:
        return self._results.get(key)

    def put(self, key: PageKey, result: scan_pb2.ScanResult) -> None:
        self._results[key] = result

    def top_rows(self, request: bytes) -> list[str]:
        """The explained rows of the last scan of ``request`` (normalized options, serialized)."""
        return self._top_rows.get(request, [])

    def top_symbols(self, result: scan_pb2.ScanResult) -> list[str]:
        """The best-ranked rows of the page, the ones that get explanations."""
        return [row.symbol for row in sorted(result.rows, key=lambda r: r.rank)[: self.settings.gateway_explain_top]]

    def remember(self, result: scan_pb2.ScanResult, opts: scan_pb2.ScanOptions, canonical: str) -> None:
        """Keep a finished result (marked cached) for repeated identical scans, under the request's
        fingerprint (``canonical``; a refreshed scan's own fingerprint carries its scan id)."""
        stored = scan_pb2.ScanResult()
        stored.CopyFrom(result)
        stored.cached = True
        # The per-symbol issues are the bulk of a full scan's message; a repeated scan carries the
        # accounting, and GetScan(include_issues) has the list.
        del stored.issues[:]
        self.put(page_key(canonical, opts), stored)
        self._top_rows[opts.SerializeToString(deterministic=True)] = self.top_symbols(result)
        self.latest = result
        self.generation += 1


@dataclass(frozen=True, slots=True)
class _Entry:
    data: bytes
    generation: int
    expires: float
    # The as-of session the answer is for when it follows the latest session; "" when pinned.
    latest_as_of: str


class PageCache:
    """LRU of serialized answers by request bytes, valid for one result generation, bounded by their
    total size (one 10,000-row page is ~17 MB, so a count of entries would bound nothing)."""

    def __init__(
        self,
        generation: Callable[[], int],
        fresh_as_of: Callable[[], str],
        max_bytes: int = 64 << 20,
        ttl: Callable[[], float] = ttl_until_next_close,
    ) -> None:
        self._generation = generation
        self._fresh_as_of = fresh_as_of
        self.max_bytes = max_bytes
        self._ttl = ttl
        self._entries: LRUCache[bytes, _Entry] = LRUCache(max_bytes, getsizeof=lambda entry: len(entry.data))
        self._seen = generation()

    @property
    def size(self) -> int:
        """Bytes of the answers kept."""
        return int(self._entries.currsize)

    def get(self, key: bytes) -> bytes | None:
        """The stored answer when it is still current, else None.

        A generation change drops every entry; an expired entry, or one for a latest session other
        than today's, is dropped. While the latest session is not known (its few seconds of trust
        ran out) an entry for the latest session is a miss but stays: once the session is asked
        again and is the same, the entry is served again instead of being rendered anew.
        """
        generation = self._generation()
        if generation != self._seen:
            self._entries.clear()
            self._seen = generation
            return None
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.generation != generation or time.monotonic() >= entry.expires:
            self._entries.pop(key, None)
            return None
        if entry.latest_as_of:
            fresh = self._fresh_as_of()
            if fresh != entry.latest_as_of:
                if fresh:
                    self._entries.pop(key, None)
                return None
        return entry.data

    def token(self) -> int:
        """The generation to pass to :meth:`put` for an answer computed from now on."""
        return self._generation()

    def put(self, key: bytes, data: bytes, token: int, latest_as_of: str = "") -> None:
        """Keep ``data`` for ``key`` unless the generation moved since ``token`` was taken."""
        if token != self._generation() or len(data) > self.max_bytes:
            return
        self._entries[key] = _Entry(data, token, time.monotonic() + self._ttl(), latest_as_of)

    def __len__(self) -> int:
        return len(self._entries)
