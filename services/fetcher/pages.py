"""Cursor-paged GETs on a caller's aiohttp session, for the small per-name endpoints (chains, filings).

The bar client (polygon.py) owns the heavy traffic; option chains and statements are a few requests
for the top names, so they reuse any session the caller has. The key travels in the
``Authorization: Bearer`` header only; ``next_url`` is followed only on the configured host; 429
and 5xx answers, transport errors and malformed bodies are retried a few times (tenacity) with
jittered exponential backoff; other errors raise the fetcher's typed
:class:`~services.fetcher.polygon.PolygonError` subclasses.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aiohttp
import msgspec
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt

from services.fetcher.polygon import (
    PolygonAuthError,
    PolygonBadRequest,
    PolygonNotFound,
    PolygonUnavailable,
    Retryable,
    _error_message,
    retry_delay,
)

T = TypeVar("T")
MAX_PAGES = 200  # a guard against a cursor that never ends


async def get_decoded(
    session: aiohttp.ClientSession,
    url: str,
    api_key: str,
    params: dict[str, Any] | None,
    decode: Callable[[bytes], T],
    retries: int = 3,
    backoff: float = 0.25,
) -> T:
    """GET ``url`` and decode its body; retries transient failures, raises a PolygonError subclass.

    The wait before retry n is uniform(0.5, 1) x ``backoff`` x 2^(n-1) (no cap, no Retry-After)."""
    path = urlsplit(url).path
    headers = {"Authorization": f"Bearer {api_key}", "Accept": "application/json"}

    def wait(state: RetryCallState) -> float:
        return retry_delay(state.attempt_number - 1, None, backoff, math.inf)

    retrying = AsyncRetrying(
        stop=stop_after_attempt(retries + 1), wait=wait, retry=retry_if_exception_type(Retryable), reraise=True
    )
    try:
        return await retrying(_attempt, session, url, headers, params, decode, path)
    except Retryable as exc:
        raise PolygonUnavailable(f"failed after {retries + 1} attempts: {exc}", path=path) from None


async def _attempt(
    session: aiohttp.ClientSession,
    url: str,
    headers: dict[str, str],
    params: dict[str, Any] | None,
    decode: Callable[[bytes], T],
    path: str,
) -> T:
    """One GET: the decoded body, a typed PolygonError, or Retryable for what another attempt may fix."""
    try:
        async with session.get(url, params=params, headers=headers) as response:
            status, body, reason = response.status, await response.read(), response.reason or ""
    except (TimeoutError, aiohttp.ClientError) as exc:
        raise Retryable(f"{type(exc).__name__}: {exc}") from None
    if status == 200:
        try:
            return decode(body)
        except msgspec.DecodeError as exc:
            raise Retryable(f"malformed body: {exc}") from None
    message, request_id = _error_message(body, reason)
    if status in (401, 403):
        raise PolygonAuthError(message, status_code=status, path=path, request_id=request_id)
    if status == 404:
        raise PolygonNotFound(message, status_code=status, path=path, request_id=request_id)
    if status != 429 and status < 500:
        raise PolygonBadRequest(message, status_code=status, path=path, request_id=request_id)
    raise Retryable(f"HTTP {status}: {message}")


async def get_pages(
    session: aiohttp.ClientSession,
    base_url: str,
    api_key: str,
    path: str,
    params: dict[str, Any],
    decode: Callable[[bytes], T],
    next_url: Callable[[T], str | None],
) -> list[T]:
    """Every page of a cursor-paginated endpoint, following ``next_url`` on the same host."""
    base = base_url.rstrip("/")
    origin = urlsplit(base)[:2]
    pages = [await get_decoded(session, base + path, api_key, params, decode)]
    while (url := next_url(pages[-1])) and len(pages) < MAX_PAGES:
        parts = urlsplit(url)
        if parts.scheme and parts[:2] != origin:
            raise PolygonBadRequest(f"next_url points to another host ({parts.netloc})", path=parts.path)
        pages.append(await get_decoded(session, url if parts.scheme else base + url, api_key, None, decode))
    return pages
