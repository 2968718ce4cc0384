"""A Redis client that keeps a service working when Redis is down.

:class:`ResilientRedis` wraps ``redis.asyncio`` for the byte-valued operations the services use.
When the server cannot be reached, operations fall back to a bounded in-process LRU, the client
reports ``degraded``, a warning is logged at most once a minute, and Redis is tried again after a
short pause (a circuit breaker, so a dead server costs one timeout per pause, not one per call).
Reads that miss in Redis also look in the LRU, so what was written during an outage stays visible.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping, Sequence
from typing import Any, TypeVar, cast

import redis.asyncio as aioredis
import structlog
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = structlog.get_logger(__name__)
T = TypeVar("T")
_DOWN_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError, asyncio.TimeoutError)


class ByteLRU:
    """Least-recently-used bytes cache bounded by total size, with optional per-key expiry; safe to
    share between threads (the simulator builds days on a worker thread while it answers)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self._items: OrderedDict[Hashable, tuple[bytes, float | None]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> bytes | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            value, expires = item
            if expires is not None and expires < time.monotonic():
                self._delete(key)
                return None
            self._items.move_to_end(key)
            return value

    def set(self, key: Hashable, value: bytes, ttl: float | None = None) -> None:
        with self._lock:
            self._delete(key)
            if len(value) > self.max_bytes:
                return
            self._items[key] = (value, time.monotonic() + ttl if ttl else None)
            self.size += len(value)
            while self.size > self.max_bytes:
                _, (old, _exp) = self._items.popitem(last=False)
                self.size -= len(old)

    def delete(self, key: Hashable) -> None:
        with self._lock:
            self._delete(key)

    def _delete(self, key: Hashable) -> None:
        item = self._items.pop(key, None)
        if item is not None:
            self.size -= len(item[0])

    def __len__(self) -> int:
        return len(self._items)


class ResilientRedis:
    """Byte-valued Redis operations with an in-process fallback while the server is unreachable."""

    def __init__(
        self,
        url: str,
        *,
        fallback_bytes: int = 512 * 1024 * 1024,
        timeout: float = 2.0,
        retry_after: float = 2.0,
        on_state_change: Callable[[bool], Awaitable[None] | None] | None = None,
    ) -> None:
        self.url = url
        self.client: aioredis.Redis = aioredis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=min(timeout, 1.0),
            health_check_interval=30,
            decode_responses=False,
        )
        self.fallback = ByteLRU(fallback_bytes)
        self.retry_after = retry_after
        self.on_state_change = on_state_change
        self._down_until = 0.0
        self._degraded = False
        self._last_warning = 0.0
        self._watcher: asyncio.Task[None] | None = None

    @property
    def degraded(self) -> bool:
        """True while Redis is unreachable and the in-process fallback serves."""
        return self._degraded

    async def _set_degraded(self, value: bool, error: BaseException | None = None) -> None:
        now = time.monotonic()
        if value and now - self._last_warning >= 60:
            self._last_warning = now
            log.warning("redis unavailable, serving from process memory", url=_safe_url(self.url), error=str(error))
        if value != self._degraded:
            self._degraded = value
            if not value:
                log.info("redis available again", url=_safe_url(self.url))
            elif self._watcher is None or self._watcher.done():
                self._watcher = asyncio.get_running_loop().create_task(self._watch())
            if self.on_state_change is not None:
                result = self.on_state_change(value)
                if asyncio.iscoroutine(result):
                    await result

    async def _try(self, op: Callable[[], Awaitable[T]]) -> tuple[bool, T | None]:
        """Run ``op`` against Redis unless the breaker is open; (succeeded, result)."""
        if time.monotonic() < self._down_until:
            return False, None
        try:
            try:
                result = await op()
            except RedisConnectionError:
                # A pooled connection outlives a server restart: the first command on it fails, so try once
                # more on a fresh connection before calling Redis down.
                result = await op()
        except _DOWN_ERRORS as exc:
            self._down_until = time.monotonic() + self.retry_after
            await self._set_degraded(True, exc)
            return False, None
        if self._degraded:
            await self._set_degraded(False)
        return True, result

    async def _watch(self) -> None:
        """While degraded, ping every ``retry_after`` seconds: health recovers without waiting for traffic."""
        while self._degraded:
            await asyncio.sleep(self.retry_after)
            await self.ping()

    async def ping(self) -> bool:
        """True when Redis answers now (also closes the breaker when it does)."""
        self._down_until = 0.0
        ok, _ = await self._try(self.client.ping)
        return ok

    async def get(self, key: str) -> bytes | None:
        # decode_responses=False: Redis answers bytes (redis-py types every reply as bytes | str).
        ok, value = await self._try(lambda: cast("Awaitable[bytes | None]", self.client.get(key)))
        if ok and value is not None:
            return bytes(value)
        return self.fallback.get(key)

    async def mget(self, keys: Iterable[str]) -> list[bytes | None]:
        keys = list(keys)
        if not keys:
            return []
        ok, values = await self._try(lambda: cast("Awaitable[list[bytes | None]]", self.client.mget(keys)))
        if not ok or values is None:
            return [self.fallback.get(k) for k in keys]
        return [bytes(v) if v is not None else self.fallback.get(k) for k, v in zip(keys, values, strict=True)]

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> bool:
        """Store ``value``; True when Redis took it, False when only the fallback did."""
        px = int(ttl * 1000) if ttl else None
        ok, _ = await self._try(lambda: self.client.set(key, value, px=px))
        if not ok:
            self.fallback.set(key, value, ttl)
        return ok

    async def mset(self, items: Mapping[str, bytes], ttl: float | None = None) -> bool:
        """Store many values in one round trip (a pipeline); False when only the fallback took them."""
        if not items:
            return True
        px = int(ttl * 1000) if ttl else None

        async def run() -> Any:
            async with self.client.pipeline(transaction=False) as pipe:
                for key, value in items.items():
                    pipe.set(key, value, px=px)
                return await pipe.execute()

        ok, _ = await self._try(run)
        if not ok:
            for key, value in items.items():
                self.fallback.set(key, value, ttl)
        return ok

    async def delete(self, *keys: str) -> None:
        for key in keys:
            self.fallback.delete(key)
        if keys:
            await self._try(lambda: self.client.delete(*keys))

    async def exists(self, key: str) -> bool:
        ok, count = await self._try(lambda: self.client.exists(key))
        if ok and count:
            return True
        return self.fallback.get(key) is not None

    async def count_existing(self, keys: Sequence[str]) -> int:
        """How many of ``keys`` Redis holds (one EXISTS); 0 when Redis is unreachable (the fallback not counted)."""
        ok, count = await self._try(lambda: self.client.exists(*keys))
        return int(count or 0) if ok else 0

    async def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
        await self.client.aclose()


def _safe_url(url: str) -> str:
    """The URL without its password, for log lines."""
    if "@" not in url:
        return url
    scheme, _, rest = url.partition("://")
    return f"{scheme}://***@{rest.split('@', 1)[1]}"
