"""Panel chunks from synthetic raw sessions: digests, streaming symbols, reuse, the fetch strategy."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import numpy as np
import pytest
import redis

from services.common.codec import decode_block
from services.fetcher.calendar import as_day, day_str
from services.fetcher.chunks import PanelChunk, PanelReport, chunk_digest
from services.fetcher.polygon import GroupedDay, PolygonClient, TickerIds, TickerRange
from services.fetcher.request import RequestError, unique
from tests.fetcher.domain import NOWHERE, Domain, batches_of, domain, store_window
from tests.support import RedisServer

SYMBOLS = [f"S{i}" for i in range(30)]


def test_chunk_digest_changes_with_what_defines_the_chunk() -> None:
    present = np.array([True, True, False, True])
    rows, factors = np.array([1]), np.array([[2.0, 2.0, 1.0, 1.0]])
    none = np.zeros(0, np.int64)

    def digest(**changes: object) -> str:
        args: dict = {
            "as_of": "2026-11-13",
            "lookback": 4,
            "symbols": ["AAA", "BBB"],
            "present": present,
            "volatile": [],
            "split_rows": rows,
            "factors": factors,
            "ranged": none,
        }
        return chunk_digest(**{**args, **changes})

    base = digest()
    assert digest() == base and len(base) == 32
    assert digest(present=present.copy()) == base
    others = [
        digest(symbols=["AAA", "CCC"]),
        digest(symbols=["BBB", "AAA"]),
        digest(present=np.ones(4, bool)),
        digest(factors=np.array([[4.0, 4.0, 1.0, 1.0]])),
        digest(split_rows=none, factors=np.ones((0, 4))),
        digest(as_of="2026-11-12"),
        digest(lookback=5),
        digest(volatile=[b"bars"]),
        digest(ranged=np.array([0])),
    ]
    assert len({base, *others}) == len(others) + 1


def test_unique_keeps_order_and_normalises() -> None:
    assert unique(["aaa", "BBB", " AAA ", "", "ccc", "BBB"]) == ["AAA", "BBB", "CCC"]


async def collect(
    fetcher: Domain, batches: AsyncIterator[list[str]], lookback: int, chunk_size: int, as_of: str = ""
) -> tuple[list[PanelChunk], PanelReport]:
    report = PanelReport()
    return [c async for c in fetcher.panels.panels(batches, as_of, lookback, chunk_size, report)], report


async def test_chunks_do_not_depend_on_how_the_symbols_were_batched(redis_server: RedisServer) -> None:
    client = redis.Redis.from_url(redis_server.url)
    client.flushdb()
    setup = domain(redis_server.url)
    window = setup.calendar.window(as_day("2026-11-13"), 20)
    await store_window(setup.store, window, SYMBOLS, skip=[4])
    await setup.close()
    # Lower case, blanks, repeats across batches and names the market does not have.
    asked = ["s3", "S1", " ", "S7", "s1", "NOPE", *SYMBOLS[10:22], "S7", "s25", "S3", "ZZZ", "S29"]
    expected = unique(asked)
    answers = []
    for size in (1, 2, 5, len(asked)):
        fetcher = domain(redis_server.url)  # a fresh process each time: every chunk is built and written
        chunks, report = await collect(fetcher, batches_of(asked, size), 20, 4)
        blocks = [decode_block(client.get(c.key)).array for c in chunks]
        answers.append((chunks, blocks))
        assert [s for c in chunks for s in c.symbols] == expected
        assert [len(c.symbols) for c in chunks] == [4, 4, 4, 4, 3] and [c.index for c in chunks] == [0, 1, 2, 3, 4]
        assert report.failed_sessions == [day_str(window[4])] and report.strategy == "grouped"
        await fetcher.close()
    first_chunks, first_blocks = answers[0]
    for chunks, blocks in answers[1:]:
        assert chunks == first_chunks  # keys, digests, symbols, no_data
        for a, b in zip(blocks, first_blocks, strict=True):
            np.testing.assert_array_equal(a, b)
    assert [s for c in first_chunks for s in c.no_data] == ["NOPE", "ZZZ"]


async def test_a_chunk_is_handed_out_before_the_symbol_stream_ends(redis_server: RedisServer) -> None:
    redis.Redis.from_url(redis_server.url).flushdb()
    fetcher = domain(redis_server.url)
    window = fetcher.calendar.window(as_day("2026-11-13"), 20)
    await store_window(fetcher.store, window, SYMBOLS)
    first_chunk = asyncio.Event()
    open_when_handed_out: list[bool] = []

    async def batches() -> AsyncIterator[list[str]]:
        yield SYMBOLS[:6]
        # The rest is sent only once a chunk came back (or after a while, for the test to fail, not hang).
        try:
            await asyncio.wait_for(first_chunk.wait(), 10)
        except TimeoutError:
            open_when_handed_out.append(False)
        yield SYMBOLS[6:10]

    report = PanelReport()
    chunks = []
    async for chunk in fetcher.panels.panels(batches(), "", 20, 6, report):
        if not chunks:
            open_when_handed_out.append(not first_chunk.is_set())
            first_chunk.set()
        chunks.append(chunk)
    assert open_when_handed_out == [True]
    assert [c.symbols for c in chunks] == [SYMBOLS[:6], SYMBOLS[6:10]]
    await fetcher.close()


class FakeSource(PolygonClient):
    """Serves every session and ticker range of a synthetic market; counts what it was asked."""

    def __init__(self, symbols: Sequence[str], window: np.ndarray) -> None:
        super().__init__(NOWHERE, "key", max_retries=0)
        self.symbols = list(symbols)
        self.window = window
        self.sessions_asked: list[str] = []
        self.tickers_asked: list[str] = []
        self.asked = asyncio.Event()

    async def grouped_daily(self, day: str, index: TickerIds | None = None) -> GroupedDay | None:
        self.sessions_asked.append(day)
        self.asked.set()
        await asyncio.sleep(0.001)
        return GroupedDay(tickers=self.symbols, values=np.full((len(self.symbols), 6), 1.0))

    async def ticker_range(self, ticker: str, start: str, end: str) -> TickerRange:
        self.tickers_asked.append(ticker)
        self.asked.set()
        return TickerRange(ticker, self.window.copy(), np.full((len(self.window), 6), 2.0))


async def test_few_symbols_go_per_ticker_and_grouped_downloads_start_while_symbols_arrive(
    redis_server: RedisServer,
) -> None:
    redis.Redis.from_url(redis_server.url).flushdb()
    probe = domain(redis_server.url)
    window = probe.calendar.window(as_day("2026-11-13"), 20)
    await store_window(probe.store, window, SYMBOLS, skip=[2, 9, 15])  # three sessions missing
    await probe.close()

    # Two symbols, one at a time: fewer than the missing sessions, so a request per symbol.
    source = FakeSource(SYMBOLS, window)
    fetcher = domain(redis_server.url, source)
    chunks, report = await collect(fetcher, batches_of(SYMBOLS[:2], 1), 20, 4)
    assert report.strategy == "per_ticker" and source.tickers_asked == SYMBOLS[:2] and not source.sessions_asked
    assert report.stats.extra["tickers_fetched"] == 2 and len(chunks) == 1
    await fetcher.close()

    # Three symbols are as many as the missing sessions: grouped downloads start before the fourth is sent.
    source = FakeSource(SYMBOLS, window)
    fetcher = domain(redis_server.url, source)
    started_while_open: list[bool] = []

    async def batches() -> AsyncIterator[list[str]]:
        for symbol in SYMBOLS[:3]:
            yield [symbol]
        try:
            await asyncio.wait_for(source.asked.wait(), 10)
            started_while_open.append(True)
        except TimeoutError:
            started_while_open.append(False)
        yield SYMBOLS[3:8]

    chunks, report = await collect(fetcher, batches(), 20, 4)
    assert started_while_open == [True] and report.strategy == "grouped" and not source.tickers_asked
    assert sorted(source.sessions_asked) == [day_str(window[j]) for j in (2, 9, 15)]
    assert report.stats.extra["sessions_fetched"] == 3 and [len(c.symbols) for c in chunks] == [4, 4]
    await fetcher.close()


async def test_an_invalid_stream_stops_the_chunks_with_its_error(redis_server: RedisServer) -> None:
    redis.Redis.from_url(redis_server.url).flushdb()
    fetcher = domain(redis_server.url)
    window = fetcher.calendar.window(as_day("2026-11-13"), 20)
    await store_window(fetcher.store, window, SYMBOLS)

    got: list[PanelChunk] = []
    handed_out = asyncio.Event()

    async def batches() -> AsyncIterator[list[str]]:
        yield SYMBOLS[:4]
        await asyncio.wait_for(handed_out.wait(), 10)
        yield SYMBOLS[4:6]
        raise RequestError("at most 6 symbols per Prefetch")

    # The chunk whose symbols came before the error is handed out; the error ends the request (the
    # two symbols after that chunk never make one).
    with pytest.raises(RequestError, match="at most 6 symbols"):
        async for chunk in fetcher.panels.panels(batches(), "", 20, 4, PanelReport()):
            got.append(chunk)
            handed_out.set()
    assert [c.symbols for c in got] == [SYMBOLS[:4]]
    # A stream without a single symbol asks nothing and yields nothing.
    chunks, report = await collect(fetcher, batches_of(["", " "], 1), 20, 4)
    assert chunks == [] and report.as_of == ""
    await fetcher.close()


async def test_interleaved_requests_for_windows_the_stack_cannot_share(redis_server: RedisServer) -> None:
    """Two panel streams, far apart in time, advanced in turn: each moves the stack at its awaits."""
    redis.Redis.from_url(redis_server.url).flushdb()
    fetcher = domain(redis_server.url, stack_sessions=50)
    for as_of in ("2026-03-13", "2026-11-13"):
        await store_window(fetcher.store, fetcher.calendar.window(as_day(as_of), 40), SYMBOLS, seed=len(as_of))

    async def read(stream: AsyncIterator[PanelChunk]) -> np.ndarray | None:
        chunk = await anext(stream, None)
        if chunk is None:
            return None
        return decode_block(redis.Redis.from_url(redis_server.url).get(chunk.key)).array.copy()

    together: dict[str, list[np.ndarray]] = {"2026-03-13": [], "2026-11-13": []}
    streams = {as_of: fetcher.panels.panels(batches_of(SYMBOLS, 7), as_of, 40, 6, PanelReport()) for as_of in together}
    while streams:
        for as_of in list(streams):
            block = await read(streams[as_of])
            if block is None:
                del streams[as_of]
            else:
                together[as_of].append(block)
    for as_of, blocks in together.items():
        # Every chunk holds the stored sessions' bars of its six symbols (no splits, no gaps).
        window = fetcher.calendar.window(as_day(as_of), 40)
        sessions = await fetcher.store.get_sessions(list(window))
        bars = np.stack([sessions[d].padded[:-1, :5] for d in window], axis=1)
        assert len(blocks) == 5
        for k, block in enumerate(blocks):
            np.testing.assert_array_equal(block, bars[6 * k : 6 * k + 6])
    await fetcher.close()


async def test_an_identical_panel_request_reuses_its_chunks_while_redis_holds_them(redis_server: RedisServer) -> None:
    client = redis.Redis.from_url(redis_server.url)
    client.flushdb()
    fetcher = domain(redis_server.url)
    symbols = SYMBOLS[:10]
    window = fetcher.calendar.window(as_day("2026-11-13"), 20)
    await store_window(fetcher.store, window, symbols, seed=7, skip=[5])  # a session the source fails to serve

    async def request() -> tuple[list[PanelChunk], PanelReport]:
        return await collect(fetcher, batches_of(symbols, 3, pause=0.01), 20, 4)

    asked: list[int] = []  # how many keys each round trip to Redis asked about
    has_panels, has_panel = fetcher.store.has_panels, fetcher.store.has_panel

    async def counted_many(keys: Sequence[str]) -> bool:
        asked.append(len(keys))
        return await has_panels(keys)

    async def counted_one(key: str) -> bool:
        asked.append(1)
        return await has_panel(key)

    fetcher.store.has_panels = counted_many  # type: ignore[method-assign]
    fetcher.store.has_panel = counted_one  # type: ignore[method-assign]
    first, report = await request()
    assert len(first) == 3 and "chunks_reused" not in report.stats.extra and len(report.failed_sessions) == 1
    asked.clear()
    again, report = await request()
    assert again == first and report.stats.extra["chunks_reused"] == 3 and "assemble" not in report.stats.seconds
    # One question to Redis for the three chunks, though the symbols of the later ones were still on their way.
    assert asked == [3]
    # A chunk Redis no longer holds: that chunk is assembled and written again.
    client.delete(first[1].key)
    rebuilt, report = await request()
    assert rebuilt == first and report.stats.extra["chunks_reused"] == 2 and "assemble" in report.stats.seconds
    assert client.exists(first[1].key)
    # The missing session arrives: new chunks, holding its bars.
    await fetcher.store.put_session(
        window[5], GroupedDay(tickers=symbols, values=np.full((10, 6), 3.0)), unfinished=False
    )
    moved, report = await request()
    assert [c.key for c in moved] != [c.key for c in first] and not report.failed_sessions
    assert all((decode_block(client.get(c.key)).array[:, 5, :] == 3.0).all() for c in moved)
    await fetcher.close()
