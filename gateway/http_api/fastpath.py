"""The ASGI front of the HTTP API: the request body cap, and repeated reads answered before FastAPI.

Most of the app's calls ask for a scan or a symbol page that is already rendered (see
:mod:`gateway.http_api.answers`). Such a request is recognised by its raw bytes: ``POST /v1/scan``
with a JSON body, ``GET /v1/scan`` with a query string, or ``GET /v1/symbol/{ticker}`` with its path
and query string, seen before and remembered as an alias of a kept answer. It then costs the access
check (the same key match and rate-limit bucket as the routes) and a dictionary lookup; no body
model, no dependency injection, no routing. Anything else
(a new request, a refused caller, a gone answer) goes on to the application unchanged, which
answers it (errors included) exactly as before and records the alias when it keeps the answer.

Every request with a body passes the cap here: a JSON 413 above ``max_bytes``, declared or streamed.
The body (small by construction) is read once and replayed to the application.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.http_api.answers import JSON, SYMBOL_SHAPE, RenderedAnswers, raw_key
from gateway.http_api.auth import Access
from gateway.http_api.models import error_response

SCAN_PATH = "/v1/scan"
SYMBOL_PREFIX = "/v1/symbol/"
POST_SHAPE = b"post"
GET_SHAPE = b"get"
# Where the application finds the alias key of a request the front could not answer.
RAW_KEY = "technic.raw_key"
_NO_BODY = frozenset(("GET", "HEAD", "OPTIONS", "DELETE"))


def _headers(scope: Scope) -> dict[bytes, bytes]:
    """The request's headers by lower-case name; the first of repeated ones, as Starlette reads them."""
    out: dict[bytes, bytes] = {}
    for name, value in scope["headers"]:
        out.setdefault(name, value)
    return out


def get_alias(path: str, query: bytes) -> bytes | None:
    """The alias key of a ``GET`` the front may answer (a scan's query, a symbol page's path and
    query), or None for any other path."""
    if path == SCAN_PATH:
        return raw_key(GET_SHAPE, query)
    if path.startswith(SYMBOL_PREFIX):
        return raw_key(SYMBOL_SHAPE, path.encode() + b"?" + query)
    return None


def _json_body(content_type: bytes | None) -> bool:
    """Whether the routes parse a body with this Content-Type as ``application/json`` (a body without
    one is not JSON to them)."""
    if content_type is None:
        return False
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == JSON


class FastPath:
    """Body cap plus answers of repeated scans and symbol pages from kept bytes (module docstring)."""

    def __init__(self, app: ASGIApp, answers: RenderedAnswers, access: Access, max_bytes: int) -> None:
        self.app = app
        self.answers = answers
        self.access = access
        self.max_bytes = max_bytes
        trusted = access.settings.http_trusted_proxy_header.strip().lower()
        self.trusted = trusted.encode() if trusted else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        method = scope["method"]
        if method in _NO_BODY:
            key = get_alias(scope["path"], scope["query_string"]) if method == "GET" else None
            if key is not None:
                if await self._serve(scope, key, send):
                    return None
                scope[RAW_KEY] = key
            return await self.app(scope, receive, send)
        headers = _headers(scope)
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            return await self._too_large(scope, receive, send)
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                return await self._too_large(scope, receive, send)
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        if method == "POST" and scope["path"] == SCAN_PATH and _json_body(headers.get(b"content-type")):
            key = raw_key(POST_SHAPE, body)
            if await self._serve(scope, key, send, headers):
                return None
            scope[RAW_KEY] = key
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(413, "request_too_large", f"request bodies are limited to {self.max_bytes} bytes")
        await response(scope, receive, send)

    async def _serve(self, scope: Scope, raw: bytes, send: Send, headers: dict[bytes, bytes] | None = None) -> bool:
        """Answer ``raw`` from a kept answer when there is one and the caller is admitted; else False."""
        found = self.answers.lookup(raw)
        if found is None:
            return False
        if headers is None:
            headers = _headers(scope)
        key_header = headers.get(b"x-api-key")
        try:
            forwarded = headers.get(self.trusted) if self.trusted is not None and key_header is None else None
            self.access.admit(
                None if key_header is None else key_header.decode("latin-1"),
                scope["client"][0] if scope.get("client") else None,
                None if forwarded is None else forwarded.decode("latin-1"),
            )
        except HTTPException:
            return False  # the application refuses it, with the routes' own error answer
        key, (etag, latest_as_of, body) = found
        status, out, content = self.answers.render(
            headers.get(b"if-none-match", b"").decode("latin-1"),
            headers.get(b"accept-encoding", b"").decode("latin-1"),
            etag,
            body,
            key,
            latest_as_of,
        )
        await send({"type": "http.response.start", "status": status, "headers": out})
        await send({"type": "http.response.body", "body": content})
        self.answers.front_hits += 1
        return True
