"""Unit tests of the Polygon client against a small in-process HTTP server (no other module involved)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import numpy as np
import orjson
import pytest
from aiohttp import web

from services.fetcher.polygon import (
    RETRY_AFTER_MAX,
    PolygonAuthError,
    PolygonBadRequest,
    PolygonClient,
    PolygonNotFound,
    PolygonUnavailable,
    TokenBucket,
    counting,
    retry_delay,
)
from services.fetcher.tickers import TickerIndex

KEY = "secret-key-123"
ROW = {"T": "AAA", "v": 100.0, "vw": 10.5, "o": 10.0, "c": 11.0, "h": 12.0, "l": 9.0, "t": 1, "n": 5}
Handler = Callable[[web.Request], web.StreamResponse | Awaitable[web.StreamResponse]]


@contextlib.asynccontextmanager
async def client_for(handler: Handler, **kwargs) -> AsyncIterator[PolygonClient]:
    """A client of a loopback server whose every request is answered by ``handler``."""

    async def route(request: web.Request) -> web.StreamResponse:
        answer = handler(request)
        return await answer if asyncio.iscoroutine(answer) else answer

    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", route)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]  # the port the OS gave (bound to port 0)
    client = PolygonClient(f"http://127.0.0.1:{port}", KEY, backoff_base=0.001, backoff_max=0.01, **kwargs)
    try:
        yield client
    finally:
        await client.aclose()
        await runner.cleanup()


def ok(body: dict) -> web.Response:
    return web.Response(status=200, body=orjson.dumps(body))


def answer(status: int, body: bytes, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, body=body, headers=headers)


@pytest.mark.parametrize("indexed", [False, True])
@pytest.mark.parametrize("escaped", [False, True], ids=["scanner", "json-decoder"])
async def test_grouped_daily_parses_and_keeps_one_row_per_ticker(indexed: bool, escaped: bool) -> None:
    seen: list[web.Request] = []

    def handler(request: web.Request) -> web.Response:
        seen.append(request)
        rows = [ROW, {**ROW, "T": "BBB", "vw": None}, {**ROW, "c": 99.0}]
        body = orjson.dumps({"status": "OK", "resultsCount": 3, "results": rows, "request_id": "r"})
        # An escaped ticker is beyond the Numba scanner: the general decoder reads the body instead.
        return answer(200, body.replace(b'"BBB"', b'"B\\u0042B"') if escaped else body)

    index = TickerIndex()
    index.ids(["ZZZ"])
    async with client_for(handler) as client:
        day = await client.grouped_daily("2026-11-13", index if indexed else None)
    assert day is not None
    assert list(day.tickers) == ["AAA", "BBB"]
    if indexed:
        assert day.ids is not None and list(day.ids) == [1, 2] and list(index.ids(["AAA", "BBB"], add=False)) == [1, 2]
    else:
        assert day.ids is None
    np.testing.assert_array_equal(day.values[0], [10.0, 12.0, 9.0, 11.0, 100.0, 10.5])
    assert np.isnan(day.values[1, 5])
    assert seen[0].headers["Authorization"] == f"Bearer {KEY}"
    assert KEY not in str(seen[0].rel_url)
    assert seen[0].query["adjusted"] == "false" and seen[0].query["include_otc"] == "true"


@pytest.mark.parametrize("body", [{"status": "OK", "resultsCount": 0}, {"status": "OK", "results": None}])
async def test_holiday_is_none(body: dict) -> None:
    async with client_for(lambda r: ok(body)) as client:
        assert await client.grouped_daily("2026-11-26") is None


async def test_429_and_5xx_and_malformed_are_retried_with_retry_after() -> None:
    answers = [
        answer(429, b'{"status":"ERROR","error":"slow down"}', {"Retry-After": "0"}),
        answer(429, b'{"status":"ERROR","error":"slow down"}'),
        answer(503, b"upstream"),
        answer(200, b'{"status":"OK","results":[{"T":"AAA","o":1'),
        ok({"status": "OK", "results": [ROW]}),
    ]

    async with client_for(lambda r: answers.pop(0)) as client:
        with counting() as counters:
            day = await client.grouped_daily("2026-11-13")
    assert day is not None and day.tickers == ["AAA"]
    assert counters.requests == 5 and counters.retries == 4 and counters.errors == 3
    assert counters.bytes > 0


async def test_retries_exhausted_raise_unavailable() -> None:
    async with client_for(lambda r: answer(500, b"boom"), max_retries=2) as client:
        with counting() as counters, pytest.raises(PolygonUnavailable, match="3 attempts"):
            await client.grouped_daily("2026-11-13")
    assert counters.requests == 3


async def test_transport_errors_are_retried() -> None:
    calls = []

    async def handler(request: web.Request) -> web.StreamResponse:
        calls.append(1)
        if len(calls) == 1:
            # The connection drops before any answer: a transport error on the client's side.
            assert request.transport is not None
            request.transport.close()
            return web.StreamResponse()
        return ok({"status": "OK", "results": [ROW]})

    async with client_for(handler) as client:
        assert (await client.grouped_daily("2026-11-13")) is not None
    assert len(calls) == 2


@pytest.mark.parametrize(
    ("status", "body", "error", "text"),
    [
        (401, {"status": "ERROR", "request_id": "a", "error": "Unknown API Key"}, PolygonAuthError, "Unknown API Key"),
        (
            403,
            {"status": "NOT_AUTHORIZED", "request_id": "b", "message": "Not entitled"},
            PolygonAuthError,
            "Not entitled",
        ),
        (
            404,
            {"status": "NOT_FOUND", "request_id": "c", "message": "no such ticker"},
            PolygonNotFound,
            "no such ticker",
        ),
        (400, {"status": "ERROR", "request_id": "d", "error": "bad date"}, PolygonBadRequest, "bad date"),
    ],
)
async def test_client_errors_are_not_retried(status: int, body: dict, error: type, text: str) -> None:
    calls = []

    def handler(request: web.Request) -> web.Response:
        calls.append(1)
        # A Retry-After does not make a client error worth another attempt either.
        return answer(status, orjson.dumps(body), {"Retry-After": "0"})

    async with client_for(handler, max_retries=5) as client:
        with counting() as counters, pytest.raises(error, match=text) as info:
            await client.grouped_daily("2026-11-13")
    assert len(calls) == 1 and counters.requests == 1 and counters.retries == 0
    assert info.value.status_code == status and info.value.request_id == body["request_id"]


async def test_retry_after_is_honoured() -> None:
    arrivals: list[float] = []

    def handler(request: web.Request) -> web.Response:
        arrivals.append(time.monotonic())
        if len(arrivals) == 1:
            return answer(429, b'{"status":"ERROR","error":"slow down"}', {"Retry-After": "1"})
        return ok({"status": "OK", "results": [ROW]})

    # Backoff alone would wait at most 10 ms: the second request waits for the server's second.
    async with client_for(handler) as client:
        assert await client.grouped_daily("2026-11-13") is not None
    assert len(arrivals) == 2 and arrivals[1] - arrivals[0] >= 0.95


async def test_without_retry_after_the_backoff_grows_and_is_capped() -> None:
    arrivals: list[float] = []

    def handler(request: web.Request) -> web.Response:
        arrivals.append(time.monotonic())
        return answer(503, b"busy") if len(arrivals) <= 3 else ok({"status": "OK", "results": [ROW]})

    async with client_for(handler) as client:
        # client_for's backoff (1 ms base, 10 ms cap) made slower: 100 ms base, 200 ms cap.
        client.backoff_base, client.backoff_max = 0.1, 0.2
        assert await client.grouped_daily("2026-11-13") is not None
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    # Each wait is at least half of min(cap, base x 2^attempt): 50, 100, 100 ms.
    assert len(gaps) == 3 and gaps[0] >= 0.045 and gaps[1] >= 0.095 and gaps[2] >= 0.095


def test_retry_delay_follows_retry_after_else_bounded_backoff() -> None:
    assert retry_delay(0, "2", 0.25, 8.0) == 2.0
    assert retry_delay(3, "0", 0.25, 8.0) == 0.0
    assert retry_delay(0, "-5", 0.25, 8.0) == 0.0
    assert retry_delay(0, "86400", 0.25, 8.0) == RETRY_AFTER_MAX == 60.0
    for attempt in range(12):
        bound = min(8.0, 0.25 * 2**attempt)
        # No header, or one that is not a number of seconds (an HTTP date): the backoff, never above the cap.
        for header in (None, "", "Wed, 21 Oct 2026 07:28:00 GMT"):
            assert 0.5 * bound <= retry_delay(attempt, header, 0.25, 8.0) <= bound <= 8.0


async def test_timeouts_are_retried() -> None:
    calls: list[int] = []

    async def handler(request: web.Request) -> web.Response:
        calls.append(1)
        if len(calls) == 1:
            await asyncio.sleep(2)  # past the client's timeout
        return ok({"status": "OK", "results": [ROW]})

    async with client_for(handler, timeout=0.3) as client:
        with counting() as counters:
            assert await client.grouped_daily("2026-11-13") is not None
    assert len(calls) == 2 and counters.requests == 2 and counters.retries == 1


async def test_429_retries_are_bounded() -> None:
    calls: list[int] = []

    def handler(request: web.Request) -> web.Response:
        calls.append(1)
        return answer(429, b'{"status":"ERROR","error":"slow down"}', {"Retry-After": "0"})

    async with client_for(handler, max_retries=3) as client:
        with counting() as counters, pytest.raises(PolygonUnavailable, match=r"4 attempts.*slow down"):
            await client.grouped_daily("2026-11-13")
    assert len(calls) == 4 and counters.requests == 4 and counters.retries == 3 and counters.errors == 4


async def test_ticker_range_follows_next_url_with_auth() -> None:
    seen: list[web.Request] = []
    # 2026-11-12 and 2026-11-13 00:00 New York (05:00 UTC).
    t1, t2 = 1_794_463_200_000, 1_794_549_600_000

    def handler(request: web.Request) -> web.Response:
        seen.append(request)
        if "cursor" not in request.query:
            base = f"http://{request.host}"
            return ok(
                {
                    "ticker": "AAA",
                    "status": "OK",
                    "results": [{**ROW, "t": t1}],
                    "next_url": f"{base}/v2/aggs/ticker/AAA/range/1/day/a/b?cursor=xyz",
                }
            )
        return ok({"ticker": "AAA", "status": "OK", "results": [{**ROW, "t": t2}]})

    async with client_for(handler) as client:
        rng = await client.ticker_range("AAA", "2026-11-12", "2026-11-13")
    assert [str(d) for d in rng.days] == ["2026-11-12", "2026-11-13"]
    assert rng.values.shape == (2, 6)
    assert all(r.headers["Authorization"] == f"Bearer {KEY}" for r in seen)


async def test_next_url_to_another_host_is_refused() -> None:
    def handler(request: web.Request) -> web.Response:
        return ok({"results": [], "next_url": "http://evil.test/v3/reference/splits?cursor=1"})

    async with client_for(handler) as client:
        with pytest.raises(Exception, match="another host"):
            await client.splits("2026-01-01", "2026-11-13")


async def test_details_and_splits_shapes() -> None:
    def handler(request: web.Request) -> web.Response:
        if request.path.startswith("/v3/reference/tickers/"):
            return ok(
                {
                    "status": "OK",
                    "results": {
                        "ticker": "AAA",
                        "market_cap": 1.5e9,
                        "sic_code": "7372",
                        "sic_description": "SERVICES-PREPACKAGED SOFTWARE",
                        "share_class_shares_outstanding": 1e7,
                    },
                }
            )
        return ok(
            {
                "status": "OK",
                "results": [{"execution_date": "2026-06-01", "split_from": 1, "split_to": 4, "ticker": "AAA"}],
            }
        )

    async with client_for(handler) as client:
        details = await client.ticker_details("AAA")
        splits = await client.splits("2026-01-01", "2026-11-13")
    assert details is not None and details.sic_code == 7372 and details.market_cap == 1.5e9
    assert splits.tickers == ["AAA"] and str(splits.dates[0]) == "2026-06-01"
    assert splits.split_to[0] / splits.split_from[0] == 4


async def test_token_bucket_blocks_when_empty() -> None:
    bucket = TokenBucket(rate=0.001, capacity=1.0)
    await bucket.acquire()
    # The next token arrives in 1,000 s: the second acquire cannot complete.
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(bucket.acquire(), 0.05)
    await TokenBucket(rate=0).acquire()
