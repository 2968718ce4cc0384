"""Who may call, and how often: the ``X-API-Key`` check and the access policy.

- A configured key (compared with :func:`hmac.compare_digest` against every key) identifies a keyed
  client: every route, a bucket per key (``TECHNIC_GATEWAY_RATE_LIMIT``/``_BURST``).
- A key that is sent but unknown is refused (401), never served as anonymous.
- No key: served only when ``TECHNIC_HTTP_ANONYMOUS`` is on, and only on the app's read routes,
  with a tighter bucket per client address (``TECHNIC_GATEWAY_ANONYMOUS_RATE_LIMIT``/``_BURST``).
  The address is the connection's peer, or, when ``TECHNIC_HTTP_TRUSTED_PROXY_HEADER`` names a
  header, the last address in it (the one the trusted proxy appended; earlier entries come from the
  client and prove nothing).
Above a bucket the answer is 429 with ``Retry-After``.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated

from fastapi import Header, Request
from starlette.exceptions import HTTPException

from gateway.ratelimit import RateLimiter
from gateway.settings import GatewaySettings

UNKNOWN_ADDRESS = "unknown"


def matching_key(sent: str | None, keys: Sequence[bytes]) -> bytes | None:
    """The configured key equal to ``sent``, or None (also for a missing or empty header).

    The header is compared as the bytes the client sent (header values reach the application
    decoded as Latin-1, so encoding them back gives those bytes) with every configured key, each
    with :func:`hmac.compare_digest` and all of them every time, so the time taken does not depend
    on which key matched, or on whether one did.
    """
    try:
        given = (sent or "").encode("latin-1")
    except UnicodeEncodeError:  # not a header value a client can send
        given = b""
    matched = None
    for key in keys:
        if hmac.compare_digest(given, key) and given:
            matched = key
    return matched


def key_matches(sent: str | None, keys: Sequence[bytes]) -> bool:
    """Whether ``sent`` is one of the configured ``keys``."""
    return matching_key(sent, keys) is not None


def client_address(peer: str | None, headers: dict[str, str] | None, trusted_header: str) -> str:
    """The address an anonymous client is limited by (see the module docstring)."""
    if trusted_header and headers:
        value = headers.get(trusted_header.lower(), "")
        hops = [h.strip() for h in value.split(",") if h.strip()]
        if hops:
            return hops[-1][:64]
    return peer or UNKNOWN_ADDRESS


@dataclass(frozen=True)
class Caller:
    """One request's client: its bucket and whether it came with a key."""

    bucket: bytes
    keyed: bool
    limiter: RateLimiter
    scan_cost: float

    def charge_scan(self) -> None:
        """Charge a scan that had to run (the request itself already paid one token)."""
        self.limiter.charge(self.bucket, self.scan_cost - 1.0)


class Access:
    """The access policy of one application; :meth:`caller` and :meth:`keyed` are its dependencies."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.keys = [k.encode() for k in settings.api_key_list]
        self.keyed_limiter = RateLimiter(settings.gateway_rate_limit, settings.gateway_rate_burst)
        self.anonymous_limiter = RateLimiter(
            settings.gateway_anonymous_rate_limit,
            settings.gateway_anonymous_rate_burst,
            max_clients=settings.gateway_anonymous_clients,
        )

    def _limit(self, caller: Caller, what: str) -> Caller:
        wait = caller.limiter.acquire(caller.bucket)
        if wait:
            raise HTTPException(
                429, f"request rate limit {what} exceeded; retry in {wait} s", headers={"Retry-After": str(wait)}
            )
        return caller

    def _keyed(self, given: str) -> Caller:
        matched = matching_key(given, self.keys)
        if not matched:
            raise HTTPException(401, "invalid X-API-Key header")
        return self._limit(Caller(b"key:" + matched, True, self.keyed_limiter, 1.0), "per API key")

    def admit(self, x_api_key: str | None, peer: str | None, forwarded: str | None) -> Caller:
        """The caller of a read route: keyed, or anonymous when the operator allows it (HTTPException
        401/429 otherwise). ``forwarded`` is the trusted proxy header's value, if any."""
        if x_api_key is not None:
            return self._keyed(x_api_key)
        if not self.settings.http_anonymous:
            raise HTTPException(401, "missing X-API-Key header")
        trusted = self.settings.http_trusted_proxy_header
        address = client_address(peer, {trusted.lower(): forwarded} if forwarded else None, trusted)
        caller = Caller(
            b"addr:" + address.encode(), False, self.anonymous_limiter, self.settings.gateway_anonymous_scan_cost
        )
        return self._limit(caller, "per client without a key")

    async def caller(
        self, request: Request, x_api_key: Annotated[str | None, Header(alias="X-API-Key")] = None
    ) -> Caller:
        """A keyed client, or an anonymous one when the operator allows it."""
        trusted = self.settings.http_trusted_proxy_header
        forwarded = request.headers.get(trusted) if trusted and x_api_key is None else None
        return self.admit(x_api_key, request.client.host if request.client else None, forwarded)

    async def keyed(self, x_api_key: Annotated[str | None, Header(alias="X-API-Key")] = None) -> Caller:
        """A keyed client only: writes and costly operations."""
        if x_api_key is None:
            raise HTTPException(401, "missing X-API-Key header: this operation needs an API key")
        return self._keyed(x_api_key)


def require_key_for(caller: Caller, what: str) -> None:
    """401 unless ``caller`` came with a key (``what`` names the operation)."""
    if not caller.keyed:
        raise HTTPException(401, f"{what} needs an X-API-Key")
