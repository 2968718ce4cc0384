"""A request's symbols as they arrive, so that work on the first ones starts before the last are in."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, Sequence

from services.fetcher.request import normalise


class SymbolFeed:
    """A request's symbols as they arrive, normalised and without repeats (first occurrence kept).

    The batches are read by a task of their own, so the request stream keeps being drained while
    chunks are built; what reading raises (a request found invalid half-way) is raised to the
    consumer at its next wait.
    """

    def __init__(self, batches: AsyncIterable[Sequence[str]]) -> None:
        self.symbols: list[str] = []
        self.closed = False
        self._seen: set[str] = set()
        self._error: Exception | None = None
        self._arrived = asyncio.Event()
        self._reader = asyncio.ensure_future(self._read(batches))

    async def _read(self, batches: AsyncIterable[Sequence[str]]) -> None:
        try:
            async for batch in batches:
                for symbol in map(normalise, batch):
                    if symbol and symbol not in self._seen:
                        self._seen.add(symbol)
                        self.symbols.append(symbol)
                self._arrived.set()
        except Exception as exc:  # the consumer raises it at its next wait
            self._error = exc
        finally:
            self.closed = True
            self._arrived.set()

    def ready(self, n: int) -> bool:
        """Whether :meth:`wait` for ``n`` symbols would return (or raise) without waiting."""
        return self.closed or self._error is not None or len(self.symbols) >= n

    async def wait(self, n: int) -> int:
        """The count of symbols so far, once at least ``n`` have arrived or the stream has ended."""
        while not self.ready(n):
            self._arrived.clear()
            await self._arrived.wait()
        if self._error is not None:
            raise self._error
        return len(self.symbols)

    async def aclose(self) -> None:
        """Stop reading (the request is over, or failed)."""
        self._reader.cancel()
        await asyncio.gather(self._reader, return_exceptions=True)
