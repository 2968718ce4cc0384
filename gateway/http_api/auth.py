"""Who may call: the ``X-API-Key`` check and the per-key request-rate limit."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated

from fastapi import Header
from starlette.exceptions import HTTPException

from gateway.ratelimit import RateLimiter
from gateway.settings import GatewaySettings


def match_key(given: str, keys: Sequence[bytes]) -> bytes | None:
    """The configured key equal to ``given``, or None.

    Every key is compared with :func:`hmac.compare_digest`, so the time taken does not depend on
    which key matched, or on whether one did.
    """
    candidate = given.encode()
    matched = None
    for key in keys:
        if hmac.compare_digest(candidate, key):
            matched = key
    return matched


def key_dependency(settings: GatewaySettings) -> Callable[..., Awaitable[None]]:
    """A FastAPI dependency: 401 without a configured key, 429 above the key's request rate."""
    keys = [k.encode() for k in settings.api_key_list]
    limiter = RateLimiter(settings.gateway_rate_limit, settings.gateway_rate_burst)

    async def require_key(x_api_key: Annotated[str | None, Header(alias="X-API-Key")] = None) -> None:
        matched = match_key(x_api_key or "", keys)
        if not matched:
            raise HTTPException(401, "missing or invalid X-API-Key header")
        wait = limiter.acquire(matched)
        if wait:
            raise HTTPException(
                429,
                f"request rate limit of {settings.gateway_rate_limit:g}/s per API key exceeded; retry in {wait} s",
                headers={"Retry-After": str(wait)},
            )

    return require_key
