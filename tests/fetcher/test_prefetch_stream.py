"""Prefetch over gRPC with the servicer in process: chunk references come back while symbols still go
out, and a malformed request stream gets INVALID_ARGUMENT with a message that says what is wrong."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import grpc
import orjson
import pytest
import redis
from aiohttp import web

from services.fetcher.calendar import as_day
from services.fetcher.service import FetcherService
from services.fetcher.settings import FetcherSettings
from technic.v1 import fetcher_pb2, fetcher_pb2_grpc
from tests.fetcher.domain import domain, fixed_now, store_window
from tests.support import RedisServer

SYMBOLS = [f"S{i}" for i in range(30)]
LOOKBACK = 20


@contextlib.asynccontextmanager
async def empty_source() -> AsyncIterator[str]:
    """A Polygon stand-in on a loopback port it chose (port 0): it has no bars and no splits."""

    async def nothing(request: web.Request) -> web.Response:
        return web.Response(body=orjson.dumps({"status": "OK", "resultsCount": 0, "results": []}))

    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", nothing)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def fetcher_stub(redis_server: RedisServer, **settings: object) -> AsyncIterator[fetcher_pb2_grpc.FetcherStub]:
    """The fetcher servicer on a gRPC server bound to port 0 (the port it got is read back), its
    market's sessions stored up to 2026-11-13, on a clock fixed the day after."""
    redis.Redis.from_url(redis_server.url).flushdb()
    setup = domain(redis_server.url)
    await store_window(setup.store, setup.calendar.window(as_day("2026-11-13"), LOOKBACK), SYMBOLS)
    await setup.close()
    async with empty_source() as source:
        config = FetcherSettings(redis_url=redis_server.url, polygon_base_url=source, fetcher_max_retries=0, **settings)
        servicer = FetcherService(config, now=fixed_now)
        server = grpc.aio.server()
        fetcher_pb2_grpc.add_FetcherServicer_to_server(servicer, server)
        port = server.add_insecure_port("127.0.0.1:0")
        assert port > 0
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                yield fetcher_pb2_grpc.FetcherStub(channel)
        finally:
            await server.stop(None)
            await servicer.close()


def header(chunk_size: int = 4, lookback: int = LOOKBACK) -> fetcher_pb2.PrefetchRequest:
    return fetcher_pb2.PrefetchRequest(
        header=fetcher_pb2.PrefetchHeader(scan_id="stream", lookback=lookback, chunk_size=chunk_size)
    )


def batch(symbols: list[str]) -> fetcher_pb2.PrefetchRequest:
    return fetcher_pb2.PrefetchRequest(batch=fetcher_pb2.SymbolBatch(symbols=symbols))


async def test_a_chunk_reference_arrives_before_the_request_stream_is_closed(redis_server: RedisServer) -> None:
    async with fetcher_stub(redis_server) as stub:
        answered = asyncio.Event()
        open_at_first_answer: list[bool] = []

        async def requests() -> AsyncIterator[fetcher_pb2.PrefetchRequest]:
            yield header(chunk_size=4)
            yield batch(SYMBOLS[:4])
            # The next batch goes only once an answer came (after 10 s the test fails instead of hanging).
            try:
                await asyncio.wait_for(answered.wait(), 10)
            except TimeoutError:
                open_at_first_answer.append(False)
            yield batch(SYMBOLS[4:10])

        replies = []
        async for reply in stub.Prefetch(requests(), timeout=60):
            if not replies:
                open_at_first_answer.append(not answered.is_set())
                answered.set()
            replies.append(reply)
    assert open_at_first_answer == [True]
    chunks, final = replies[:-1], replies[-1]
    assert final.done and final.as_of == "2026-11-13" and not final.failed_sessions
    assert [list(r.chunk.symbols) for r in chunks] == [SYMBOLS[:4], SYMBOLS[4:8], SYMBOLS[8:10]]
    assert [r.chunk.chunk_index for r in chunks] == [0, 1, 2]
    # The chunk's content digest names it, also inside its key.
    assert all(len(r.chunk.content_digest) == 32 and r.chunk.content_digest in r.chunk.key for r in chunks)
    assert "chunk_digest" not in fetcher_pb2.PrefetchResponse.DESCRIPTOR.fields_by_name


async def test_batches_make_the_same_chunks_however_they_are_cut(redis_server: RedisServer) -> None:
    async def prefetch(stub: fetcher_pb2_grpc.FetcherStub, size: int) -> list[fetcher_pb2.PrefetchResponse]:
        async def requests() -> AsyncIterator[fetcher_pb2.PrefetchRequest]:
            yield header(chunk_size=7)
            for lo in range(0, len(SYMBOLS), size):
                yield batch(SYMBOLS[lo : lo + size])

        return [r async for r in stub.Prefetch(requests(), timeout=60) if not r.done]

    async with fetcher_stub(redis_server) as stub:
        whole = await prefetch(stub, len(SYMBOLS))
        pieces = await prefetch(stub, 3)
    assert [r.chunk.key for r in pieces] == [r.chunk.key for r in whole] and len(whole) == 5
    assert [list(r.chunk.symbols) for r in pieces] == [SYMBOLS[lo : lo + 7] for lo in range(0, 30, 7)]


@pytest.mark.parametrize(
    ("messages", "message"),
    [
        ([], "Prefetch got no header"),
        ([batch(["S1"]), header()], "Prefetch must start with a header"),
        ([header(), batch(["S1"]), header()], "Prefetch takes one header, got two"),
        ([header()], "Prefetch got no symbols"),
        ([header(), batch(["", "  "])], "Prefetch got no symbols"),
        ([header(), batch(SYMBOLS[:8]), batch(SYMBOLS[8:16])], "at most 12 symbols per Prefetch"),
        ([header(chunk_size=20001), batch(["S1"])], "chunk_size must be between 1 and 20000, got 20001"),
        ([header(lookback=5000), batch(["S1"])], "lookback must be between 1 and 2520, got 5000"),
    ],
    ids=["empty", "batch-first", "two-headers", "no-symbols", "blank-symbols", "too-many", "chunk-size", "lookback"],
)
async def test_a_malformed_request_stream_is_invalid_argument(
    redis_server: RedisServer, messages: list[fetcher_pb2.PrefetchRequest], message: str
) -> None:
    async def requests() -> AsyncIterator[fetcher_pb2.PrefetchRequest]:
        for item in messages:
            yield item

    async with fetcher_stub(redis_server, fetcher_max_symbols=12) as stub:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            async for _ in stub.Prefetch(requests(), timeout=30):
                pass
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details() == message


async def test_a_request_that_fails_while_the_client_still_sends_gets_the_servers_status(
    redis_server: RedisServer,
) -> None:
    """The status waits for the client's last batch: a grpc.aio client still writing would report INTERNAL."""

    async def requests() -> AsyncIterator[fetcher_pb2.PrefetchRequest]:
        yield fetcher_pb2.PrefetchRequest(header=fetcher_pb2.PrefetchHeader(as_of="2027-01-04", chunk_size=4))
        for lo in range(0, 20_000, 100):
            yield batch([f"X{i}" for i in range(lo, lo + 100)])
            await asyncio.sleep(0)

    async with fetcher_stub(redis_server) as stub:
        for _ in range(3):
            with pytest.raises(grpc.aio.AioRpcError) as info:
                async for _ in stub.Prefetch(requests(), timeout=30):
                    pass
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "after the latest session the source has (2026-11-13)" in (info.value.details() or "")
