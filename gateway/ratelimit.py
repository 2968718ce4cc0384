"""Request-rate limits: one token bucket per client (refill ``rate`` per second, ``burst`` deep).

A request takes ``cost`` tokens (one by default); when the bucket holds fewer the caller is told
how many whole seconds to wait (the ``Retry-After`` of the 429). :meth:`RateLimiter.charge` takes
more after the fact (a scan that turned out to need running), and may leave a bucket in debt, which
the refill pays off before the next request passes. Buckets are bounded: the least recently used
is dropped first beyond ``max_clients`` (a dropped client starts again with a full bucket).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Token buckets by client key; ``rate <= 0`` switches the limit off."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic, max_clients: int = 100_000
    ) -> None:
        self.rate = rate
        self.burst = max(1, burst)
        self.clock = clock
        self.max_clients = max(1, max_clients)
        self._buckets: OrderedDict[bytes, _Bucket] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def _bucket(self, key: bytes) -> _Bucket:
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(tokens=float(self.burst), updated=now)
            while len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
        bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        return bucket

    def acquire(self, key: bytes, cost: float = 1.0) -> int:
        """Take ``cost`` tokens for ``key``: 0 when allowed, else the seconds to wait (at least 1)."""
        if not self.enabled:
            return 0
        bucket = self._bucket(key)
        need = min(cost, float(self.burst))
        if bucket.tokens >= need:
            bucket.tokens -= need
            return 0
        return max(1, math.ceil((need - bucket.tokens) / self.rate))

    def charge(self, key: bytes, cost: float) -> None:
        """Take ``cost`` more tokens for ``key`` after the fact; the bucket may go into debt."""
        if self.enabled and cost > 0:
            bucket = self._bucket(key)
            bucket.tokens = max(bucket.tokens - cost, -float(self.burst))
