"""Kept answers of the HTTP API and the ASGI front that serves them, unit by unit: keys, ETags, the
Accept-Encoding and If-None-Match rules, the kept bytes and their aliases, the body cap, and which
requests the front answers itself (driven with plain ASGI messages, no FastAPI in between)."""

from __future__ import annotations

import gzip
import hashlib
from typing import Any

import orjson
import pytest
from starlette.types import Message, Receive, Scope, Send

from gateway.http_api.answers import (
    JSON,
    MAX_ALIAS_BYTES,
    MIN_GZIP_BYTES,
    SYMBOL_SHAPE,
    RenderedAnswers,
    accepts_gzip,
    etag_of,
    raw_key,
    request_key,
)
from gateway.http_api.auth import Access
from gateway.http_api.fastpath import GET_SHAPE, POST_SHAPE, RAW_KEY, FastPath, _headers, _json_body, get_alias
from gateway.settings import GatewaySettings
from technic.v1 import scan_pb2

KEY = "answers-key"
SESSION = "2026-11-13"
BODY = b'{"results": [1, 2, 3]}'


class Clock:
    """The generation and the trusted latest session the kept answers are checked against."""

    def __init__(self) -> None:
        self.generation = 0
        self.session = SESSION

    def answers(self, max_bytes: int = 1 << 20) -> RenderedAnswers:
        return RenderedAnswers(lambda: self.generation, lambda: self.session, max_bytes)


@pytest.fixture
def clock() -> Clock:
    return Clock()


def kept(answers: RenderedAnswers, key: bytes, body: bytes = BODY, latest_as_of: str = SESSION) -> str:
    etag = etag_of(body)
    answers.put(key, etag, body, answers.token(), latest_as_of)
    return etag


# ---- keys and ETags ---------------------------------------------------------------------------------


def test_keys_are_the_shape_a_newline_and_the_request() -> None:
    options = scan_pb2.ScanOptions(limit=3, sectors=["Energy"], trade_style=scan_pb2.TRADE_STYLE_DAY)
    assert request_key(options, b"post") == b"post\n" + options.SerializeToString(deterministic=True)
    assert request_key(options, b"post") != request_key(options, b"get")
    assert raw_key(b"get", b"limit=3") == b"get\nlimit=3"
    assert (POST_SHAPE, GET_SHAPE) == (b"post", b"get")


def test_the_etag_is_a_quoted_digest_of_the_body() -> None:
    assert etag_of(BODY) == '"' + hashlib.blake2b(BODY, digest_size=16).hexdigest() + '"'
    assert len(etag_of(b"")) == 34 and etag_of(BODY) != etag_of(BODY + b" ")


@pytest.mark.parametrize(
    ("header", "allowed"),
    [
        ("gzip", True),
        ("GZIP", True),
        ("deflate, gzip", True),
        (" br ,  gzip ;q=0.5", True),
        ("gzip;q=1.0", True),
        ("gzip; Q=0.001", True),
        ("gzip;level=1", True),
        ("*", True),
        ("*;q=0.1", True),
        ("gzip;q=0", False),
        ("gzip;q=0.0, *", False),
        ("gzip;q=abc", False),
        ("deflate", False),
        ("identity", False),
        ("gzipped", False),
        ("", False),
    ],
)
def test_accept_encoding(header: str, allowed: bool) -> None:
    assert accepts_gzip(header) is allowed


# ---- kept bytes -------------------------------------------------------------------------------------


def test_a_kept_answer_reads_back_as_etag_session_and_a_view_of_the_body(clock: Clock) -> None:
    answers = clock.answers()
    etag = kept(answers, b"k", b"line one\nline two")
    found = answers.get(b"k")
    assert found is not None
    assert found[:2] == (etag, SESSION)
    assert isinstance(found[2], memoryview) and bytes(found[2]) == b"line one\nline two"
    assert answers.get(b"other") is None


def test_an_answer_for_a_pinned_session_reads_back_without_one(clock: Clock) -> None:
    answers = clock.answers()
    etag = kept(answers, b"pinned", b"{}", latest_as_of="")
    found = answers.get(b"pinned")
    assert found is not None and found[0] == etag and found[1] == "" and bytes(found[2]) == b"{}"
    clock.session = "2026-11-16"  # a pinned answer does not follow the latest session
    assert answers.get(b"pinned") is not None


def test_a_kept_answer_goes_with_its_generation_and_its_session(clock: Clock) -> None:
    answers = clock.answers()
    kept(answers, b"k")
    clock.generation += 1
    assert answers.get(b"k") is None
    kept(answers, b"k")
    clock.session = "2026-11-16"
    assert answers.get(b"k") is None
    clock.session = SESSION
    assert answers.get(b"k") is None  # dropped, not only hidden, once another session was seen


def test_an_answer_rendered_across_a_generation_change_is_not_kept(clock: Clock) -> None:
    answers = clock.answers()
    token = answers.token()
    clock.generation += 1
    answers.put(b"k", etag_of(BODY), BODY, token, SESSION)
    assert answers.get(b"k") is None
    answers.put(b"k", etag_of(BODY), BODY, answers.token(), SESSION)
    assert answers.get(b"k") is not None


def test_aliases_name_kept_answers_up_to_the_longest_request(clock: Clock) -> None:
    answers = clock.answers()
    etag = kept(answers, b"k")
    longest, too_long = b"x" * MAX_ALIAS_BYTES, b"y" * (MAX_ALIAS_BYTES + 1)
    for raw in (b"raw", longest, too_long, None):
        answers.alias(raw, b"k")
    assert set(answers.aliases) == {b"raw", longest}
    found = answers.lookup(b"raw")
    assert found is not None and found[0] == b"k" and found[1][0] == etag and bytes(found[1][2]) == BODY
    assert answers.lookup(too_long) is None and answers.lookup(b"never seen") is None
    clock.generation += 1
    assert answers.lookup(b"raw") is None  # the alias stays, its answer is gone


# ---- rendering: 304, gzip, headers ------------------------------------------------------------------


def headers_of(rendered: list[tuple[bytes, bytes]]) -> dict[bytes, bytes]:
    return dict(rendered)


@pytest.mark.parametrize(
    "if_none_match", ["{etag}", "W/{etag}", '"other", {etag}', ' "other" ,W/{etag} ', "*", '"a", *']
)
def test_the_client_that_has_the_answer_gets_304(clock: Clock, if_none_match: str) -> None:
    answers = clock.answers()
    etag = etag_of(BODY)
    status, headers, body = answers.render(if_none_match.format(etag=etag), "gzip", etag, BODY)
    assert (status, body) == (304, b"")
    assert headers == [(b"etag", etag.encode()), (b"vary", b"Accept-Encoding")]
    assert answers.compressions == 0


@pytest.mark.parametrize("if_none_match", ["", '"other"', "W/\"other\", 'x'"])
def test_another_etag_gets_the_body(clock: Clock, if_none_match: str) -> None:
    answers = clock.answers()
    etag = etag_of(BODY)
    status, headers, body = answers.render(if_none_match, "", etag, BODY)
    assert (status, body) == (200, BODY)
    assert headers == [
        (b"etag", etag.encode()),
        (b"vary", b"Accept-Encoding"),
        (b"content-type", JSON),
        (b"content-length", str(len(BODY)).encode()),
    ]


def test_gzip_from_the_smallest_body_worth_it_made_once_per_kept_answer(clock: Clock) -> None:
    answers = clock.answers()
    large = orjson.dumps([{"ticker": f"T{i}", "score": i} for i in range(200)])
    assert len(large) > MIN_GZIP_BYTES
    etag = kept(answers, b"k", large)
    for _ in range(2):
        status, headers, body = answers.render("", "gzip, br", etag, large, b"k", SESSION)
        assert status == 200 and body == gzip.compress(large, compresslevel=6, mtime=0)
        assert headers_of(headers)[b"content-encoding"] == b"gzip"
        assert headers_of(headers)[b"content-length"] == str(len(body)).encode()
        assert gzip.decompress(body) == large
    assert answers.compressions == 1
    # Not kept (no key): compressed on every request.
    answers.render("", "gzip", etag, large)
    answers.render("", "gzip", etag, large)
    assert answers.compressions == 3
    smallest = b" " * MIN_GZIP_BYTES
    assert headers_of(answers.render("", "gzip", etag_of(smallest), smallest)[1])[b"content-encoding"] == b"gzip"
    smaller = smallest[1:]
    status, headers, body = answers.render("", "gzip", etag_of(smaller), smaller)
    assert b"content-encoding" not in headers_of(headers) and body == smaller
    status, headers, body = answers.render("", "identity", etag, large, b"k", SESSION)
    assert b"content-encoding" not in headers_of(headers) and body == large


def test_the_kept_gzip_form_follows_the_answer(clock: Clock) -> None:
    answers = clock.answers()
    old = orjson.dumps(list(range(600)))
    kept(answers, b"k", old)
    answers.render("", "gzip", etag_of(old), old, b"k", SESSION)
    clock.session = "2026-11-16"
    new = orjson.dumps(list(range(700)))
    kept(answers, b"k", new, latest_as_of="2026-11-16")
    status, _, body = answers.render("", "gzip", etag_of(new), new, b"k", "2026-11-16")
    assert status == 200 and gzip.decompress(body) == new and answers.compressions == 2
    answers.render("", "gzip", etag_of(new), new, b"k", "2026-11-16")
    assert answers.compressions == 2


def test_respond_is_the_rendered_answer_as_a_response(clock: Clock) -> None:
    answers = clock.answers()
    etag = etag_of(BODY)

    class Request:
        headers = {"if-none-match": '"x"', "accept-encoding": "gzip"}

    response = answers.respond(Request(), etag, BODY)  # type: ignore[arg-type]
    assert response.status_code == 200 and response.body == BODY
    assert response.raw_headers == answers.render('"x"', "gzip", etag, BODY)[1]
    Request.headers = {"if-none-match": etag}
    assert answers.respond(Request(), etag, BODY).status_code == 304  # type: ignore[arg-type]


def test_a_pinned_answer_keeps_its_gzip_form(clock: Clock) -> None:
    answers = clock.answers()
    large = orjson.dumps(list(range(600)))

    class Request:
        headers = {"accept-encoding": "gzip"}

    for _ in range(2):  # no latest session given: the answer is for a pinned one
        _, headers, body = answers.render("", "gzip", etag_of(large), large, b"pinned")
        assert headers_of(headers)[b"content-encoding"] == b"gzip" and gzip.decompress(body) == large
        response = answers.respond(Request(), etag_of(large), large, b"pinned")  # type: ignore[arg-type]
        assert response.headers["content-encoding"] == "gzip" and gzip.decompress(response.body) == large
    assert answers.compressions == 1
    clock.session = "2026-11-16"
    answers.render("", "gzip", etag_of(large), large, b"pinned")
    assert answers.compressions == 1
    for _ in range(2):  # kept by respond itself
        answers.respond(Request(), etag_of(large), large, b"pinned by respond")  # type: ignore[arg-type]
    assert answers.compressions == 2


def test_answers_larger_than_the_cache_are_not_kept(clock: Clock) -> None:
    large = orjson.dumps(list(range(600)))
    answers = clock.answers(max_bytes=len(large))
    kept(answers, b"k", large)  # kept with its etag and session: more than the cache holds
    assert answers.get(b"k") is None
    kept(answers, b"small", b"{}")
    assert answers.get(b"small") is not None
    answers = clock.answers(max_bytes=64)
    answers.render("", "gzip", etag_of(large), large, b"k", SESSION)
    answers.render("", "gzip", etag_of(large), large, b"k", SESSION)
    assert answers.compressions == 2  # its gzip form is larger than 64 bytes too


# ---- the front --------------------------------------------------------------------------------------


class Inner:
    """The application behind the front: records what reached it and answers 200 with the body."""

    def __init__(self) -> None:
        self.calls: list[tuple[Scope, bytes]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = b""
        if scope["type"] == "http" and scope["method"] not in ("GET", "HEAD"):
            body = (await receive())["body"]
        self.calls.append((scope, body))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"app:" + body})


def front_of(clock: Clock, max_bytes: int = 64, **settings: Any) -> tuple[FastPath, Inner, RenderedAnswers]:
    inner, answers = Inner(), clock.answers()
    access = Access(GatewaySettings(api_keys=KEY, **settings))
    return FastPath(inner, answers, access, max_bytes), inner, answers


def scope_of(
    method: str, path: str, headers: dict[str, str] | None = None, query: bytes = b"", client: Any = ("10.0.0.1", 1)
) -> Scope:
    sent = {"x-api-key": KEY, **(headers or {})}
    return {
        "type": "http",
        "method": method,
        "path": path,
        "query_string": query,
        "headers": [(k.lower().encode(), v.encode()) for k, v in sent.items() if v is not None],
        "client": client,
    }


async def call(
    front: FastPath, scope: Scope, chunks: list[bytes] | None = None, disconnect: bool = False
) -> list[Message]:
    parts = [b""] if chunks is None else chunks
    messages: list[Message] = [
        {"type": "http.request", "body": c, "more_body": i < len(parts) - 1} for i, c in enumerate(parts)
    ]
    if disconnect:
        messages = [{"type": "http.disconnect"}]
    sent: list[Message] = []

    async def receive() -> Message:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    await front(scope, receive, send)
    return sent


def answered(sent: list[Message]) -> tuple[int, dict[bytes, bytes], bytes]:
    start, body = sent[0], sent[1]
    return start["status"], dict(start["headers"]), body["body"]


JSON_TYPE = {"content-type": "application/json; charset=utf-8"}


async def test_a_post_seen_before_is_answered_from_its_alias(clock: Clock) -> None:
    front, inner, answers = front_of(clock)
    first = await call(front, scope_of("POST", "/v1/scan", JSON_TYPE), [b'{"limit":', b" 3}"])
    assert answered(first)[2] == b'app:{"limit": 3}'
    scope = inner.calls[0][0]
    assert scope[RAW_KEY] == raw_key(POST_SHAPE, b'{"limit": 3}')
    etag = kept(answers, b"normalized")
    answers.alias(scope[RAW_KEY], b"normalized")
    again = await call(front, scope_of("POST", "/v1/scan", JSON_TYPE), [b'{"limit": 3}'])
    status, headers, body = answered(again)
    assert (status, body, headers[b"etag"]) == (200, BODY, etag.encode()) and len(inner.calls) == 1
    assert answers.front_hits == 1
    cached = await call(front, scope_of("POST", "/v1/scan", {**JSON_TYPE, "if-none-match": etag}), [b'{"limit": 3}'])
    assert answered(cached)[0] == 304 and answers.front_hits == 2 and len(inner.calls) == 1


async def test_a_get_seen_before_is_answered_from_its_alias(clock: Clock) -> None:
    front, inner, answers = front_of(clock)
    await call(front, scope_of("GET", "/v1/scan", query=b"limit=3"))
    assert inner.calls[0][0][RAW_KEY] == raw_key(GET_SHAPE, b"limit=3")
    large = orjson.dumps(list(range(600)))
    kept(answers, b"normalized", large)
    answers.alias(raw_key(GET_SHAPE, b"limit=3"), b"normalized")
    status, headers, body = answered(
        await call(front, scope_of("GET", "/v1/scan", {"accept-encoding": "gzip"}, query=b"limit=3"))
    )
    assert status == 200 and headers[b"content-encoding"] == b"gzip" and gzip.decompress(body) == large
    assert len(inner.calls) == 1 and answers.front_hits == 1
    # A gone answer goes on to the application, which keeps the alias key.
    clock.generation += 1
    await call(front, scope_of("GET", "/v1/scan", query=b"limit=3"))
    assert len(inner.calls) == 2 and inner.calls[1][0][RAW_KEY] == raw_key(GET_SHAPE, b"limit=3")


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("POST", "/v1/scans", JSON_TYPE),
        ("PUT", "/v1/scan", JSON_TYPE),
        ("POST", "/v1/scan", {"content-type": "text/plain"}),
        ("POST", "/v1/scan", {"content-type": "application/jsonx"}),
        ("POST", "/v1/scan", {}),
    ],
)
async def test_other_requests_with_a_body_go_to_the_application(
    clock: Clock, method: str, path: str, headers: dict[str, str]
) -> None:
    front, inner, answers = front_of(clock)
    kept(answers, b"normalized")
    answers.alias(raw_key(POST_SHAPE, b"{}"), b"normalized")
    status, _, body = answered(await call(front, scope_of(method, path, headers), [b"{}"]))
    assert (status, body) == (200, b"app:{}") and RAW_KEY not in inner.calls[0][0]
    assert answers.front_hits == 0


@pytest.mark.parametrize(("method", "path"), [("GET", "/v1/scans"), ("HEAD", "/v1/scan"), ("DELETE", "/v1/scan")])
async def test_other_requests_without_a_body_go_to_the_application(clock: Clock, method: str, path: str) -> None:
    front, inner, answers = front_of(clock)
    kept(answers, b"normalized")
    answers.alias(raw_key(GET_SHAPE, b""), b"normalized")
    await call(front, scope_of(method, path))
    assert len(inner.calls) == 1 and RAW_KEY not in inner.calls[0][0] and answers.front_hits == 0


async def test_other_scopes_pass_through(clock: Clock) -> None:
    front, inner, _ = front_of(clock)
    await call(front, {"type": "lifespan"})
    assert inner.calls == [({"type": "lifespan"}, b"")]


async def test_the_body_cap_declared_or_streamed(clock: Clock) -> None:
    front, inner, _ = front_of(clock, max_bytes=8)
    for declared in ("9", "100"):
        status, _, body = answered(
            await call(front, scope_of("POST", "/v1/scan", {**JSON_TYPE, "content-length": declared}), [b"{}"])
        )
        assert status == 413 and orjson.loads(body) == {
            "error": "request_too_large",
            "detail": "request bodies are limited to 8 bytes",
        }
    assert answered(await call(front, scope_of("POST", "/v1/scan", JSON_TYPE), [b"1234", b"56789"]))[0] == 413
    assert inner.calls == []
    exact = await call(front, scope_of("POST", "/v1/x", {"content-length": "8"}), [b"1234", b"5678"])
    assert answered(exact)[2] == b"app:12345678"
    assert answered(await call(front, scope_of("POST", "/v1/x", {"content-length": "x9"}), [b"12"]))[2] == b"app:12"


async def test_a_client_gone_before_its_body_reaches_nothing(clock: Clock) -> None:
    front, inner, _ = front_of(clock)
    assert await call(front, scope_of("POST", "/v1/scan", JSON_TYPE), disconnect=True) == []
    assert inner.calls == []


async def test_the_body_is_replayed_once_then_the_stream_goes_on(clock: Clock) -> None:
    seen: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(await receive())
        seen.append(await receive())

    front = FastPath(app, clock.answers(), Access(GatewaySettings(api_keys=KEY)), 64)
    await call(front, scope_of("POST", "/v1/x"), [b"ab", b"cd"])
    assert seen == [
        {"type": "http.request", "body": b"abcd", "more_body": False},
        {"type": "http.disconnect"},
    ]


async def test_the_front_admits_only_whom_the_routes_admit(clock: Clock) -> None:
    front, inner, answers = front_of(clock)
    kept(answers, b"normalized")
    answers.alias(raw_key(GET_SHAPE, b""), b"normalized")
    await call(front, scope_of("GET", "/v1/scan", {"x-api-key": "wrong"}))
    await call(front, scope_of("GET", "/v1/scan", {"x-api-key": None}))  # type: ignore[dict-item]
    assert len(inner.calls) == 2 and answers.front_hits == 0
    assert answered(await call(front, scope_of("GET", "/v1/scan")))[2] == BODY


async def test_anonymous_callers_are_limited_by_their_trusted_address(clock: Clock) -> None:
    front, inner, answers = front_of(
        clock,
        http_anonymous=True,
        http_trusted_proxy_header="X-Forwarded-For",
        gateway_anonymous_rate_limit=0.001,
        gateway_anonymous_rate_burst=1,
    )
    kept(answers, b"normalized")
    answers.alias(raw_key(GET_SHAPE, b""), b"normalized")
    anonymous = {"x-api-key": None}
    for address in ("198.51.100.1", "198.51.100.2"):
        scope = scope_of("GET", "/v1/scan", {**anonymous, "x-forwarded-for": address})  # type: ignore[dict-item]
        assert answered(await call(front, scope))[2] == BODY
    assert answers.front_hits == 2
    again = scope_of("GET", "/v1/scan", {**anonymous, "x-forwarded-for": "198.51.100.1"})  # type: ignore[dict-item]
    await call(front, again)
    assert answers.front_hits == 2 and len(inner.calls) == 1  # over its limit: the routes answer 429
    # The peer's own address when no proxy header is trusted; no peer at all is one address too.
    front, inner, answers = front_of(
        clock, http_anonymous=True, gateway_anonymous_rate_limit=0.001, gateway_anonymous_rate_burst=1
    )
    kept(answers, b"normalized")
    answers.alias(raw_key(GET_SHAPE, b""), b"normalized")
    forwarded = {**anonymous, "x-forwarded-for": "198.51.100.9"}
    for client in (("10.0.0.1", 1), ("10.0.0.2", 1), ("10.0.0.1", 2), None):
        await call(front, scope_of("GET", "/v1/scan", forwarded, client=client))  # type: ignore[arg-type]
    assert answers.front_hits == 3 and len(inner.calls) == 1


def test_headers_first_of_repeated_and_json_content_types() -> None:
    scope = {"headers": [(b"accept", b"a"), (b"accept", b"b"), (b"x", b"1")]}
    assert _headers(scope) == {b"accept": b"a", b"x": b"1"}
    for value, is_json in (
        (b"application/json", True),
        (b"Application/JSON ; charset=utf-8", True),
        (b" application/json", True),
        (b"application/json; charset=utf-8; v=1", True),
        (b"application/json-patch", False),
        (b"text/json", False),
        (None, False),
    ):
        assert _json_body(value) is is_json


def test_the_gets_the_front_may_answer() -> None:
    assert get_alias("/v1/scan", b"limit=3") == b"get\nlimit=3"
    assert get_alias("/v1/symbol/AAPL", b"days=30") == b"symbol\n/v1/symbol/AAPL?days=30"
    assert get_alias("/v1/symbol/AAPL", b"") == b"symbol\n/v1/symbol/AAPL?"
    for path in ("/v1/symbol", "/v1/scans", "/v1/universe_stats", "/v1/scan/", "/v1/symbols/AAPL"):
        assert get_alias(path, b"") is None
    assert SYMBOL_SHAPE == b"symbol"


async def test_a_symbol_page_seen_before_is_answered_from_its_alias(clock: Clock) -> None:
    front, inner, answers = front_of(clock)
    await call(front, scope_of("GET", "/v1/symbol/AAPL", query=b"days=30"))
    raw = inner.calls[0][0][RAW_KEY]
    assert raw == get_alias("/v1/symbol/AAPL", b"days=30")
    kept(answers, b"page")
    answers.alias(raw, b"page")
    assert answered(await call(front, scope_of("GET", "/v1/symbol/AAPL", query=b"days=30")))[2] == BODY
    await call(front, scope_of("GET", "/v1/symbol/AAPL", query=b"days=31"))
    assert answers.front_hits == 1 and len(inner.calls) == 2


async def test_the_trusted_proxy_header_is_named_in_any_case_and_spacing(clock: Clock) -> None:
    front, inner, answers = front_of(
        clock,
        http_anonymous=True,
        http_trusted_proxy_header=" X-Real-IP ",
        gateway_anonymous_rate_limit=0.001,
        gateway_anonymous_rate_burst=1,
    )
    assert front.trusted == b"x-real-ip"
    kept(answers, b"normalized")
    answers.alias(raw_key(GET_SHAPE, b""), b"normalized")
    for address in ("198.51.100.1", "198.51.100.2"):
        await call(front, scope_of("GET", "/v1/scan", {"x-api-key": None, "x-real-ip": address}))  # type: ignore[dict-item]
    assert answers.front_hits == 2 and inner.calls == []
    assert front_of(clock)[0].trusted is None


async def test_the_front_keeps_one_gzip_form_per_answer_and_session(clock: Clock) -> None:
    front, inner, answers = front_of(clock)
    old, new = orjson.dumps(list(range(600))), orjson.dumps(list(range(700)))
    kept(answers, b"normalized", old)
    answers.alias(raw_key(GET_SHAPE, b""), b"normalized")
    zipped = {"accept-encoding": "gzip"}
    for _ in range(2):
        assert gzip.decompress(answered(await call(front, scope_of("GET", "/v1/scan", zipped)))[2]) == old
    assert answers.compressions == 1
    clock.session = "2026-11-16"
    await call(front, scope_of("GET", "/v1/scan", zipped))  # the old answer is gone: the routes answer
    assert len(inner.calls) == 1
    kept(answers, b"normalized", new, latest_as_of="2026-11-16")
    assert gzip.decompress(answered(await call(front, scope_of("GET", "/v1/scan", zipped)))[2]) == new
    assert answers.compressions == 2 and answers.front_hits == 3


async def test_a_request_message_without_a_body_is_an_empty_body(clock: Clock) -> None:
    front, inner, _ = front_of(clock)
    received: list[Message] = [{"type": "http.request", "more_body": False}]

    async def receive() -> Message:
        return received.pop(0)

    async def send(message: Message) -> None:
        return None

    await front(scope_of("POST", "/v1/x"), receive, send)
    assert inner.calls[0][1] == b""
