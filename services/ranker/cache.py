"""The ranked-scan cache: decoded scans in process memory first, compact bytes in Redis second.

Keys (prefix ``technic:ranker:``):

- ``scan:<fingerprint>``: the ranked scan (:meth:`RankedScan.to_bytes`: codec blocks, no pickles).
- ``id:<scan_id>``: the fingerprint of the scan with that id.
- ``explain:<fingerprint>``: the explanations attached to the scan's rows
  (:func:`explanations_to_bytes`), kept apart so that attaching them never rewrites the scan.

All expire at the close of the next XNYS session (exchange_calendars): that is when a newer
as-of session exists and the same request would rank different data. A page read is served from
the in-process LRU of decoded scans (no decoding, the sort orders kept with the scan), else from
Redis (decoded once with its explanations, then kept). Identical concurrent Rank calls compute
once: later callers await the first caller's result (single flight). A scan just computed is
served from process memory at once; its Redis copy is encoded (in a worker thread) and written in
the background, so the Rank answer does not wait for it (:meth:`ScanCache.drain` waits for the
writes still running). It takes up the explanations stored under its fingerprint, since an equal
fingerprint means the same rows. Attached explanations are written to Redis before the attach
returns, one write at a time, each with every explanation of the scan.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping

import structlog
from cachetools import LRUCache

from services.common.codec import BlockError
from services.common.redis_client import ResilientRedis
from services.contract.sessions import ttl_until_next_close
from services.ranker.result import RankedScan, explanations_from_bytes, explanations_to_bytes

log = structlog.get_logger(__name__)
SCAN_KEY = "technic:ranker:scan:"
ID_KEY = "technic:ranker:id:"
EXPLAIN_KEY = "technic:ranker:explain:"
MAX_IDS = 100_000


class FlightCancelledError(RuntimeError):
    """The call computing a fingerprint went away before it finished."""


class ScanCache:
    """Ranked scans by fingerprint (and scan id), with single-flight computation."""

    def __init__(
        self,
        redis: ResilientRedis | None,
        max_scans: int = 16,
        min_ttl: float = 60.0,
        ttl: Callable[[], float] | None = None,
    ) -> None:
        self.redis = redis
        self.ttl = ttl or (lambda: ttl_until_next_close(min_seconds=min_ttl))
        # Decoded scans, least recently read out first (at least one: the scan just computed).
        self._scans: LRUCache[str, RankedScan] = LRUCache(maxsize=max(max_scans, 1))
        self._ids: LRUCache[str, str] = LRUCache(maxsize=MAX_IDS)
        self._flights: dict[str, asyncio.Future[RankedScan]] = {}
        self._writes: set[asyncio.Task[None]] = set()
        self._explain_writes = asyncio.Lock()

    def cached(self, fingerprint: str) -> RankedScan | None:
        """The decoded scan when it is in process memory (no I/O)."""
        return self._scans.get(fingerprint)

    async def get(self, fingerprint: str) -> RankedScan | None:
        """The scan under ``fingerprint``: process memory, else Redis; None when absent or unreadable."""
        scan = self.cached(fingerprint)
        if scan is not None or self.redis is None:
            return scan
        data, explained = await self.redis.mget([SCAN_KEY + fingerprint, EXPLAIN_KEY + fingerprint])
        if data is None:
            return None
        try:
            scan = RankedScan.from_bytes(data)
        except (BlockError, KeyError, TypeError, ValueError) as exc:
            log.warning("unreadable ranked scan in redis, ignoring it", fingerprint=fingerprint, error=str(exc))
            return None
        known = self.cached(fingerprint)
        if known is not None:
            return known  # another call read it meanwhile: every caller shares one scan (and its explanations)
        scan.attach(_explanations(fingerprint, explained))
        self._scans[fingerprint] = scan
        return scan

    async def attach(self, fingerprint: str, explanations: Mapping[str, bytes]) -> int | None:
        """Attach ``explanations`` (symbol -> encoded) to the rows of the scan under ``fingerprint``.

        How many of them name a row of the scan; None when no such scan is cached. Stored in Redis
        before this returns, so they outlive this process.
        """
        scan = await self.get(fingerprint)
        if scan is None:
            return None
        attached = scan.attach(explanations)
        if attached and self.redis is not None:
            async with self._explain_writes:  # the last write holds every explanation attached so far
                data = explanations_to_bytes(scan.explanations)
                await self.redis.set(EXPLAIN_KEY + fingerprint, data, ttl=self.ttl())
        return attached

    async def fingerprint_of(self, scan_id: str) -> str | None:
        fingerprint = self._ids.get(scan_id)
        if fingerprint is None and self.redis is not None:
            raw = await self.redis.get(ID_KEY + scan_id)
            fingerprint = raw.decode() if raw is not None else None
        return fingerprint

    def put(self, scan: RankedScan) -> None:
        """Keep ``scan`` in process memory and store it (and its id) in Redis until the next close.

        The Redis write runs in the background; the scan is served from memory meanwhile.
        """
        self._scans[scan.fingerprint] = scan
        self.index(scan.scan_id, scan.fingerprint, scan)

    def index(self, scan_id: str, fingerprint: str, scan: RankedScan | None = None) -> None:
        """Make ``scan_id`` name the scan under ``fingerprint`` (Redis written in the background)."""
        self._ids[scan_id] = fingerprint
        if self.redis is not None:
            task = asyncio.create_task(self._write(self.redis, scan_id, fingerprint, scan))
            self._writes.add(task)
            task.add_done_callback(self._writes.discard)

    async def drain(self) -> None:
        """Wait for the background writes still running (before shutdown, or to read Redis after them)."""
        while self._writes:
            await asyncio.gather(*self._writes)

    async def _write(self, redis: ResilientRedis, scan_id: str, fingerprint: str, scan: RankedScan | None) -> None:
        """Store the id's fingerprint, and the scan's bytes (encoded off the event loop), in Redis."""
        items = {ID_KEY + scan_id: fingerprint.encode()}
        if scan is not None:
            items[SCAN_KEY + fingerprint] = await asyncio.to_thread(scan.to_bytes)
        await redis.mset(items, ttl=self.ttl())

    async def get_or_compute(
        self, fingerprint: str, compute: Callable[[], Awaitable[RankedScan]]
    ) -> tuple[RankedScan, bool]:
        """(scan, cached): the cached scan, the result of a running identical computation, or a new one."""
        while True:
            flight = self._flights.get(fingerprint)
            if flight is None:
                scan = await self.get(fingerprint)
                if scan is not None:
                    return scan, True
                flight = self._flights.get(fingerprint)
            if flight is None:
                break
            try:
                return await asyncio.shield(flight), True
            except FlightCancelledError:
                continue  # the first caller went away: compute (or join the next flight) instead
        scan = self.cached(fingerprint)
        if scan is not None:
            return scan, True
        flight = asyncio.get_running_loop().create_future()
        flight.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._flights[fingerprint] = flight
        try:
            scan = await compute()
            if self.redis is not None:
                scan.attach(_explanations(fingerprint, await self.redis.get(EXPLAIN_KEY + fingerprint)))
            self.put(scan)
        except asyncio.CancelledError:
            flight.set_exception(FlightCancelledError(f"computation of {fingerprint} was cancelled"))
            raise
        except BaseException as exc:
            flight.set_exception(exc)
            raise
        else:
            flight.set_result(scan)
            return scan, False
        finally:
            self._flights.pop(fingerprint, None)


def _explanations(fingerprint: str, data: bytes | None) -> dict[str, bytes]:
    """The stored explanations of a scan; none when absent or unreadable."""
    if data is None:
        return {}
    try:
        return explanations_from_bytes(data)
    except BlockError as exc:
        log.warning("unreadable explanations in redis, ignoring them", fingerprint=fingerprint, error=str(exc))
        return {}
