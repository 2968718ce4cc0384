"""What every fetcher request shares: the error for a request that cannot be served as asked, the
record of the work done for it, and how its symbols are normalised."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from services.fetcher.polygon import RequestCounters


class RequestError(ValueError):
    """The request cannot be served as asked (a bad date, a window beyond the data); says why."""


@dataclass
class RequestStats:
    """Work done for one request: HTTP counters, cache hits, seconds per phase."""

    http: RequestCounters = field(default_factory=RequestCounters)
    cache_hits: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    extra: dict[str, int] = field(default_factory=dict)

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start

    def counters(self) -> dict[str, int]:
        return {**self.http.as_dict(), "cache_hits": self.cache_hits, **self.extra}


def normalise(symbol: str) -> str:
    """A symbol as the fetcher keys it: stripped and upper-cased ("" for a blank one)."""
    return symbol.strip().upper()


def unique(symbols: Iterable[str]) -> list[str]:
    """Symbols normalised, without blanks or repeats, first occurrence kept, order kept."""
    return list(dict.fromkeys(filter(None, map(normalise, symbols))))
