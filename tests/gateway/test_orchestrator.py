"""The orchestrator against in-process gRPC doubles of the fetcher, two compute replicas and the ranker.

Checks what only the orchestrator decides: the pipeline order, retries on another replica, failed
chunks accounted as ERROR rows, the header it sends the ranker, the fingerprint cache, cancellation.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import numpy as np
import pytest

from gateway.orchestrator import NotFound, Orchestrator, Progress, Unavailable
from gateway.settings import GatewaySettings
from gateway.validation import FEATURE_NAMES, normalize_options
from services.common.codec import decode_block, encode_block
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

SYMBOLS = ["AAA", "BBB", "CCC", "DDD", "BAD", "PEN", "ETFX"]
TYPES = ["CS", "CS", "CS", "CS", "CS", "CS", "ETF"]
CLOSE = [50.0, 40.0, 30.0, 20.0, 10.0, 1.0, 60.0]
DOLLAR_VOLUME = [9e8, 8e8, 7e8, 6e8, 5e8, 4e8, 3e8]
SNAPSHOT_FIELDS = (
    "open",
    "high",
    "low",
    "close",
    "volume",
    "avg_volume",
    "avg_dollar_volume",
    "sessions",
    "change_pct",
)


class Fetcher(fetcher_pb2_grpc.FetcherServicer):
    """The latest session is 2026-11-13 (a Friday); 2026-11-11's window lacks a session."""

    def __init__(self) -> None:
        self.snapshot_requests: list[str] = []
        self.details_requests: list[list[str]] = []
        self.bars_requests: list[tuple[str, int, str]] = []
        self.close = list(CLOSE)
        self.latest = "2026-11-13"

    async def GetUniverse(self, request, context):
        if request.with_details:
            self.details_requests.append(list(request.symbols))
        wanted = list(request.symbols) or SYMBOLS
        idx = [SYMBOLS.index(s) for s in wanted if s in SYMBOLS]
        return fetcher_pb2.GetUniverseResponse(
            symbols=[SYMBOLS[i] for i in idx],
            names=[f"{SYMBOLS[i]} Inc" for i in idx],
            types=[TYPES[i] for i in idx],
            exchanges=["XNAS"] * len(idx),
            sic_codes=[7372] * len(idx),
            sectors=["Energy" if SYMBOLS[i] == "AAA" else "Information Technology" for i in idx],
            industries=["Software"] * len(idx),
            market_caps=[1e9] * len(idx),
        )

    async def GetSnapshot(self, request, context):
        self.snapshot_requests.append(request.as_of)
        array = np.zeros((len(SYMBOLS), len(SNAPSHOT_FIELDS)), dtype=np.float32)
        array[:, 3], array[:, 6] = self.close, DOLLAR_VOLUME
        as_of = request.as_of if request.as_of and request.as_of <= self.latest else self.latest
        return fetcher_pb2.GetSnapshotResponse(
            block=encode_block(array, rows=SYMBOLS, fields=SNAPSHOT_FIELDS),
            as_of=as_of,
            failed_sessions=["2026-11-10"] if as_of == "2026-11-11" else [],
        )

    async def Prefetch(self, request_iterator, context):
        header, symbols = None, []
        async for message in request_iterator:
            if message.HasField("header"):
                header = message.header
            else:
                symbols.extend(message.batch.symbols)
        assert header is not None
        for index, start in enumerate(range(0, len(symbols), header.chunk_size)):
            part = symbols[start : start + header.chunk_size]
            yield fetcher_pb2.PrefetchResponse(
                chunk=common_pb2.ChunkRef(
                    key=f"technic:test:{index}", chunk_index=index, symbols=part, as_of="2026-11-13"
                )
            )
        yield fetcher_pb2.PrefetchResponse(done=True)

    async def GetBars(self, request, context):
        """Two sessions ending at the as-of asked for; no benchmark (SPY) in this market."""
        if request.symbol not in SYMBOLS:
            await context.abort(grpc.StatusCode.NOT_FOUND, "no benchmark in this market")
        self.bars_requests.append((request.symbol, request.days, request.as_of))
        bars = np.array([[9.0, 11.0, 8.0, 10.0, 1e6], [10.0, 12.0, 9.0, 11.0, 2e6]], dtype=np.float32)
        rows = ["2026-11-12", request.as_of or self.latest]
        return fetcher_pb2.GetBarsResponse(
            symbol=request.symbol,
            block=encode_block(bars, rows=rows, fields=("open", "high", "low", "close", "volume")),
            as_of=rows[-1],
        )


class Compute(compute_pb2_grpc.ComputeServicer):
    """A replica; ``broken`` answers UNAVAILABLE to everything, chunks holding BAD always fail."""

    def __init__(self, broken: bool, delay: float = 0.0) -> None:
        self.broken, self.delay = broken, delay
        self.calls = 0
        self.cancelled = 0
        self.explained: list[list[str]] = []  # the symbols of each Explain request
        self.on_explain: asyncio.Event | None = None

    async def Score(self, request, context):
        self.calls += 1
        try:
            await asyncio.sleep(self.delay)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        if self.broken or "BAD" in request.chunk.symbols:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "replica down")
        n = len(request.chunk.symbols)
        rows = list(request.chunk.symbols)
        return compute_pb2.ScoreResponse(
            chunk_index=request.chunk.chunk_index,
            symbols=rows,
            states=[common_pb2.SYMBOL_STATE_OK] * n,
            features=encode_block(np.ones((n, len(FEATURE_NAMES)), np.float32), rows=rows, fields=FEATURE_NAMES),
            scores=encode_block(np.zeros((n, 2), np.float32), rows=rows, fields=("alpha_5d", "alpha_10d")),
            levels=encode_block(np.ones((n, 1), np.float32), rows=rows, fields=("close",)),
            sparklines=encode_block(np.ones((n, 3), np.float32), rows=rows),
            feature_version="f1",
            model_versions={"alpha_5d": "m1", "alpha_10d": "m1"},
        )

    async def Describe(self, request, context):
        if self.broken:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "replica down")
        return compute_pb2.DescribeResponse(
            feature_version="f1",
            model_versions={"alpha_5d": "m1", "alpha_10d": "m1"},
            feature_fields=FEATURE_NAMES,
            score_fields=("alpha_5d", "alpha_10d"),
            level_fields=("close",),
            sparkline_length=3,
            win_prob=compute_pb2.WinProbCalibration(
                model="alpha_10d", version="m1", edges=[-1.0, 0.0, 1.0], p_up=[0.4, 0.6]
            ),
        )

    async def Explain(self, request, context):
        block = decode_block(request.features)
        self.explained.append(list(block.rows))
        if self.on_explain is not None:
            self.on_explain.set()
        return compute_pb2.ExplainResponse(
            symbols=[
                compute_pb2.SymbolExplanation(symbol=s, models=[compute_pb2.ModelExplanation(model="alpha_10d")])
                for s in block.rows
            ]
        )


class Ranker(ranker_pb2_grpc.RankerServicer):
    """Records the header and chunks; ranks OK rows by symbol of a whole stream; keeps results by fingerprint."""

    def __init__(self) -> None:
        self.headers: list[ranker_pb2.RankHeader] = []
        self.chunks: list[compute_pb2.ScoreResponse] = []
        self.stored: dict[str, scan_pb2.ScanResult] = {}
        self.hold: asyncio.Event | None = None  # when set, Rank answers only once the event is
        self.cut_off = 0  # streams that stopped before their end

    async def Rank(self, request_iterator, context):
        header, scanned, ended = None, [], False
        async for message in request_iterator:
            if message.HasField("header"):
                header = message.header
                self.headers.append(header)
            elif message.HasField("end"):
                ended = True
            else:
                scanned.append(message.chunk)
                self.chunks.append(message.chunk)
        if not ended:  # as the ranker: a stream cut off by the client is not ranked
            self.cut_off += 1
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the Rank stream stopped before its RankEnd")
        if self.hold is not None:
            await asyncio.wait_for(self.hold.wait(), 10)
        if header is None:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "no header")
        ok = sorted(
            s for c in scanned for s, st in zip(c.symbols, c.states, strict=True) if st == common_pb2.SYMBOL_STATE_OK
        )
        errored = sum(1 for c in scanned for st in c.states if st == common_pb2.SYMBOL_STATE_ERROR)
        filtered: dict[str, int] = {}
        skipped: dict[str, int] = {}
        for issue in header.issues:
            target = filtered if issue.bucket == common_pb2.BUCKET_FILTERED else skipped
            target[issue.reason] = target.get(issue.reason, 0) + 1
        result = scan_pb2.ScanResult(
            scan_id=header.scan_id,
            fingerprint=header.fingerprint,
            as_of=header.as_of,
            rows=[scan_pb2.ScanRow(rank=i + 1, symbol=s) for i, s in enumerate(ok)],
            total_rows=len(ok),
            accounting=common_pb2.Accounting(
                requested=header.requested,
                ranked=len(ok),
                filtered=filtered,
                skipped=skipped,
                errored={"compute_error": errored} if errored else {},
            ),
            stage_seconds=header.stage_seconds,
        )
        self.stored[header.fingerprint] = result
        return result

    async def GetResults(self, request, context):
        if request.fingerprint not in self.stored:
            await context.abort(grpc.StatusCode.NOT_FOUND, "no such scan")
        return self.stored[request.fingerprint]

    async def AttachExplanations(self, request, context):
        if request.fingerprint not in self.stored:
            await context.abort(grpc.StatusCode.NOT_FOUND, "no such scan")
        explained = {e.symbol: e for e in request.explanations}
        attached = 0
        for row in self.stored[request.fingerprint].rows:
            if row.symbol in explained:
                del row.explanation[:]
                row.explanation.append(explained[row.symbol])
                attached += 1
        return ranker_pb2.AttachExplanationsResponse(attached=attached)


async def serve(servicer, add) -> tuple[grpc.aio.Server, int]:
    server = grpc.aio.server()
    add(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, port


@pytest.fixture
def fetcher() -> Fetcher:
    return Fetcher()


@pytest.fixture
async def backends(fetcher: Fetcher) -> AsyncIterator[tuple[Orchestrator, list[Compute], Ranker]]:
    computes = [Compute(broken=True), Compute(broken=False)]
    ranker = Ranker()
    servers = [
        await serve(fetcher, fetcher_pb2_grpc.add_FetcherServicer_to_server),
        await serve(ranker, ranker_pb2_grpc.add_RankerServicer_to_server),
        *[await serve(c, compute_pb2_grpc.add_ComputeServicer_to_server) for c in computes],
    ]
    ports = [port for _, port in servers]
    settings = GatewaySettings(
        fetcher_target=f"127.0.0.1:{ports[0]}",
        ranker_target=f"127.0.0.1:{ports[1]}",
        compute_target=f"ipv4:127.0.0.1:{ports[2]},127.0.0.1:{ports[3]}",
        gateway_chunk_size=2,
        gateway_score_attempts=4,
        gateway_min_price=5.0,
        gateway_min_dollar_volume=1e6,
    )
    orchestrator = Orchestrator(settings)
    yield orchestrator, computes, ranker
    await orchestrator.close()
    for server, _ in servers:
        await server.stop(0)


async def collect(
    orchestrator: Orchestrator, options: scan_pb2.ScanOptions, **kw
) -> tuple[list[Progress], scan_pb2.ScanResult]:
    items = [item async for item in orchestrator.scan(options, **kw)]
    result = items[-1]
    assert isinstance(result, scan_pb2.ScanResult)
    return [i for i in items if isinstance(i, Progress)], result


async def test_scan_pipeline_retries_accounts_and_caches(backends) -> None:
    orchestrator, computes, ranker = backends
    progress, result = await collect(orchestrator, scan_pb2.ScanOptions(limit=10))
    stages = [p.stage for p in progress]
    assert stages.index("prefilter") < stages.index("fetch") and stages[-1] == "explain"
    # PEN is under $5, ETFX is an ETF; BAD's chunk fails on both replicas and becomes ERROR rows.
    header = ranker.headers[-1]
    assert header.requested == 7 and {i.symbol: i.reason for i in header.issues} == {
        "PEN": "prefilter_price",
        "ETFX": "prefilter_type",
    }
    assert list(header.info.symbols) == ["AAA", "BBB", "CCC", "DDD", "BAD"]  # most liquid first
    assert header.fingerprint and not header.options.sectors and not header.options.HasField("min_price")
    errored = [c for c in ranker.chunks if common_pb2.SYMBOL_STATE_ERROR in c.states]
    assert [list(c.symbols) for c in errored] == [["BAD"]]
    assert decode_block(errored[0].features).fields == FEATURE_NAMES
    assert [r.symbol for r in result.rows] == ["AAA", "BBB", "CCC", "DDD"]
    assert dict(result.accounting.errored) == {"compute_error": 1}
    assert computes[0].calls > 0 and computes[1].calls >= 2  # the broken replica's chunks went to the other
    assert all(row.explanation for row in result.rows)
    assert {"universe", "snapshot", "prefilter", "fetch", "compute", "rank", "explain", "total"} <= set(
        result.stage_seconds
    )

    rank_calls = len(ranker.headers)
    progress, again = await collect(orchestrator, scan_pb2.ScanOptions(limit=10))
    assert again.cached and not progress and len(ranker.headers) == rank_calls
    assert [r.symbol for r in again.rows] == [r.symbol for r in result.rows] and again.rows[0].explanation
    _, fresh = await collect(orchestrator, scan_pb2.ScanOptions(limit=10), refresh=True)
    assert not fresh.cached and len(ranker.headers) == rank_calls + 1
    assert ranker.headers[-1].fingerprint not in (result.fingerprint, "")  # ranked again, not the ranker's cache
    _, after = await collect(orchestrator, scan_pb2.ScanOptions(limit=10))
    assert after.cached and after.fingerprint == fresh.fingerprint


async def test_sector_filter_and_watchlist(backends) -> None:
    orchestrator, _, ranker = backends
    _, result = await collect(orchestrator, scan_pb2.ScanOptions(sectors=["energy"]))
    assert [r.symbol for r in result.rows] == ["AAA"]
    assert result.accounting.filtered["prefilter_sector"] == 4
    _, watch = await collect(orchestrator, scan_pb2.ScanOptions(universe=["PEN", "CCC", "NOPE"]))
    header = ranker.headers[-1]
    assert header.requested == 3 and list(header.info.symbols) == ["CCC", "PEN"]  # floors not applied to a watchlist
    assert dict(watch.accounting.skipped) == {"unknown_symbol": 1}


async def test_cancelling_the_scan_cancels_scoring(backends) -> None:
    orchestrator, computes, _ = backends
    computes[0].broken, computes[1].delay = False, 30.0
    computes[0].delay = 30.0
    stream = orchestrator.scan(scan_pb2.ScanOptions(), refresh=True)
    async for item in stream:
        if isinstance(item, Progress) and item.stage == "fetch" and item.done > 0:
            break
    for _ in range(100):  # wait until a replica is working on a chunk, then walk away
        if sum(c.calls for c in computes):
            break
        await asyncio.sleep(0.05)
    await stream.aclose()
    for _ in range(100):
        if sum(c.cancelled for c in computes):
            break
        await asyncio.sleep(0.05)
    assert sum(c.cancelled for c in computes) >= 1


async def test_a_past_session_snapshot_is_fetched_once(backends, fetcher: Fetcher) -> None:
    orchestrator, _, _ = backends
    # A completed past session, asked twice (refresh skips only the result caches): one request.
    # A window with a failed session, and a date resolving to an earlier session, are asked again.
    for as_of in ("2026-11-12", "2026-11-11", "2026-11-14") * 2:
        _, result = await collect(
            orchestrator, scan_pb2.ScanOptions(limit=10, as_of=as_of, universe=["AAA", "CCC"]), refresh=True
        )
        assert result.as_of == min(as_of, "2026-11-13")
    assert fetcher.snapshot_requests == ["2026-11-12", "2026-11-11", "2026-11-14", "2026-11-11", "2026-11-14"]


async def test_prefilter_and_details_are_reused_while_the_snapshot_is_the_same(backends, fetcher: Fetcher) -> None:
    orchestrator, computes, ranker = backends
    computes[0].broken = False

    def header_parts() -> tuple[dict[str, str], list[str], list[str]]:
        header = ranker.headers[-1]
        return ({i.symbol: i.reason for i in header.issues}, list(header.info.symbols), list(header.info.sectors))

    await collect(orchestrator, scan_pb2.ScanOptions(limit=10), refresh=True)
    first = header_parts()
    assert first == (
        {"PEN": "prefilter_price", "ETFX": "prefilter_type"},
        ["AAA", "BBB", "CCC", "DDD", "BAD"],
        ["Energy"] + ["Information Technology"] * 4,
    )
    assert fetcher.details_requests == [first[1]]
    await collect(orchestrator, scan_pb2.ScanOptions(limit=10), refresh=True)
    assert header_parts() == first and len(fetcher.details_requests) == 1 and len(ranker.headers) == 2

    # Another snapshot is prefiltered again; the known details still cover every survivor.
    fetcher.close[3] = 2.0
    _, result = await collect(orchestrator, scan_pb2.ScanOptions(limit=10), refresh=True)
    issues, survivors, sectors = header_parts()
    assert issues == {"PEN": "prefilter_price", "ETFX": "prefilter_type", "DDD": "prefilter_price"}
    assert survivors == ["AAA", "BBB", "CCC", "BAD"] and sectors == ["Energy"] + ["Information Technology"] * 3
    assert dict(result.accounting.filtered) == {"prefilter_price": 2, "prefilter_type": 1}
    assert len(fetcher.details_requests) == 1
    # A survivor the known details lack: the fetcher is asked for it alone.
    await collect(orchestrator, scan_pb2.ScanOptions(limit=10, include_etfs=True), refresh=True)
    _, survivors, sectors = header_parts()
    assert survivors == ["AAA", "BBB", "CCC", "BAD", "ETFX"] and sectors[0] == "Energy"
    assert list(ranker.headers[-1].info.names) == [f"{s} Inc" for s in survivors]
    assert fetcher.details_requests[1:] == [["ETFX"]]
    # Known answers go stale with the universe: then every survivor is asked again.
    orchestrator.settings.gateway_universe_ttl_seconds = 0.0
    await collect(orchestrator, scan_pb2.ScanOptions(limit=10, include_etfs=True), refresh=True)
    assert fetcher.details_requests[2:] == [survivors]


async def test_the_last_top_rows_are_explained_while_the_scan_is_ranked(backends) -> None:
    orchestrator, computes, ranker = backends
    computes[0].broken = False  # every chunk scored

    def explain_requests() -> list[list[str]]:
        return sorted(request for c in computes for request in c.explained)

    options = scan_pb2.ScanOptions(limit=10, universe=["DDD", "CCC", "BBB", "AAA"])
    _, first = await collect(orchestrator, options, refresh=True)
    top = [r.symbol for r in first.rows]
    assert top == ["AAA", "BBB", "CCC", "DDD"] and explain_requests() == [top]
    assert all(r.explanation for r in first.rows)

    # The same request again: its last top rows are explained before the ranker answers, and only then.
    ranker.hold = asyncio.Event()
    for c in computes:
        c.explained.clear()
        c.on_explain = ranker.hold
    _, second = await collect(orchestrator, options, refresh=True)
    assert explain_requests() == [top]
    assert [r.symbol for r in second.rows] == top and all(r.explanation for r in second.rows)

    # Fewer rows explained now, and a last top that differs: the rows still missing are explained
    # after the ranking, and an early explanation of a row outside the top is not attached.
    orchestrator.settings.gateway_explain_top = 2
    request = normalize_options(options, orchestrator.settings).SerializeToString(deterministic=True)
    assert orchestrator.results._top_rows[request] == top
    orchestrator.results._top_rows[request] = ["DDD", "AAA"]
    for c in computes:
        c.explained.clear()
    _, third = await collect(orchestrator, options, refresh=True)
    assert explain_requests() == [["BBB"], ["DDD", "AAA"]]
    assert [r.symbol for r in third.rows if r.explanation] == ["AAA", "BBB"]
    assert orchestrator.results._top_rows[request] == ["AAA", "BBB"]


async def test_a_symbol_page_is_kept_until_the_session_or_the_latest_scan_changes(backends, fetcher: Fetcher) -> None:
    orchestrator, _, _ = backends

    def page(data: bytes) -> tuple[str, bool]:
        detail = scanner_pb2.SymbolDetail.FromString(data)
        return detail.history[-1].date, detail.in_latest_scan

    first, as_of = await orchestrator.symbol_page("aaa", 0)
    assert as_of == "2026-11-13" and page(first) == ("2026-11-13", False)
    assert fetcher.bars_requests == [("AAA", 90, "2026-11-13")] and fetcher.snapshot_requests == [""]
    # The same page however spelled: kept, no fetcher call; other days are another page.
    assert await orchestrator.symbol_page(" AAA ", 90) == (first, as_of)
    assert len(fetcher.bars_requests) == 1
    await orchestrator.symbol_page("AAA", 30)
    assert fetcher.bars_requests[1:] == [("AAA", 30, "2026-11-13")]

    # A scan finished: the page shows its row now.
    await collect(orchestrator, scan_pb2.ScanOptions(limit=10))
    scanned, _ = await orchestrator.symbol_page("AAA", 90)
    assert page(scanned) == ("2026-11-13", True) and len(fetcher.bars_requests) == 3
    snapshots = len(fetcher.snapshot_requests)

    # The latest session's trust ran out but the session is the same: asked again, the page is kept.
    assert orchestrator.market.latest is not None
    orchestrator.market.latest.fetched -= 3600
    assert await orchestrator.symbol_page("AAA", 90) == (scanned, "2026-11-13")
    assert len(fetcher.snapshot_requests) == snapshots + 1 and len(fetcher.bars_requests) == 3

    # A new session: the page is made again for it.
    fetcher.latest = "2026-11-16"
    orchestrator.market.latest.fetched -= 3600
    moved, as_of = await orchestrator.symbol_page("AAA", 90)
    assert as_of == "2026-11-16" and page(moved) == ("2026-11-16", True)
    assert fetcher.bars_requests[3:] == [("AAA", 90, "2026-11-16")]


async def test_an_unknown_symbol_is_not_kept(backends, fetcher: Fetcher) -> None:
    orchestrator, _, _ = backends
    for _ in range(2):
        with pytest.raises(NotFound):
            await orchestrator.symbol_page("ZZZZ", 90)
    assert len(orchestrator.symbol_pages) == 0


async def test_a_scan_no_replica_could_score_fails_and_is_not_ranked(backends) -> None:
    orchestrator, computes, ranker = backends
    await orchestrator.catalog.describe()  # the versions are known; then every replica goes down
    for compute in computes:
        compute.broken = True
    with pytest.raises(Unavailable, match="compute failed: no replica scored any of the 3 chunks"):
        await collect(orchestrator, scan_pb2.ScanOptions(limit=10))
    assert orchestrator.latest is None
    for _ in range(500):  # the failed scan's rank stream, cut off, reaches the ranker after the failure
        if ranker.cut_off:
            break
        await asyncio.sleep(0.01)
    assert ranker.cut_off == 1 and len(ranker.headers) == 1 and not ranker.stored
    # The replicas back: the same scan runs, ranked once, with the chunk that always fails as ERROR rows.
    for compute in computes:
        compute.broken = False
    _, result = await collect(orchestrator, scan_pb2.ScanOptions(limit=10))
    assert [r.symbol for r in result.rows] == ["AAA", "BBB", "CCC", "DDD"] and len(ranker.stored) == 1
