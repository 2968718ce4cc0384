"""Single flight: concurrent callers asking for the same key share one run of the work.

The first caller of a key starts the work as a task; callers that come while it runs wait for that
task instead of starting their own. A waiter that is cancelled stops waiting without cancelling the
work, which the others still wait for (and which runs to its end even when nobody waits any more,
so what it stores on the way is not lost). When the work ends, with a result or an exception, every
waiter gets that outcome and the key is forgotten: the next caller starts the work again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from functools import partial
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class SingleFlight(Generic[K, V]):
    """At most one run of the work per key at a time, shared by every caller of that key."""

    def __init__(self) -> None:
        self._flights: dict[K, asyncio.Future[V]] = {}

    def __contains__(self, key: object) -> bool:
        """Whether work for ``key`` is running now."""
        return key in self._flights

    def __len__(self) -> int:
        return len(self._flights)

    async def run(self, key: K, make: Callable[[], Awaitable[V]]) -> V:
        """The outcome of the work for ``key``: the running one's, else that of ``make()`` started now.

        The task is started in the first caller's context (context variables are copied from it).
        """
        flight = self._flights.get(key)
        if flight is None or flight.done():
            flight = asyncio.ensure_future(make())
            self._flights[key] = flight
            flight.add_done_callback(partial(self._forget, key))
        return await asyncio.shield(flight)

    def _forget(self, key: K, flight: asyncio.Future[V]) -> None:
        if self._flights.get(key) is flight:
            del self._flights[key]
        if not flight.cancelled():
            flight.exception()  # retrieved: work whose waiters all left must not log "never retrieved"
