"""Scan orchestration: the gateway's domain, a gRPC client of the fetcher, compute and ranker.

One scan: universe + snapshot -> prefilter -> ``Fetcher.Prefetch`` (symbols stream in, chunk
references stream out) -> each chunk scored by ``Compute.Score`` over one round_robin channel with
a bounded number of chunks in flight, so every replica works on the same scan -> scored chunks
streamed into ``Ranker.Rank`` -> ``Compute.Explain`` for the top rows -> result. The stages overlap:
a chunk is scored and ranked while later chunks are still being fetched, and the rows that topped
the last scan of the same request are explained while the ranker ranks (usually they top again).

Nothing is lost: a chunk whose replica fails is retried (round_robin picks another replica); a chunk
that still fails reaches the ranker as rows in state ERROR, so the accounting covers it. Every call
has a deadline, and cancelling the scan (the client went away) cancels every call still running.

Identical scans at the same time run once (single flight): later ones wait for the first one's
result. Repeated scans are cheap: the result is keyed by a fingerprint (normalized options, as-of session,
model and feature versions). The latest as-of session is trusted for a few seconds, and finished
results are kept in process, so an identical scan costs a dictionary lookup; otherwise the ranker's
cache is asked before any work starts. A scan asked with ``refresh`` skips both caches and is ranked
under its own fingerprint (the request's, salted with the scan id), then replaces the in-process entry.
Work that depends only on the snapshot, the universe and the request rules is not repeated by a
scan that asks the same again (a refresh): the prefilter result and the header parts built from it
are kept while the snapshot's bytes are the same, and ticker details while the universe is trusted.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TypeVar

import grpc
import numpy as np
import orjson
import structlog
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway.prefilter import DEFAULT_TYPES, EXCLUDED_EXCHANGES, Prefiltered, PrefilterSpec, lookup, prefilter
from gateway.settings import GatewaySettings
from gateway.validation import FEATURE_NAMES, check_options, normalize_options
from services.common.channels import make_channel
from services.common.codec import Block, BlockError, decode_block, encode_block
from services.common.grpc_server import DEPENDENCY_PREFIX
from services.contract.features import LEVEL_FIELDS
from services.contract.models import MODEL_NAMES
from technic.v1 import (
    common_pb2,
    compute_pb2,
    compute_pb2_grpc,
    fetcher_pb2,
    fetcher_pb2_grpc,
    ranker_pb2,
    ranker_pb2_grpc,
    scan_pb2,
    scanner_pb2,
)

log = structlog.get_logger(__name__)
T = TypeVar("T")

STAGES = ("universe", "snapshot", "prefilter", "fetch", "compute", "rank", "explain")
BENCHMARK = "SPY"
BENCHMARK_DAYS = 260
# Failures of one replica (or of the network to it): the chunk goes to another replica.
RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                       grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.INTERNAL,
                       grpc.StatusCode.UNKNOWN, grpc.StatusCode.ABORTED})
# Snapshots of pinned (past) as-of sessions kept in process (each ~1 MB for 11,000 tickers).
PINNED_SNAPSHOTS = 8
# Prefilter results kept in process, by request rules (each ~1 MB: the snapshot bytes it was made from).
PREFILTERS = 8
# Pause between attempts to fetch the rest of a scan after the fetcher went away.
FETCH_RETRY_PAUSE = 0.5
# Block layouts of a ScoreResponse (the contract), used for ERROR rows before any chunk was scored.
DEFAULT_BLOCK_FIELDS: dict[str, tuple[str, ...]] = {
    "features": FEATURE_NAMES,
    "scores": MODEL_NAMES,
    "levels": LEVEL_FIELDS,
    "sparklines": (),
}


class ScanError(Exception):
    """A request the gateway cannot serve; the message is safe to show to a client."""


class InvalidRequest(ScanError):
    """The request itself is wrong."""


class NotFound(ScanError):
    """The scan or symbol asked for does not exist."""


class Unavailable(ScanError):
    """A backend needed for the request cannot be reached."""


@dataclass(frozen=True)
class Progress:
    """One stage's progress: ``done`` of ``total`` units (symbols, or 1 for one-step stages)."""

    stage: str
    done: int
    total: int
    elapsed: float
    message: str = ""


@dataclass
class _Versions:
    feature_version: str = ""
    model_versions: dict[str, str] = field(default_factory=dict)
    # Field names of each block of a ScoreResponse, to build well-formed rows for failed chunks.
    block_fields: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass
class _Snapshot:
    as_of: str
    block: Block
    fetched: float
    raw: bytes = b""  # the block as the fetcher sent it: an identical answer is not decoded again


@dataclass
class _Prefilter:
    """A prefilter result and what the ranker header derives from it, reused while the snapshot's bytes
    and the universe are the same (a warm scan asks the same again, and filtering 11,000 tickers and
    building a message per issue cost tens of milliseconds)."""

    snapshot: bytes
    universe: fetcher_pb2.GetUniverseResponse
    kept: Prefiltered
    issues: tuple[np.ndarray, np.ndarray, np.ndarray]
    header: bytes = b""  # a serialized RankHeader holding the issues
    info: tuple[fetcher_pb2.GetUniverseResponse, bytes] | None = None  # details -> RankHeader with their info

    def issues_header(self) -> bytes:
        """The issues as a serialized RankHeader, to merge into the scan's header (built once)."""
        if not self.header:
            symbols, buckets, reasons = (column.tolist() for column in self.issues)
            self.header = ranker_pb2.RankHeader(issues=[
                common_pb2.SymbolIssue(symbol=s, bucket=b, reason=r)
                for s, b, r in zip(symbols, buckets, reasons, strict=True)]).SerializeToString()
        return self.header

    def info_header(self, details: fetcher_pb2.GetUniverseResponse) -> bytes:
        """The survivors' reference columns as a serialized RankHeader (built once per details answer)."""
        if self.info is None or self.info[0] is not details:
            info = Orchestrator._aligned(details, self.kept.survivors)
            self.info = (details, ranker_pb2.RankHeader(info=info).SerializeToString())
        return self.info[1]


def fingerprint(options: scan_pb2.ScanOptions, as_of: str, feature_version: str,
                model_versions: dict[str, str]) -> str:
    """Hash of the normalized options (without the page), as-of session and versions."""
    ranking = scan_pb2.ScanOptions()
    ranking.CopyFrom(options)
    for name in ("offset", "limit", "sort_by", "ascending", "as_of"):
        ranking.ClearField(name)
    digest = hashlib.sha256(ranking.SerializeToString(deterministic=True))
    digest.update(orjson.dumps({"as_of": as_of, "features": feature_version, "models": model_versions},
                               option=orjson.OPT_SORT_KEYS))
    return digest.hexdigest()[:32]


def ranking_options(options: scan_pb2.ScanOptions) -> scan_pb2.ScanOptions:
    """The options the ranker applies: the prefilter's rules (sectors, floors) are already applied."""
    ranking = scan_pb2.ScanOptions()
    ranking.CopyFrom(options)
    for name in ("sectors", "min_price", "min_dollar_volume"):
        ranking.ClearField(name)
    return ranking


def compute_addresses(target: str) -> list[str]:
    """The individual replica addresses of an ``ipv4:a,b`` target; the target itself otherwise."""
    if target.startswith(("ipv4:", "ipv6:")):
        return [a.strip() for a in target.split(":", 1)[1].split(",") if a.strip()]
    return [target]


def _status(exc: grpc.aio.AioRpcError) -> str:
    return f"{exc.code().name}: {exc.details() or ''}".strip()


def errored_response(symbols: Iterable[str], chunk_index: int, versions: _Versions) -> compute_pb2.ScoreResponse:
    """A ScoreResponse with every row in state ERROR (NaN values), for a chunk that could not be scored."""
    symbols = list(symbols)
    response = compute_pb2.ScoreResponse(
        chunk_index=chunk_index, symbols=symbols,
        states=[common_pb2.SYMBOL_STATE_ERROR] * len(symbols),
        feature_version=versions.feature_version, model_versions=versions.model_versions,
        stats=common_pb2.Stats(counters={"errored": len(symbols)}),
    )
    for name in ("features", "scores", "levels", "sparklines"):
        fields = versions.block_fields.get(name, DEFAULT_BLOCK_FIELDS[name])
        array = np.full((len(symbols), len(fields)), np.nan, dtype=np.float32)
        setattr(response, name, encode_block(array, rows=symbols, fields=fields))
    return response


class Orchestrator:
    """Runs scans and answers the read-only queries of the public APIs."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self._channels = {
            "fetcher": make_channel(settings.fetcher_target, settings),
            "compute": make_channel(settings.compute_target, settings),
            "ranker": make_channel(settings.ranker_target, settings),
        }
        self.fetcher = fetcher_pb2_grpc.FetcherStub(self._channels["fetcher"])
        self.compute = compute_pb2_grpc.ComputeStub(self._channels["compute"])
        self.ranker = ranker_pb2_grpc.RankerStub(self._channels["ranker"])
        self._health_channels: dict[str, grpc.aio.Channel] = {}
        self._versions = _Versions()
        self._snapshot: _Snapshot | None = None
        self._latest_snapshot: asyncio.Future[_Snapshot] | None = None
        # Snapshots of past sessions by as-of: final once every session of the window was fetched.
        self._pinned: OrderedDict[str, _Snapshot] = OrderedDict()
        self._prefilters: OrderedDict[tuple[object, ...], _Prefilter] = OrderedDict()
        self._universe: tuple[fetcher_pb2.GetUniverseResponse, float] | None = None
        self._columns: tuple[fetcher_pb2.GetUniverseResponse, tuple[np.ndarray, ...]] | None = None
        # The last ticker details answer and when it came (see _survivor_details).
        self._known_details: tuple[fetcher_pb2.GetUniverseResponse, float] | None = None
        self._benchmark: dict[str, bytes] = {}
        self._flights: dict[bytes, asyncio.Future[scan_pb2.ScanResult]] = {}
        self._results: OrderedDict[tuple[object, ...], scan_pb2.ScanResult] = OrderedDict()
        self._explanations: OrderedDict[str, dict[str, compute_pb2.SymbolExplanation]] = OrderedDict()
        # The explained (top) rows of the last scan of each request, by normalized options.
        self._top_rows: OrderedDict[bytes, list[str]] = OrderedDict()
        self._latest: scan_pb2.ScanResult | None = None
        self._latest_rows: tuple[str, dict[str, scan_pb2.ScanRow]] | None = None
        # Moves whenever a scan finishes: answers cached from earlier results may read differently now.
        self.generation = 0

    async def close(self) -> None:
        for channel in (*self._channels.values(), *self._health_channels.values()):
            await channel.close()

    @property
    def versions(self) -> tuple[str, dict[str, str]]:
        """Feature and model versions seen in the latest scored chunk (empty before the first scan)."""
        return self._versions.feature_version, dict(self._versions.model_versions)

    @property
    def latest(self) -> scan_pb2.ScanResult | None:
        return self._latest

    # ---- scans -------------------------------------------------------------------------------

    async def scan(self, options: scan_pb2.ScanOptions, *, refresh: bool = False,
                   scan_id: str = "") -> AsyncIterator[Progress | scan_pb2.ScanResult]:
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
                result = await self._run(opts, scan_id, refresh, queue.put_nowait)
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

    async def _run(self, opts: scan_pb2.ScanOptions, scan_id: str, refresh: bool,
                   emit: Callable[[Progress], None]) -> scan_pb2.ScanResult:
        started = time.perf_counter()
        seconds: dict[str, float] = {}
        bound = log.bind(scan_id=scan_id)

        def progress(stage: str, done: int, total: int, message: str = "") -> None:
            emit(Progress(stage, done, total, time.perf_counter() - started, message))

        progress("universe", 0, 1)
        progress("snapshot", 0, 1)

        async def timed(name: str, coro: Awaitable[T]) -> T:
            t0 = time.perf_counter()
            value = await coro
            seconds[name] = time.perf_counter() - t0
            return value

        # The universe is reference data on its own TTL: a refresh is about the session and the ranking.
        universe, snapshot = await asyncio.gather(timed("universe", self._get_universe()),
                                                  timed("snapshot", self._get_snapshot(opts.as_of, refresh)))
        progress("universe", 1, 1, f"{len(universe.symbols)} tickers")
        progress("snapshot", 1, 1, f"{len(snapshot.block.rows)} tickers traded on {snapshot.as_of}")
        benchmark_task = asyncio.create_task(self._get_benchmark(snapshot.as_of))

        if not refresh:
            cached = await self._cached(opts, snapshot.as_of)
            if cached is not None:
                benchmark_task.cancel()
                return cached

        t = time.perf_counter()
        progress("prefilter", 0, len(opts.universe) or len(universe.symbols))
        entry = await self._prefilter(opts, universe, snapshot)
        kept, survivors = entry.kept, entry.kept.survivors
        # Ticker details (one request per name the fetcher lacks) are fetched beside the bars: the
        # ranker needs them only in its header, which waits for the first scored chunk anyway.
        details = asyncio.create_task(timed("details", self._survivor_details(entry)))
        seconds["prefilter"] = time.perf_counter() - t
        progress("prefilter", len(survivors), kept.requested,
                 f"{len(survivors)} of {kept.requested} symbols pass the prefilter")
        bound.info("prefiltered", requested=kept.requested, survivors=len(survivors))

        # The prefilter's issues go into the header while the first chunks are fetched, not before.
        header = ranker_pb2.RankHeader(scan_id=scan_id, options=ranking_options(opts), as_of=snapshot.as_of,
                                       requested=kept.requested)
        pipeline = _Pipeline(self, opts, scan_id, snapshot.as_of, entry, header, benchmark_task,
                             progress, seconds, refresh, details,
                             self._top_rows.get(opts.SerializeToString(deterministic=True), []))
        try:
            result = await pipeline.run()
        finally:
            details.cancel()
            with contextlib.suppress(BaseException):
                await details
        seconds.update({f"compute_{k}": v for k, v in pipeline.replica_seconds.items()})

        t = time.perf_counter()
        await self._explain(result, pipeline, progress)
        seconds["explain"] = time.perf_counter() - t
        seconds["total"] = time.perf_counter() - started
        result.stage_seconds.update(seconds)
        self._remember(result, opts, pipeline.canonical or result.fingerprint)
        bound.info("scan finished", seconds=round(seconds["total"], 3), ranked=result.accounting.ranked,
                   requested=result.accounting.requested)
        return result

    async def _prefilter(self, opts: scan_pb2.ScanOptions, universe: fetcher_pb2.GetUniverseResponse,
                         snapshot: _Snapshot) -> _Prefilter:
        """The prefilter result of ``opts`` over this universe and snapshot (kept while both stay the same)."""
        explicit = bool(opts.universe)
        types = None if explicit else (DEFAULT_TYPES | {"ETF"} if opts.include_etfs else DEFAULT_TYPES)
        spec = PrefilterSpec(
            universe=tuple(opts.universe),
            min_price=opts.min_price if opts.HasField("min_price") else 0.0,
            min_dollar_volume=opts.min_dollar_volume if opts.HasField("min_dollar_volume") else 0.0,
            types=types, exclude_exchanges=frozenset() if explicit else EXCLUDED_EXCHANGES,
        )
        key = (spec, tuple(opts.sectors), opts.max_symbols, snapshot.as_of)
        entry = self._prefilters.get(key)
        if entry is not None and entry.universe is universe and snapshot.raw and entry.snapshot == snapshot.raw:
            self._prefilters.move_to_end(key)
            return entry
        block = snapshot.block
        kept = prefilter(*self._universe_columns(universe), block.rows,
                         block.column("close"), block.column("avg_dollar_volume"), spec)
        if opts.sectors:
            details = await self._details(kept.survivors)
            kept.keep_sectors(self._aligned(details, kept.survivors).sectors, opts.sectors)
        kept.cap(opts.max_symbols)
        entry = _Prefilter(snapshot=snapshot.raw, universe=universe, kept=kept, issues=kept.issues())
        self._prefilters[key] = entry
        while len(self._prefilters) > PREFILTERS:
            self._prefilters.popitem(last=False)
        return entry

    def _universe_columns(self, universe: fetcher_pb2.GetUniverseResponse) -> tuple[np.ndarray, ...]:
        """Symbols, types and exchanges of ``universe`` as arrays, converted once per universe answer
        (numpy reads a protobuf repeated field an element at a time)."""
        cached = self._columns
        if cached is None or cached[0] is not universe:
            cached = self._columns = (universe, tuple(np.asarray(list(column), dtype=object) for column in (
                universe.symbols, universe.types, universe.exchanges)))
        return cached[1]

    async def _survivor_details(self, entry: _Prefilter) -> fetcher_pb2.GetUniverseResponse:
        """Ticker details covering the prefilter's survivors, trusted as long as the universe is.

        The answers are kept and grown: the fetcher is asked only for survivors they lack (the next
        session's survivors are mostly the same names), and for all of them again once too old.
        """
        survivors = entry.kept.survivors
        known = self._known_details
        if known is None or time.monotonic() - known[1] >= self.settings.gateway_universe_ttl_seconds:
            details = await self._details(survivors)
            self._known_details = (details, time.monotonic())
            return details
        covered = lookup([*known[0].symbols, *known[0].not_found], survivors) >= 0
        if covered.all():
            return known[0]
        new = await self._details(survivors[~covered])
        grown = fetcher_pb2.GetUniverseResponse()
        grown.CopyFrom(known[0])
        grown.MergeFrom(new)  # appends every per-symbol column (and not_found)
        self._known_details = (grown, known[1])
        return grown

    async def _cached(self, opts: scan_pb2.ScanOptions, as_of: str) -> scan_pb2.ScanResult | None:
        """The finished result for these options and session, from process memory or the ranker."""
        if not self._versions.model_versions:
            return None
        fp = fingerprint(opts, as_of, self._versions.feature_version, self._versions.model_versions)
        key = (fp, opts.offset, opts.limit, opts.sort_by, opts.ascending)
        hit = self._results.get(key)
        if hit is not None:
            self._results.move_to_end(key)
            return hit
        request = ranker_pb2.GetResultsRequest(fingerprint=fp, offset=opts.offset, limit=opts.limit,
                                               sort_by=opts.sort_by, ascending=opts.ascending)
        try:
            result = await self.ranker.GetResults(request, timeout=self.settings.gateway_results_deadline)
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.NOT_FOUND:
                log.warning("ranker cache lookup failed", error=_status(exc))
            return None
        result.cached = True
        explained = self._explanations.get(fp, {})
        for row in result.rows:
            if row.symbol in explained and not row.explanation:
                row.explanation.append(explained[row.symbol])
        self._store(key, result)
        return result

    def _store(self, key: tuple[object, ...], result: scan_pb2.ScanResult) -> None:
        self._results[key] = result
        while len(self._results) > self.settings.gateway_result_cache_entries:
            self._results.popitem(last=False)

    def _remember(self, result: scan_pb2.ScanResult, opts: scan_pb2.ScanOptions, canonical: str) -> None:
        """Keep a finished result (marked cached) for repeated identical scans, under the request's
        fingerprint (``canonical``; a refreshed scan's own fingerprint carries its scan id)."""
        stored = scan_pb2.ScanResult()
        stored.CopyFrom(result)
        stored.cached = True
        # The per-symbol issues are the bulk of a full scan's message; a repeated scan carries the
        # accounting, and GetScan(include_issues) has the list.
        del stored.issues[:]
        self._store((canonical, opts.offset, opts.limit, opts.sort_by, opts.ascending), stored)
        explained = {row.symbol: row.explanation[0] for row in result.rows if row.explanation}
        self._explanations[canonical] = self._explanations[result.fingerprint] = explained
        while len(self._explanations) > self.settings.gateway_result_cache_entries:
            self._explanations.popitem(last=False)
        request = opts.SerializeToString(deterministic=True)
        self._top_rows[request] = self._top_symbols(result)
        self._top_rows.move_to_end(request)
        while len(self._top_rows) > self.settings.gateway_result_cache_entries:
            self._top_rows.popitem(last=False)
        self._latest = result
        self._latest_rows = None
        self.generation += 1

    def _learn(self, response: compute_pb2.ScoreResponse) -> None:
        """Remember the versions and block layouts of a scored chunk (for fingerprints and ERROR rows)."""
        versions = self._versions
        versions.feature_version = response.feature_version
        versions.model_versions = dict(response.model_versions)
        if len(versions.block_fields) < 4:
            for name in ("features", "scores", "levels", "sparklines"):
                data = getattr(response, name)
                if data:
                    versions.block_fields[name] = decode_block(data).fields

    def fresh_as_of(self) -> str:
        """The latest as-of session while it is trusted without asking the fetcher, else ""."""
        snap = self._snapshot
        if snap is not None and time.monotonic() - snap.fetched < self.settings.gateway_as_of_ttl_seconds:
            return snap.as_of
        return ""

    # ---- backend calls -------------------------------------------------------------------------

    async def _call(self, stage: str, call: Callable[[], object]) -> object:
        """Await one unary call; a gRPC failure becomes NotFound / Unavailable naming the stage."""
        try:
            return await call()  # type: ignore[misc]
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                raise NotFound(exc.details() or f"{stage}: not found") from None
            if exc.code() == grpc.StatusCode.INVALID_ARGUMENT:
                raise InvalidRequest(exc.details() or f"{stage}: invalid argument") from None
            log.warning("backend call failed", stage=stage, error=_status(exc))
            # The backend's own message says what failed (e.g. which session the source did not serve).
            raise Unavailable(f"{stage} failed: {_status(exc)}") from None

    async def _get_universe(self) -> fetcher_pb2.GetUniverseResponse:
        cached = self._universe
        if cached and time.monotonic() - cached[1] < self.settings.gateway_universe_ttl_seconds:
            return cached[0]
        universe = await self._call("universe", lambda: self.fetcher.GetUniverse(
            fetcher_pb2.GetUniverseRequest(), timeout=self.settings.gateway_universe_deadline))
        self._universe = (universe, time.monotonic())  # type: ignore[assignment]
        return universe  # type: ignore[return-value]

    async def _get_snapshot(self, as_of: str, refresh: bool) -> _Snapshot:
        snap = self._snapshot
        if snap is not None and not refresh and (as_of == snap.as_of or (not as_of and self.fresh_as_of())):
            return snap
        if as_of:
            pinned = self._pinned.get(as_of)
            if pinned is not None:
                self._pinned.move_to_end(as_of)
                return pinned
            return await self._fetch_snapshot(as_of)
        # One request for the latest session at a time: concurrent scans wait for the same answer.
        if self._latest_snapshot is None or self._latest_snapshot.done():
            self._latest_snapshot = asyncio.ensure_future(self._fetch_snapshot(""))
        return await asyncio.shield(self._latest_snapshot)

    async def _fetch_snapshot(self, as_of: str) -> _Snapshot:
        response = await self._call("snapshot", lambda: self.fetcher.GetSnapshot(
            fetcher_pb2.GetSnapshotRequest(as_of=as_of, window=self.settings.gateway_snapshot_window),
            timeout=self.settings.gateway_snapshot_deadline))
        raw: bytes = response.block  # type: ignore[attr-defined]
        previous = self._snapshot if not as_of else None
        if previous is not None and previous.as_of == response.as_of and previous.raw == raw:  # type: ignore[attr-defined]
            block = previous.block  # the same answer again (a refresh while nothing changed)
        else:
            try:
                block = decode_block(raw)
            except BlockError as exc:
                raise Unavailable(f"snapshot block is malformed: {exc}") from None
        fresh = _Snapshot(as_of=response.as_of, block=block, fetched=time.monotonic(), raw=raw)  # type: ignore[attr-defined]
        if not as_of:
            self._snapshot = fresh
        elif fresh.as_of == as_of and not response.failed_sessions:  # type: ignore[attr-defined]
            # A completed session asked by its own date: its snapshot never changes. (A date that
            # resolves to an earlier session, e.g. today before the close, may resolve later to itself.)
            self._pinned[as_of] = fresh
            while len(self._pinned) > PINNED_SNAPSHOTS:
                self._pinned.popitem(last=False)
        return fresh

    async def _get_benchmark(self, as_of: str) -> bytes:
        """SPY's bars for the market regime; empty when the market has no such ticker."""
        if as_of in self._benchmark:
            return self._benchmark[as_of]
        try:
            response = await self.fetcher.GetBars(
                fetcher_pb2.GetBarsRequest(symbol=BENCHMARK, days=BENCHMARK_DAYS, as_of=as_of),
                timeout=self.settings.gateway_bars_deadline)
        except grpc.aio.AioRpcError as exc:
            log.warning("benchmark bars unavailable, regime left out", error=_status(exc))
            return b""
        self._benchmark = {as_of: response.block}
        return response.block

    async def _details(self, symbols: np.ndarray) -> fetcher_pb2.GetUniverseResponse:
        if not len(symbols):
            return fetcher_pb2.GetUniverseResponse()
        return await self._call("universe", lambda: self.fetcher.GetUniverse(  # type: ignore[return-value]
            fetcher_pb2.GetUniverseRequest(symbols=symbols.tolist(), with_details=True),
            timeout=self.settings.gateway_universe_deadline))

    @staticmethod
    def _aligned(details: fetcher_pb2.GetUniverseResponse, symbols: np.ndarray) -> ranker_pb2.SymbolInfo:
        """Reference columns of ``symbols`` in their order ("Unknown" / NaN where the fetcher has none)."""
        idx = lookup(details.symbols, symbols)
        found = idx >= 0

        def column(values: Iterable[object], missing: object, dtype: type) -> list:
            arr = np.asarray(list(values), dtype=dtype)
            if not len(arr):
                return [missing] * len(symbols)
            return np.where(found, arr[np.clip(idx, 0, None)], missing).tolist()

        return ranker_pb2.SymbolInfo(
            symbols=symbols.tolist(),
            names=column(details.names, "", object),
            sectors=column(details.sectors, "Unknown", object),
            industries=column(details.industries, "Unknown", object),
            market_caps=column(details.market_caps, float("nan"), np.float64),
        )

    def _top_symbols(self, result: scan_pb2.ScanResult) -> list[str]:
        """The best-ranked rows of the page, the ones that get explanations."""
        return [row.symbol for row in sorted(result.rows, key=lambda r: r.rank)[: self.settings.gateway_explain_top]]

    async def _explain(self, result: scan_pb2.ScanResult, pipeline: _Pipeline,
                       progress: Callable[..., None]) -> None:
        """Attach feature contributions to the best-ranked rows of the page.

        The rows explained while the scan was ranked (the previous top rows of the same request,
        see :meth:`_Pipeline.run`) are used when they are still at the top; only the others are
        explained now.
        """
        top = self._top_symbols(result)
        if not top:
            return
        progress("explain", 0, len(top))
        explained = await pipeline.early_explanations()
        missing = [symbol for symbol in top if symbol not in explained]
        if missing:
            explained.update(await pipeline.explanations_of(missing))
        attached = 0
        wanted = set(top)
        for row in result.rows:
            if row.symbol in wanted and row.symbol in explained:
                row.explanation.append(explained[row.symbol])
                attached += 1
        if attached:
            progress("explain", len(top), len(top))

    # ---- queries -------------------------------------------------------------------------------

    async def get_scan(self, request: scanner_pb2.GetScanRequest) -> scan_pb2.ScanResult:
        """A page of a finished scan, by id or fingerprint."""
        forward = ranker_pb2.GetResultsRequest(offset=request.offset, limit=request.limit,
                                               sort_by=request.sort_by, ascending=request.ascending,
                                               include_issues=request.include_issues)
        if request.WhichOneof("ref") == "scan_id":
            forward.scan_id = request.scan_id
        else:
            forward.fingerprint = request.fingerprint
        result = await self._call("results", lambda: self.ranker.GetResults(
            forward, timeout=self.settings.gateway_results_deadline))
        explained = self._explanations.get(result.fingerprint, {})  # type: ignore[attr-defined]
        for row in result.rows:  # type: ignore[attr-defined]
            if row.symbol in explained and not row.explanation:
                row.explanation.append(explained[row.symbol])
        return result  # type: ignore[return-value]

    async def _latest_row(self, symbol: str) -> scan_pb2.ScanRow | None:
        """The symbol's row in the latest scan (the whole ranking is fetched once per scan)."""
        latest = self._latest
        if latest is None:
            return None
        for row in latest.rows:
            if row.symbol == symbol:
                return row
        if self._latest_rows is None or self._latest_rows[0] != latest.fingerprint:
            try:
                full = await self.ranker.GetResults(
                    ranker_pb2.GetResultsRequest(fingerprint=latest.fingerprint, limit=10_000),
                    timeout=self.settings.gateway_results_deadline)
            except grpc.aio.AioRpcError as exc:
                log.warning("latest ranking unavailable", error=_status(exc))
                return None
            self._latest_rows = (latest.fingerprint, {row.symbol: row for row in full.rows})
        return self._latest_rows[1].get(symbol)

    async def symbol(self, symbol: str, days: int = 90) -> scanner_pb2.SymbolDetail:
        """History, reference data and the latest ranking row of one symbol; NotFound when unknown."""
        ticker = symbol.strip().upper()
        bars_call = self._call("bars", lambda: self.fetcher.GetBars(
            fetcher_pb2.GetBarsRequest(symbol=ticker, days=days or 90),
            timeout=self.settings.gateway_bars_deadline))
        info_call = self._call("universe", lambda: self.fetcher.GetUniverse(
            fetcher_pb2.GetUniverseRequest(symbols=[ticker], with_details=True),
            timeout=self.settings.gateway_universe_deadline))
        bars, info = await asyncio.gather(bars_call, info_call)
        known = ticker in info.symbols  # type: ignore[attr-defined]
        history: list[scanner_pb2.Bar] = []
        if bars.block:  # type: ignore[attr-defined]
            block = decode_block(bars.block)  # type: ignore[attr-defined]
            values = {name: block.column(name).astype(np.float64) for name in
                      ("open", "high", "low", "close", "volume")}
            ok = np.isfinite(values["close"])
            dates = np.asarray(block.rows, dtype=object)[ok].tolist()
            cols = {name: col[ok].tolist() for name, col in values.items()}
            history = [scanner_pb2.Bar(date=d, open=o, high=h, low=lo, close=c, volume=v) for d, o, h, lo, c, v in
                       zip(dates, cols["open"], cols["high"], cols["low"], cols["close"], cols["volume"],
                           strict=True)]
        if not known and not history:
            raise NotFound(f"unknown symbol {ticker}")
        detail = scanner_pb2.SymbolDetail(symbol=ticker, history=history)
        if known:
            i = list(info.symbols).index(ticker)  # type: ignore[attr-defined]
            detail.name, detail.sector = info.names[i], info.sectors[i]  # type: ignore[attr-defined]
            detail.industry, detail.market_cap = info.industries[i], info.market_caps[i]  # type: ignore[attr-defined]
        if history:
            detail.last_price = history[-1].close
            if len(history) > 1 and history[-2].close:
                detail.change_pct = (history[-1].close / history[-2].close - 1) * 100
        row = await self._latest_row(ticker)
        if row is not None:
            detail.latest.CopyFrom(row)
            detail.in_latest_scan = True
        return detail

    async def universe_stats(self) -> scanner_pb2.UniverseStats:
        """Sectors and industries of the universe with their counts."""
        universe = await self._get_universe()
        stats = scanner_pb2.UniverseStats(total=len(universe.symbols),
                                          as_of=self._snapshot.as_of if self._snapshot else "")
        for target, values in ((stats.sectors, universe.sectors), (stats.industries, universe.industries)):
            names, counts = np.unique(np.asarray(list(values), dtype=str), return_counts=True)
            order = np.lexsort((names, -counts))
            target.extend(scanner_pb2.SectorCount(name=str(names[i]), count=int(counts[i])) for i in order)
        if self._latest is not None:
            stats.last_scan.CopyFrom(self._latest.accounting)
        return stats

    async def health(self) -> dict[str, dict[str, str]]:
        """Health of each backend process and of its Redis dependency, by name."""
        targets = {"fetcher": self.settings.fetcher_target, "ranker": self.settings.ranker_target}
        for address in compute_addresses(self.settings.compute_target):
            targets[f"compute {address}"] = address
        names = list(targets)
        checks = await asyncio.gather(*(self._check(targets[name]) for name in names))
        return dict(zip(names, checks, strict=True))

    async def _check(self, target: str) -> dict[str, str]:
        channel = self._health_channels.get(target)
        if channel is None:
            channel = self._health_channels[target] = make_channel(target, self.settings)
        stub = health_pb2_grpc.HealthStub(channel)
        answer = {"target": target}
        for key, service in (("status", ""), ("redis", DEPENDENCY_PREFIX + "redis")):
            try:
                reply = await stub.Check(health_pb2.HealthCheckRequest(service=service),
                                         timeout=self.settings.gateway_health_deadline)
                answer[key] = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
            except grpc.aio.AioRpcError as exc:
                answer[key] = "UNKNOWN" if exc.code() == grpc.StatusCode.NOT_FOUND else "UNREACHABLE"
        return answer


class _Pipeline:
    """The overlapping fetch -> score -> rank stages of one scan."""

    def __init__(self, owner: Orchestrator, opts: scan_pb2.ScanOptions, scan_id: str, as_of: str,
                 prefiltered: _Prefilter, header: ranker_pb2.RankHeader, benchmark: asyncio.Task[bytes],
                 progress: Callable[..., None], seconds: dict[str, float], refresh: bool,
                 details: asyncio.Task[fetcher_pb2.GetUniverseResponse], likely_top: list[str]) -> None:
        self.owner, self.settings = owner, owner.settings
        self.likely_top = likely_top
        self.early: asyncio.Task[dict[str, compute_pb2.SymbolExplanation]] | None = None
        self.refresh = refresh
        self.opts, self.scan_id, self.as_of = opts, scan_id, as_of
        self.prefiltered = prefiltered
        self.survivors, self.header, self.benchmark = prefiltered.kept.survivors, header, benchmark
        self.details = details
        self.progress, self.seconds = progress, seconds
        self.total = len(self.survivors)
        self.queue: asyncio.Queue[compute_pb2.ScoreResponse | None] = asyncio.Queue()
        self.fetched = 0
        self.scored = 0
        self.features: list[tuple[tuple[str, ...], bytes]] = []
        self.fingerprint = ""
        self.canonical = ""
        self.retries = 0
        # Seconds the replicas report per phase (read, features, predict, ...), summed over chunks.
        self.replica_seconds: dict[str, float] = {}
        # Chunks that could not be fetched or scored: sent last, once this scan's versions are known.
        self.failed: list[tuple[list[str], int]] = []

    async def run(self) -> scan_pb2.ScanResult:
        started = time.perf_counter()
        rank_call = self.owner.ranker.Rank(self._rank_requests(), timeout=self.settings.gateway_rank_deadline)
        feed = asyncio.create_task(self._feed())
        try:
            await feed
            # A failed details call fails the scan as itself, not as the rank call it interrupted.
            await self.details
            if self.likely_top:
                # Every row is scored: explain the last scan's top rows while this one is ranked
                # (the replicas are idle now). Usually they are the top again; see Orchestrator._explain.
                self.early = asyncio.create_task(self.explanations_of(self.likely_top))
            self.progress("rank", 0, 1)
            t = time.perf_counter()
            try:
                result: scan_pb2.ScanResult = await rank_call
            except grpc.aio.AioRpcError as exc:
                log.warning("rank failed", scan_id=self.scan_id, error=_status(exc))
                raise Unavailable(f"rank failed: {exc.code().name}") from None
            self.seconds["rank"] = time.perf_counter() - t
            self.progress("rank", 1, 1)
        except BaseException:
            if self.early is not None:
                self.early.cancel()
            raise
        finally:
            feed.cancel()
            rank_call.cancel()
        self.seconds.setdefault("compute", time.perf_counter() - started)
        if self.retries:
            log.info("chunks retried", scan_id=self.scan_id, retries=self.retries)
        return result

    async def _rank_requests(self) -> AsyncIterator[ranker_pb2.RankRequest]:
        """The header (once the versions are known from the first scored chunk), then each chunk."""
        item = await self.queue.get()
        versions = self.owner._versions
        self.canonical = fingerprint(self.opts, self.as_of, versions.feature_version, versions.model_versions)
        # A refresh must rank again: the ranker keys its cache by fingerprint, so this scan gets its own.
        self.fingerprint = (hashlib.sha256(f"{self.canonical}:{self.scan_id}".encode()).hexdigest()[:32]
                            if self.refresh else self.canonical)
        self.header.fingerprint = self.fingerprint
        self.header.MergeFromString(self.prefiltered.issues_header())
        self.header.benchmark = await self.benchmark
        self.header.MergeFromString(self.prefiltered.info_header(await self.details))
        self.header.stage_seconds.update(self.seconds)
        yield ranker_pb2.RankRequest(header=self.header)
        while item is not None:
            yield ranker_pb2.RankRequest(chunk=item)
            item = await self.queue.get()

    async def _feed(self) -> None:
        """Fetch chunks and score each as it arrives; puts None on the queue when all are in."""
        slots = asyncio.Semaphore(self.settings.gateway_inflight_chunks)
        tasks: set[asyncio.Task[None]] = set()
        covered: list[str] = []
        next_index = 0
        started = time.perf_counter()
        self.progress("fetch", 0, self.total)
        self.progress("compute", 0, self.total)
        try:
            pending = self.survivors
            give_up = time.monotonic() + self.settings.gateway_fetch_retry_seconds
            while len(pending):
                base = next_index  # chunk indexes stay unique when the rest is fetched again
                try:
                    async for response in self.owner.fetcher.Prefetch(
                            self._prefetch_requests(pending), timeout=self.settings.gateway_prefetch_deadline):
                        if response.done:
                            self._report_unfetched(list(response.failed_sessions))
                        if response.done or not response.HasField("chunk"):
                            continue
                        chunk = response.chunk
                        chunk.chunk_index += base
                        covered.extend(chunk.symbols)
                        next_index = max(next_index, chunk.chunk_index + 1)
                        self.fetched += len(chunk.symbols)
                        self.progress("fetch", self.fetched, self.total)
                        await slots.acquire()
                        tasks.add(asyncio.create_task(self._score(chunk, slots)))
                    break
                except grpc.aio.AioRpcError as exc:
                    # The fetcher went away (restarted): ask again for what it had not sent, for a while.
                    pending = self.survivors[lookup(covered, self.survivors) < 0]
                    if exc.code() in RETRYABLE and time.monotonic() < give_up:
                        log.warning("prefetch stream broke, fetching the rest again", scan_id=self.scan_id,
                                    error=_status(exc), remaining=len(pending))
                        await asyncio.sleep(FETCH_RETRY_PAUSE)
                        continue
                    if not covered:
                        raise Unavailable(f"fetch failed: {exc.code().name}") from None
                    log.warning("prefetch stream broke, the rest is accounted as errored",
                                scan_id=self.scan_id, error=_status(exc))
                    break
            self.seconds["fetch"] = time.perf_counter() - started
            # A hashed lookup: np.isin on object arrays compares every pair (seconds for 6,000 names).
            missing = self.survivors[lookup(covered, self.survivors) < 0]
            if len(missing):
                log.warning("symbols never fetched", scan_id=self.scan_id, count=len(missing))
                for start in range(0, len(missing), self.settings.gateway_chunk_size):
                    self.failed.append((missing[start:start + self.settings.gateway_chunk_size].tolist(), next_index))
                    next_index += 1
            if tasks:
                await asyncio.gather(*tasks)
            for symbols, index in self.failed:
                self.queue.put_nowait(errored_response(symbols, index, self.owner._versions))
            self.seconds["compute"] = time.perf_counter() - started
            self.queue.put_nowait(None)
        finally:
            for task in tasks:
                task.cancel()

    def _report_unfetched(self, sessions: list[str]) -> None:
        """Name the sessions the fetcher could not get (their bars are missing from every panel)."""
        if sessions:
            log.warning("sessions not fetched", scan_id=self.scan_id, sessions=sessions)
            self.progress("fetch", self.fetched, self.total, "sessions not fetched: " + ", ".join(sessions))

    async def _prefetch_requests(self, symbols: np.ndarray) -> AsyncIterator[fetcher_pb2.PrefetchRequest]:
        size = self.settings.gateway_chunk_size
        yield fetcher_pb2.PrefetchRequest(header=fetcher_pb2.PrefetchHeader(
            scan_id=self.scan_id, as_of=self.as_of, lookback=self.opts.lookback_days, chunk_size=size))
        for start in range(0, len(symbols), size):
            batch = fetcher_pb2.SymbolBatch(symbols=symbols[start:start + size].tolist())
            yield fetcher_pb2.PrefetchRequest(batch=batch)

    async def _score(self, chunk: common_pb2.ChunkRef, slots: asyncio.Semaphore) -> None:
        """Score one chunk, retrying on another replica; a chunk that keeps failing becomes ERROR rows."""
        request = compute_pb2.ScoreRequest(scan_id=self.scan_id, chunk=chunk)
        attempts = max(1, self.settings.gateway_score_attempts)
        response: compute_pb2.ScoreResponse | None = None
        try:
            for attempt in range(attempts):
                try:
                    response = await self.owner.compute.Score(request, timeout=self.settings.gateway_score_deadline)
                    break
                except grpc.aio.AioRpcError as exc:
                    if exc.code() not in RETRYABLE or attempt == attempts - 1:
                        log.warning("chunk not scored", scan_id=self.scan_id, chunk=chunk.chunk_index,
                                    error=_status(exc), attempts=attempt + 1)
                        break
                    self.retries += 1
                    await asyncio.sleep(0.05 * 2 ** attempt)
            if response is None:
                self.failed.append((list(chunk.symbols), chunk.chunk_index))
            else:
                self.owner._learn(response)
                self.features.append((tuple(response.symbols), response.features))
                for phase, value in response.stats.seconds.items():
                    self.replica_seconds[phase] = self.replica_seconds.get(phase, 0.0) + value
                self.queue.put_nowait(response)
            self.scored += len(chunk.symbols)
            self.progress("compute", self.scored, self.total)
        finally:
            slots.release()

    async def early_explanations(self) -> dict[str, compute_pb2.SymbolExplanation]:
        """The explanations started while the scan was ranked, by symbol (empty when none were)."""
        return dict(await self.early) if self.early is not None else {}

    async def explanations_of(self, symbols: list[str]) -> dict[str, compute_pb2.SymbolExplanation]:
        """Feature contributions of ``symbols`` (those scored in this scan) by symbol; empty on failure."""
        features = self.features_of(symbols)
        if features is None:
            return {}
        request = compute_pb2.ExplainRequest(scan_id=self.scan_id, features=features,
                                             top_k=self.settings.gateway_explain_top_k)
        try:
            response = await self.owner.compute.Explain(request, timeout=self.settings.gateway_explain_deadline)
        except grpc.aio.AioRpcError as exc:
            log.warning("explain failed, rows left without contributions", scan_id=self.scan_id,
                        error=_status(exc))
            return {}
        return {e.symbol: e for e in response.symbols}

    def features_of(self, symbols: list[str]) -> bytes | None:
        """A features block of ``symbols`` (rows in that order), from the chunks scored in this scan."""
        blocks = [(rows, decode_block(data)) for rows, data in self.features if data]
        if not blocks:
            return None
        fields = blocks[0][1].fields
        labels = np.concatenate([np.asarray(rows, dtype=object) for rows, _ in blocks])
        matrix = np.concatenate([b.array.reshape(len(rows), -1) for rows, b in blocks])
        idx = lookup(labels, symbols)
        found = idx >= 0
        if not found.any():
            return None
        return encode_block(np.ascontiguousarray(matrix[idx[found]], dtype=np.float32),
                            rows=np.asarray(symbols, dtype=object)[found].tolist(), fields=fields)
