"""The gateway's domain entry point: scans and the read-only queries, for the gRPC and HTTP APIs.

A scan runs the steps of :class:`~gateway.pipeline.ScanPipeline`. Around it: identical scans at the
same time run once (later ones join the first one's result), and a repeated scan is answered from
a cache: the result is keyed by a fingerprint (normalized options, as-of session, feature and model
versions, the last two known up front from ``Compute.Describe``), the latest as-of session is
trusted for a few seconds, and finished results are kept in process, so an identical scan costs a
dictionary lookup; otherwise the ranker's cache is asked before any work starts. A scan asked with
``refresh`` skips both caches and is ranked under its own fingerprint (the request's, salted with the
scan id), then replaces the in-process entry. Cancelling a scan (the client went away) cancels every
call still running.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

from gateway.backends import Backends
from gateway.caches import DEFAULT_DAYS, PageCache, ResultStore, fingerprint, page_key, symbol_key
from gateway.catalog import ModelCatalog
from gateway.errors import InvalidRequest, NotFound, ScanError, Unavailable
from gateway.market import MarketView
from gateway.pipeline import STAGES, Progress, ScanDeps, ScanPipeline
from gateway.queries import Queries
from gateway.settings import GatewaySettings
from gateway.validation import check_options, normalize_options
from technic.v1 import ranker_pb2, scan_pb2, scanner_pb2

__all__ = ["STAGES", "InvalidRequest", "NotFound", "Orchestrator", "Progress", "ScanError", "Unavailable"]


class Orchestrator:
    """Runs scans and answers the read-only queries of the public APIs."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.backends = Backends(settings)
        self.market = MarketView(self.backends, settings)
        self.catalog = ModelCatalog(self.backends)
        self.results = ResultStore(settings)
        self.queries = Queries(self.backends, self.market, self.results)
        self.deps = ScanDeps(settings, self.backends, self.market, self.catalog, self.results, self._cached)
        self._flights: dict[bytes, asyncio.Future[scan_pb2.ScanResult]] = {}
        # Serialized symbol pages: one shows the latest session's bars and the latest scan's row.
        self.symbol_pages = PageCache(lambda: self.generation, self.fresh_as_of, settings.gateway_page_cache_mb << 20)

    async def close(self) -> None:
        await self.backends.close()

    @property
    def versions(self) -> tuple[str, dict[str, str]]:
        """Feature and model versions the replicas described (empty before they were asked)."""
        return self.catalog.feature_version, self.catalog.model_versions

    @property
    def latest(self) -> scan_pb2.ScanResult | None:
        return self.results.latest

    @property
    def generation(self) -> int:
        """Moves whenever a scan finishes: answers cached from earlier results may read differently now."""
        return self.results.generation

    def fresh_as_of(self) -> str:
        """The latest as-of session while it is trusted without asking the fetcher, else ""."""
        return self.market.fresh_as_of()

    async def scan(
        self, options: scan_pb2.ScanOptions, *, refresh: bool = False, scan_id: str = ""
    ) -> AsyncIterator[Progress | scan_pb2.ScanResult]:
        """Progress events while the scan runs, then its ScanResult as the last item."""
        problem = check_options(options)
        if problem:
            raise InvalidRequest(problem)
        opts = normalize_options(options, self.settings)
        scan_id = scan_id or uuid.uuid4().hex
        flight_key = b"" if refresh else opts.SerializeToString(deterministic=True)
        if not refresh:
            as_of = opts.as_of or self.fresh_as_of()
            cached = await self._cached(opts, as_of) if as_of else None
            if cached is not None:
                yield cached
                return
            # Single flight: an identical scan already running is joined, not run again.
            leader = self._flights.get(flight_key)
            if leader is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    yield await asyncio.shield(leader)
                    return
                if not leader.cancelled():
                    raise asyncio.CancelledError
        queue: asyncio.Queue[Progress | scan_pb2.ScanResult | BaseException] = asyncio.Queue()
        flight: asyncio.Future[scan_pb2.ScanResult] | None = None
        if not refresh:
            flight = self._flights[flight_key] = asyncio.get_running_loop().create_future()
            flight.add_done_callback(lambda f: f.cancelled() or f.exception())

        async def run() -> None:
            try:
                result = await ScanPipeline(self.deps, opts, scan_id, refresh, queue.put_nowait).run()
                if flight is not None:
                    flight.set_result(result)
                queue.put_nowait(result)
            except BaseException as exc:
                if flight is not None and not flight.done():
                    # Followers of a cancelled leader run the scan themselves; other errors are theirs too.
                    if isinstance(exc, asyncio.CancelledError):
                        flight.cancel()
                    else:
                        flight.set_exception(exc)
                queue.put_nowait(exc)
                raise
            finally:
                if flight is not None and self._flights.get(flight_key) is flight:
                    del self._flights[flight_key]

        task = asyncio.create_task(run())
        try:
            while True:
                item = await queue.get()
                if isinstance(item, BaseException):
                    raise item
                yield item
                if isinstance(item, scan_pb2.ScanResult):
                    return
        finally:
            if not task.done():
                task.cancel()
            with contextlib.suppress(BaseException):
                await task

    async def _cached(self, opts: scan_pb2.ScanOptions, as_of: str) -> scan_pb2.ScanResult | None:
        """The finished result for these options and session, from process memory or the ranker."""
        try:
            description = await self.catalog.describe()
        except ScanError:
            return None  # compute cannot say its versions: no fingerprint, so no cache to ask
        fp = fingerprint(opts, as_of, description.feature_version, dict(description.model_versions))
        key = page_key(fp, opts)
        hit = self.results.get(key)
        if hit is not None:
            return hit
        result = await self.backends.cached_results(
            ranker_pb2.GetResultsRequest(
                fingerprint=fp, offset=opts.offset, limit=opts.limit, sort_by=opts.sort_by, ascending=opts.ascending
            )
        )
        if result is None:
            return None
        result.cached = True
        self.results.put(key, result)
        return result

    async def get_scan(self, request: scanner_pb2.GetScanRequest) -> scan_pb2.ScanResult:
        """A page of a finished scan, by id or fingerprint."""
        return await self.queries.get_scan(request)

    async def symbol(self, symbol: str, days: int = DEFAULT_DAYS) -> scanner_pb2.SymbolDetail:
        """History, reference data and the latest ranking row of one symbol; NotFound when unknown."""
        return await self.queries.symbol(symbol, days)

    async def latest_session(self) -> str:
        """The latest as-of session: the one trusted in process, else the fetcher's (trusted again)."""
        return self.fresh_as_of() or (await self.market.snapshot("", refresh=False)).as_of

    async def symbol_page(self, symbol: str, days: int = DEFAULT_DAYS) -> tuple[bytes, str]:
        """The serialized SymbolDetail of ``symbol`` over ``days`` sessions and the session it shows.

        The page is kept until the latest session or the latest scan changes (what it shows), so a
        repeated page costs a dictionary lookup instead of a fetcher round trip. NotFound when unknown.
        """
        key = symbol_key(symbol, days)
        as_of = await self.latest_session()
        kept = self.symbol_pages.get(key)
        if kept is not None:
            return kept, as_of
        token = self.symbol_pages.token()
        detail = await self.queries.symbol(symbol, days, as_of)
        data = detail.SerializeToString()
        self.symbol_pages.put(key, data, token, latest_as_of=as_of)
        return data, as_of

    async def universe_stats(self) -> scanner_pb2.UniverseStats:
        """Sectors and industries of the universe with their counts."""
        return await self.queries.universe_stats()

    async def health(self) -> dict[str, dict[str, str]]:
        """Health of each backend process and of its Redis dependency, by name."""
        return await self.backends.health()
