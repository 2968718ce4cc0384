"""One scan as a short list of named steps, and the streaming stage at its heart.

``ScanPipeline.run``: read the market (universe and the session's snapshot) -> answer from a cache
when the same scan is ranked already -> prefilter -> ask for the survivors' details beside the bars
-> fetch, score and rank, overlapped -> explain the top rows -> keep the result.

The fetch -> score -> rank stage streams: the fetcher's ``Prefetch`` answers chunk references while
symbols stream in, each chunk is scored as it arrives (a bounded number in flight, over the compute
replicas' round_robin channel), and scored chunks stream into ``Ranker.Rank``. Nothing is lost: a
chunk that cannot be scored, and symbols the fetcher never sent, reach the ranker as rows in state
ERROR, so the accounting covers them. A fetcher that goes away mid-scan is asked again for the
symbols it had not sent (for ``gateway_fetch_retry_seconds``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import structlog

from gateway.backends import Backends, StreamBroken
from gateway.caches import ResultStore, fingerprint
from gateway.catalog import ModelCatalog
from gateway.errors import Unavailable
from gateway.explain import Explainer
from gateway.market import MarketView, PrefilterResult, Snapshot
from gateway.prefilter import lookup
from gateway.settings import GatewaySettings
from technic.v1 import common_pb2, compute_pb2, fetcher_pb2, ranker_pb2, scan_pb2

log = structlog.get_logger(__name__)
T = TypeVar("T")
STAGES = ("universe", "snapshot", "prefilter", "fetch", "compute", "rank", "explain")
# Pause between attempts to fetch the rest of a scan after the fetcher went away.
FETCH_RETRY_PAUSE = 0.5


@dataclass(frozen=True)
class Progress:
    """One stage's progress: ``done`` of ``total`` units (symbols, or 1 for one-step stages)."""

    stage: str
    done: int
    total: int
    elapsed: float
    message: str = ""


@dataclass(frozen=True)
class ScanDeps:
    """What every scan uses: the backends and the gateway's views and caches of their answers."""

    settings: GatewaySettings
    backends: Backends
    market: MarketView
    catalog: ModelCatalog
    results: ResultStore
    # The finished result of these options and session from a cache, or None.
    cached: Callable[[scan_pb2.ScanOptions, str], Awaitable[scan_pb2.ScanResult | None]]


def ranking_options(options: scan_pb2.ScanOptions) -> scan_pb2.ScanOptions:
    """The options the ranker applies: the prefilter's rules (sectors, floors) are already applied."""
    ranking = scan_pb2.ScanOptions()
    ranking.CopyFrom(options)
    for name in ("sectors", "min_price", "min_dollar_volume"):
        ranking.ClearField(name)
    return ranking


@dataclass
class ScanPipeline:
    """The steps of one scan; ``emit`` receives its progress events."""

    deps: ScanDeps
    opts: scan_pb2.ScanOptions
    scan_id: str
    refresh: bool
    emit: Callable[[Progress], None]
    seconds: dict[str, float] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)

    def progress(self, stage: str, done: int, total: int, message: str = "") -> None:
        self.emit(Progress(stage, done, total, time.perf_counter() - self.started, message))

    async def timed(self, name: str, work: Awaitable[T]) -> T:
        t0 = time.perf_counter()
        value = await work
        self.seconds[name] = time.perf_counter() - t0
        return value

    async def run(self) -> scan_pb2.ScanResult:
        universe, snapshot = await self.read_market()
        if not self.refresh:
            cached = await self.deps.cached(self.opts, snapshot.as_of)
            if cached is not None:
                return cached
        benchmark = asyncio.create_task(self.deps.market.benchmark(snapshot.as_of))
        entry = await self.prefilter(universe, snapshot)
        details = asyncio.create_task(self.timed("details", self.deps.market.survivor_details(entry)))
        explainer = Explainer(self.deps.backends, self.scan_id, self.deps.settings.gateway_explain_top_k)
        try:
            stage = ChunkStage(self, snapshot.as_of, entry, details, benchmark, explainer)
            result = await stage.run()
        finally:
            for task in (details, benchmark):
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        await self.explain(result, explainer)
        self.finish(result, stage)
        return result

    async def read_market(self) -> tuple[fetcher_pb2.GetUniverseResponse, Snapshot]:
        """The universe (reference data on its own TTL) and the as-of session's snapshot."""
        self.progress("universe", 0, 1)
        self.progress("snapshot", 0, 1)
        market = self.deps.market
        universe, snapshot = await asyncio.gather(
            self.timed("universe", market.universe()),
            self.timed("snapshot", market.snapshot(self.opts.as_of, self.refresh)),
        )
        self.progress("universe", 1, 1, f"{len(universe.symbols)} tickers")
        self.progress("snapshot", 1, 1, f"{len(snapshot.block.rows)} tickers traded on {snapshot.as_of}")
        return universe, snapshot

    async def prefilter(self, universe: fetcher_pb2.GetUniverseResponse, snapshot: Snapshot) -> PrefilterResult:
        """Price, dollar volume, type, exchange, sector and the symbol cap, from the snapshot alone."""
        t = time.perf_counter()
        self.progress("prefilter", 0, len(self.opts.universe) or len(universe.symbols))
        entry = await self.deps.market.prefilter(self.opts, universe, snapshot)
        kept = entry.kept
        self.seconds["prefilter"] = time.perf_counter() - t
        self.progress(
            "prefilter",
            len(kept.survivors),
            kept.requested,
            f"{len(kept.survivors)} of {kept.requested} symbols pass the prefilter",
        )
        log.info("prefiltered", scan_id=self.scan_id, requested=kept.requested, survivors=len(kept.survivors))
        return entry

    async def explain(self, result: scan_pb2.ScanResult, explainer: Explainer) -> None:
        """Contributions for the top rows, stored with the ranked scan in the ranker."""
        t = time.perf_counter()
        top = self.deps.results.top_symbols(result)
        attached = await explainer.attach(result, top, self.progress)
        if attached:
            await self.deps.backends.attach_explanations(result.fingerprint, attached)
        self.seconds["explain"] = time.perf_counter() - t

    def finish(self, result: scan_pb2.ScanResult, stage: ChunkStage) -> None:
        self.seconds.update({f"compute_{k}": v for k, v in stage.replica_seconds.items()})
        self.seconds["total"] = time.perf_counter() - self.started
        result.stage_seconds.update(self.seconds)
        self.deps.results.remember(result, self.opts, stage.canonical)
        log.info(
            "scan finished",
            scan_id=self.scan_id,
            seconds=round(self.seconds["total"], 3),
            ranked=result.accounting.ranked,
            requested=result.accounting.requested,
        )


class ChunkStage:
    """The overlapping fetch -> score -> rank stages of one scan."""

    def __init__(
        self,
        scan: ScanPipeline,
        as_of: str,
        entry: PrefilterResult,
        details: asyncio.Task[fetcher_pb2.GetUniverseResponse],
        benchmark: asyncio.Task[bytes],
        explainer: Explainer,
    ) -> None:
        self.scan, self.deps, self.settings = scan, scan.deps, scan.deps.settings
        self.as_of, self.entry, self.details, self.benchmark = as_of, entry, details, benchmark
        self.explainer = explainer
        self.survivors = entry.kept.survivors
        self.total = len(self.survivors)
        self.queue: asyncio.Queue[compute_pb2.ScoreResponse | None] = asyncio.Queue()
        self.fetched = 0
        self.scored = 0
        # Chunks a replica scored: none of them, while there were symbols to score, fails the scan.
        self.scored_chunks = 0
        self.retries = 0
        self.canonical = ""
        # Seconds the replicas report per phase (read, features, predict, ...), summed over chunks.
        self.replica_seconds: dict[str, float] = {}
        # Chunks that could not be fetched or scored: sent last as ERROR rows.
        self.failed: list[tuple[list[str], int]] = []

    async def run(self) -> scan_pb2.ScanResult:
        scan = self.scan
        started = time.perf_counter()
        description = await self.deps.catalog.describe()
        self.canonical = fingerprint(
            scan.opts, self.as_of, description.feature_version, dict(description.model_versions)
        )
        rank = asyncio.create_task(self.deps.backends.rank(self._rank_requests(description)))
        feed = asyncio.create_task(self._feed())
        try:
            await feed
            # A failed details call fails the scan as itself, not as the rank call it interrupted.
            await self.details
            # Every row is scored: explain the last scan's top rows while this one is ranked.
            self.explainer.start_early(self.deps.results.top_rows(scan.opts.SerializeToString(deterministic=True)))
            scan.progress("rank", 0, 1)
            t = time.perf_counter()
            result = await rank
            scan.seconds["rank"] = time.perf_counter() - t
            scan.progress("rank", 1, 1)
        except BaseException:
            self.explainer.cancel()
            raise
        finally:
            feed.cancel()
            rank.cancel()
        scan.seconds.setdefault("compute", time.perf_counter() - started)
        if self.retries:
            log.info("chunks retried", scan_id=scan.scan_id, retries=self.retries)
        return result

    async def _rank_requests(self, description: compute_pb2.DescribeResponse) -> AsyncIterator[ranker_pb2.RankRequest]:
        """The header (issues, reference data, benchmark, calibration), each scored chunk, then the end."""
        scan = self.scan
        kept = self.entry.kept
        # A refresh must rank again: the ranker keys its cache by fingerprint, so this scan gets its own.
        fp = (
            hashlib.sha256(f"{self.canonical}:{scan.scan_id}".encode()).hexdigest()[:32]
            if scan.refresh
            else self.canonical
        )
        header = ranker_pb2.RankHeader(
            scan_id=scan.scan_id,
            fingerprint=fp,
            options=ranking_options(scan.opts),
            as_of=self.as_of,
            requested=kept.requested,
            win_prob=description.win_prob,
        )
        header.MergeFromString(self.entry.issues_header())
        header.benchmark = await self.benchmark
        header.MergeFromString(self.entry.info_header(await self.details))
        header.stage_seconds.update(scan.seconds)
        yield ranker_pb2.RankRequest(header=header)
        item = await self.queue.get()
        while item is not None:
            yield ranker_pb2.RankRequest(chunk=item)
            item = await self.queue.get()
        # Only this says the scan is whole: a stream cut off by a failed or cancelled scan is not ranked.
        yield ranker_pb2.RankRequest(end=ranker_pb2.RankEnd())

    async def _feed(self) -> None:
        """Fetch chunks and score each as it arrives; puts None on the queue when all are in."""
        scan = self.scan
        slots = asyncio.Semaphore(self.settings.gateway_inflight_chunks)
        tasks: set[asyncio.Task[None]] = set()
        covered: list[str] = []
        next_index = 0
        started = time.perf_counter()
        scan.progress("fetch", 0, self.total)
        scan.progress("compute", 0, self.total)
        try:
            pending = self.survivors
            give_up = time.monotonic() + self.settings.gateway_fetch_retry_seconds
            while len(pending):
                base = next_index  # chunk indexes stay unique when the rest is fetched again
                try:
                    async for response in self.deps.backends.prefetch(self._prefetch_requests(pending)):
                        if response.done:
                            self._report_unfetched(list(response.failed_sessions))
                        if response.done or not response.HasField("chunk"):
                            continue
                        chunk = response.chunk
                        chunk.chunk_index += base
                        covered.extend(chunk.symbols)
                        next_index = max(next_index, chunk.chunk_index + 1)
                        self.fetched += len(chunk.symbols)
                        scan.progress("fetch", self.fetched, self.total)
                        await slots.acquire()
                        tasks.add(asyncio.create_task(self._score(chunk, slots)))
                    break
                except StreamBroken as exc:
                    # The fetcher went away (restarted): ask again for what it had not sent, for a while.
                    pending = self.survivors[lookup(covered, self.survivors) < 0]
                    if exc.retryable and time.monotonic() < give_up:
                        log.warning(
                            "prefetch stream broke, fetching the rest again",
                            scan_id=scan.scan_id,
                            error=str(exc),
                            remaining=len(pending),
                        )
                        await asyncio.sleep(FETCH_RETRY_PAUSE)
                        continue
                    if not covered:
                        raise Unavailable(f"fetch failed: {str(exc).split(':', 1)[0]}") from None
                    log.warning(
                        "prefetch stream broke, the rest is accounted as errored", scan_id=scan.scan_id, error=str(exc)
                    )
                    break
            scan.seconds["fetch"] = time.perf_counter() - started
            # A hashed lookup: np.isin on object arrays compares every pair (seconds for 6,000 names).
            missing = self.survivors[lookup(covered, self.survivors) < 0]
            if len(missing):
                log.warning("symbols never fetched", scan_id=scan.scan_id, count=len(missing))
                size = self.settings.gateway_chunk_size
                for start in range(0, len(missing), size):
                    self.failed.append((missing[start : start + size].tolist(), next_index))
                    next_index += 1
            if tasks:
                await asyncio.gather(*tasks)
            if self.total and not self.scored_chunks:
                # Every replica is down: a ranking of nothing but errors would be cached as today's scan.
                raise Unavailable(f"compute failed: no replica scored any of the {len(self.failed)} chunks")
            for symbols, index in self.failed:
                self.queue.put_nowait(self.deps.catalog.errored_response(symbols, index))
            scan.seconds["compute"] = time.perf_counter() - started
            self.queue.put_nowait(None)
        finally:
            for task in tasks:
                task.cancel()

    def _report_unfetched(self, sessions: list[str]) -> None:
        """Name the sessions the fetcher could not get (their bars are missing from every panel)."""
        if sessions:
            log.warning("sessions not fetched", scan_id=self.scan.scan_id, sessions=sessions)
            self.scan.progress("fetch", self.fetched, self.total, "sessions not fetched: " + ", ".join(sessions))

    async def _prefetch_requests(self, symbols: object) -> AsyncIterator[fetcher_pb2.PrefetchRequest]:
        size = self.settings.gateway_chunk_size
        yield fetcher_pb2.PrefetchRequest(
            header=fetcher_pb2.PrefetchHeader(
                scan_id=self.scan.scan_id, as_of=self.as_of, lookback=self.scan.opts.lookback_days, chunk_size=size
            )
        )
        for start in range(0, len(symbols), size):  # type: ignore[arg-type]
            batch = fetcher_pb2.SymbolBatch(symbols=symbols[start : start + size].tolist())  # type: ignore[index]
            yield fetcher_pb2.PrefetchRequest(batch=batch)

    async def _score(self, chunk: common_pb2.ChunkRef, slots: asyncio.Semaphore) -> None:
        """Score one chunk (retried on another replica); a chunk that keeps failing becomes ERROR rows."""
        try:
            request = compute_pb2.ScoreRequest(scan_id=self.scan.scan_id, chunk=chunk)
            response = await self.deps.backends.score(request, self._count_retry)
            if response is None:
                self.failed.append((list(chunk.symbols), chunk.chunk_index))
            else:
                self.deps.catalog.check(response)
                self.scored_chunks += 1
                self.explainer.add_chunk(response)
                for phase, value in response.stats.seconds.items():
                    self.replica_seconds[phase] = self.replica_seconds.get(phase, 0.0) + value
                self.queue.put_nowait(response)
            self.scored += len(chunk.symbols)
            self.scan.progress("compute", self.scored, self.total)
        finally:
            slots.release()

    def _count_retry(self) -> None:
        self.retries += 1
