"""Rendered answers of repeated scans and symbol pages: JSON bytes and their gzip form, with an ETag.

An identical scan request answered from the orchestrator's cache reads the same until something
could change it, so its rendered JSON is kept, keyed by the normalized request (which, with the
as-of session, defines the scan's fingerprint) and the route's shape; a symbol page is kept by
ticker and days (:func:`symbol_answer_key`) for the session it shows. Entries live in
:class:`~gateway.caches.PageCache`, so they are dropped exactly when the gRPC API's cached answers
are: the orchestrator's generation moves, the ranker's copy expires, or a newer session arrives
for a request without ``as_of``. The gzip form is made once per kept answer, on the first request
that accepts it; bodies under :data:`MIN_GZIP_BYTES` are sent as they are.

The raw request (route shape and body bytes, or query string) of an answer that was kept is an
alias of its normalized key, so the next identical request is looked up before anything parses it
(see :mod:`gateway.http_api.fastpath`). Equal bytes parse into equal options, so an alias names the
same answer the parsed request would; the answer itself is still checked for being current.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Callable

from cachetools import LRUCache
from fastapi import Request
from fastapi.responses import Response

from gateway.caches import PageCache, symbol_key
from technic.v1 import scan_pb2

MIN_GZIP_BYTES = 1024
GZIP_LEVEL = 6
_SEP = b"\n"
# Raw requests remembered as aliases, and the longest one kept (the app's bodies are a few hundred bytes).
ALIASES = 4096
MAX_ALIAS_BYTES = 2048
JSON = b"application/json"
# The route shape of symbol pages (``GET /v1/symbol/{ticker}``); the scan routes' shapes are the front's.
SYMBOL_SHAPE = b"symbol"
Body = bytes | memoryview
Rendered = tuple[int, list[tuple[bytes, bytes]], Body]


def request_key(normalized: scan_pb2.ScanOptions, shape: bytes) -> bytes:
    """The cache key of a normalized request answered in ``shape`` (one per route's body)."""
    return shape + _SEP + normalized.SerializeToString(deterministic=True)


def symbol_answer_key(symbol: str, days: int) -> bytes:
    """The cache key of a symbol page's body: its shape, the ticker and the sessions shown."""
    return SYMBOL_SHAPE + _SEP + symbol_key(symbol, days)


def raw_key(shape: bytes, raw: bytes) -> bytes:
    """The alias key of a request as received: its route shape and body (or query string)."""
    return shape + _SEP + raw


def etag_of(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


def accepts_gzip(header: str) -> bool:
    """Whether an ``Accept-Encoding`` value allows gzip (``gzip`` or ``*`` with a non-zero q)."""
    for part in header.split(","):
        name, _, params = part.strip().partition(";")
        if name.strip().lower() in ("gzip", "*"):
            q = params.strip().lower()
            if q.startswith("q="):
                try:
                    return float(q[2:]) > 0
                except ValueError:
                    return False
            return True
    return False


def _matches(if_none_match: str, etag: str) -> bool:
    tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return "*" in tags or etag in tags


class RenderedAnswers:
    """Plain and gzip bodies of cached scan answers (two page caches under one policy), and the raw
    requests that name them."""

    def __init__(self, generation: Callable[[], int], fresh_as_of: Callable[[], str], max_bytes: int) -> None:
        self.plain = PageCache(generation, fresh_as_of, max_bytes)
        self.gzipped = PageCache(generation, fresh_as_of, max_bytes)
        self.aliases: LRUCache[bytes, bytes] = LRUCache(ALIASES)
        self.compressions = 0
        # Answers sent by the front from an alias, without the application.
        self.front_hits = 0

    def token(self) -> int:
        return self.plain.token()

    def get(self, key: bytes) -> tuple[str, str, Body] | None:
        """(etag, latest as-of, body) of a kept answer, or None. The body is a view of the kept bytes,
        not a copy."""
        data = self.plain.get(key)
        if data is None:
            return None
        first = data.index(_SEP)
        second = data.index(_SEP, first + 1)
        body = memoryview(data)[second + 1 :]
        return data[:first].decode(), data[first + 1 : second].decode(), body

    def put(self, key: bytes, etag: str, body: bytes, token: int, latest_as_of: str) -> None:
        packed = etag.encode() + _SEP + latest_as_of.encode() + _SEP + body
        self.plain.put(key, packed, token, latest_as_of=latest_as_of)

    def alias(self, raw: bytes | None, key: bytes) -> None:
        """Remember that the raw request ``raw`` normalizes to ``key`` (short requests only)."""
        if raw is not None and len(raw) <= MAX_ALIAS_BYTES:
            self.aliases[raw] = key

    def lookup(self, raw: bytes) -> tuple[bytes, tuple[str, str, Body]] | None:
        """(normalized key, kept answer) of a raw request seen before, or None."""
        key = self.aliases.get(raw)
        if key is None:
            return None
        hit = self.get(key)
        return None if hit is None else (key, hit)

    def render(
        self,
        if_none_match: str,
        accept_encoding: str,
        etag: str,
        body: Body,
        key: bytes | None = None,
        latest_as_of: str = "",
    ) -> Rendered:
        """(status, headers, body) of ``body`` as JSON: 304 when the client has it, gzip when allowed
        and worth it. Header names are lower-case bytes, as ASGI sends them."""
        headers = [(b"etag", etag.encode()), (b"vary", b"Accept-Encoding")]
        if if_none_match and _matches(if_none_match, etag):
            return 304, headers, b""
        if len(body) >= MIN_GZIP_BYTES and accept_encoding and accepts_gzip(accept_encoding):
            compressed = self.gzipped.get(key) if key is not None else None
            if compressed is None:
                token = self.gzipped.token()
                compressed = gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0)
                self.compressions += 1
                if key is not None:
                    self.gzipped.put(key, compressed, token, latest_as_of=latest_as_of)
            headers.append((b"content-encoding", b"gzip"))
            body = compressed
        headers += [(b"content-type", JSON), (b"content-length", str(len(body)).encode())]
        return 200, headers, body

    def respond(
        self, request: Request, etag: str, body: Body, key: bytes | None = None, latest_as_of: str = ""
    ) -> Response:
        """:meth:`render` as a Starlette response."""
        status, headers, content = self.render(
            request.headers.get("if-none-match", ""),
            request.headers.get("accept-encoding", ""),
            etag,
            body,
            key,
            latest_as_of,
        )
        response = Response(content, status_code=status)
        response.raw_headers = headers
        return response
