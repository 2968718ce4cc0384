"""Cursor-paged GETs on a caller's aiohttp session, for the small per-name endpoints (chains, filings).

The bar client (polygon.py) owns the heavy traffic; option chains and statements are a few requests
for the top names, so they reuse any session the caller has. The key travels in the
``Authorization: Bearer`` header only; ``next_url`` is followed only on the configured host; 429
and 5xx answers and transport errors are retried a few times with jittered backoff; other errors
raise the fetcher's typed :class:`~services.fetcher.polygon.PolygonError` subclasses.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aiohttp
import msgspec

from services.fetcher.polygon import (
    PolygonAuthError,
    PolygonBadRequest,
    PolygonNotFound,
    PolygonUnavailable,
    _error_message,
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
    """GET ``url`` and decode its body; retries transient failures, raises a PolygonError subclass."""
    path = urlsplit(url).path
    headers = {"Authorization": f"Bearer {api_key}", "Accept": "application/json"}
    last = ""
    for attempt in range(retries + 1):
        if attempt:
            await asyncio.sleep(random.uniform(0.5, 1.0) * backoff * 2 ** (attempt - 1))
        try:
            async with session.get(url, params=params, headers=headers) as response:
                status, body, reason = response.status, await response.read(), response.reason or ""
        except (TimeoutError, aiohttp.ClientError) as exc:
            last = f"{type(exc).__name__}: {exc}"
            continue
        if status == 200:
            try:
                return decode(body)
            except msgspec.DecodeError as exc:
                last = f"malformed body: {exc}"
                continue
        message, request_id = _error_message(body, reason)
        if status in (401, 403):
            raise PolygonAuthError(message, status_code=status, path=path, request_id=request_id)
        if status == 404:
            raise PolygonNotFound(message, status_code=status, path=path, request_id=request_id)
        if status != 429 and status < 500:
            raise PolygonBadRequest(message, status_code=status, path=path, request_id=request_id)
        last = f"HTTP {status}: {message}"
    raise PolygonUnavailable(f"failed after {retries + 1} attempts: {last}", path=path)


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
