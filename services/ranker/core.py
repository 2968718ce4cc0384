"""The ranker's operations, independent of gRPC: rank a scan once per fingerprint, look scans up,
attach explanations to a scan's rows."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping

import structlog

from services.ranker.cache import ScanCache
from services.ranker.engine import RankConfig, RankInput, ScoredChunk, rank_scan, validate_input
from services.ranker.errors import RankerInputError, ScanNotFoundError
from services.ranker.result import RankedScan

log = structlog.get_logger(__name__)


class Ranker:
    """Ranks scored chunks into cached scans and serves them back."""

    def __init__(self, config: RankConfig, cache: ScanCache) -> None:
        self.config = config
        self.cache = cache

    async def rank(self, inp: RankInput, chunks: AsyncIterator[ScoredChunk]) -> tuple[RankedScan, bool]:
        """(scan, cached). The chunks are read only when no identical scan is cached or running."""
        validate_input(inp)

        async def compute() -> RankedScan:
            received = [chunk async for chunk in chunks]
            # numpy and pandas release the GIL for most of it: the event loop keeps serving meanwhile.
            scan = await asyncio.to_thread(rank_scan, inp, received, self.config)
            log.info(
                "ranked",
                scan_id=inp.scan_id,
                fingerprint=inp.fingerprint,
                chunks=len(received),
                ranked=scan.accounting.ranked,
                requested=inp.requested,
                seconds=round(scan.stage_seconds["rank"], 4),
            )
            return scan

        scan, cached = await self.cache.get_or_compute(inp.fingerprint, compute)
        if inp.scan_id != scan.scan_id:
            self.cache.index(inp.scan_id, inp.fingerprint)
        return scan, cached

    async def lookup(self, scan_id: str = "", fingerprint: str = "") -> RankedScan:
        """The cached scan by fingerprint or scan id; ScanNotFoundError when absent."""
        if not (scan_id or fingerprint):
            raise RankerInputError("give a scan_id or a fingerprint")
        if not fingerprint:
            fingerprint = await self.cache.fingerprint_of(scan_id) or ""
            if not fingerprint:
                raise ScanNotFoundError(f"no ranked scan with id {scan_id!r} (expired or never ranked)")
        scan = await self.cache.get(fingerprint)
        if scan is None:
            raise ScanNotFoundError(f"no ranked scan with fingerprint {fingerprint!r} (expired or never ranked)")
        return scan

    async def attach_explanations(self, fingerprint: str, explanations: Mapping[str, bytes]) -> int:
        """Keep ``explanations`` (symbol -> encoded) with the cached scan, for every later page; how many
        name a row of it (the others are ignored). ScanNotFoundError when no such scan is cached."""
        if not fingerprint:
            raise RankerInputError("give the fingerprint of the ranked scan")
        attached = await self.cache.attach(fingerprint, explanations)
        if attached is None:
            raise ScanNotFoundError(f"no ranked scan with fingerprint {fingerprint!r} (expired or never ranked)")
        log.info("explanations attached", fingerprint=fingerprint, given=len(explanations), attached=attached)
        return attached
