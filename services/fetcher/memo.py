"""Chunks already in Redis, remembered by what defines them, so that a request asking for the same
chunks again (a warm scan) is handed them without gathering them, after one round trip to Redis.

What defines a chunk: the as-of session, lookback, the serials of the session objects of its window
and of those still in progress (raw sessions are immutable, so the same objects mean the same bars),
its position and its symbols, and the split table object it was adjusted with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from cachetools import LRUCache

from services.fetcher.feed import SymbolFeed
from services.fetcher.polygon import SplitTable
from services.fetcher.request import RequestStats
from services.fetcher.store import BarStore

if TYPE_CHECKING:
    from services.fetcher.chunks import PanelChunk

# Chunks remembered (a full scan is a dozen).
CHUNK_MEMO = 512


@dataclass
class Remembered:
    """A chunk in Redis, the split table it used, and the symbols of the chunk handed out after it."""

    splits: SplitTable
    chunk: PanelChunk
    next_names: tuple[str, ...] | None = None


class ChunkMemo:
    """Remembered chunks by (what defines the request's window, position, symbols)."""

    def __init__(self, store: BarStore, maxsize: int = CHUNK_MEMO) -> None:
        self.store = store
        self._chunks: LRUCache[tuple[object, ...], Remembered] = LRUCache(maxsize=maxsize)

    def remember(self, key: tuple[object, ...], splits: SplitTable, chunk: PanelChunk) -> Remembered:
        remembered = self._chunks[key] = Remembered(splits, chunk)
        return remembered

    async def held(
        self,
        defined_by: tuple[object, ...],
        splits: SplitTable,
        index: int,
        lo: int,
        size: int,
        feed: SymbolFeed,
        stats: RequestStats,
    ) -> dict[int, Remembered]:
        """The remembered chunks from ``index`` on (at symbol ``lo``) that Redis still holds, by index,
        asking it once for all.

        Chunks whose symbols are in are looked up by them; past those, by the symbols of the chunk that
        followed last time, to be used only if the symbols that arrive are the same.
        """
        found: dict[int, Remembered] = {}
        symbols = feed.symbols
        remembered: Remembered | None = None
        while True:
            hi = min(lo + size, len(symbols))
            if hi - lo == size or (feed.closed and hi > lo):
                names = tuple(symbols[lo:hi])
            elif not feed.closed and remembered is not None and remembered.next_names is not None:
                names = remembered.next_names
            else:
                break
            remembered = self._chunks.get((defined_by, index, names))
            if remembered is None or remembered.splits is not splits:
                break
            found[index] = remembered
            index, lo = index + 1, lo + len(names)
        if not found:
            return found
        with stats.phase("write"):
            if await self.store.has_panels([r.chunk.key for r in found.values()]):
                return found
            # Some were evicted: those that are left are told apart one by one.
            return {i: r for i, r in found.items() if await self.store.has_panel(r.chunk.key)}
