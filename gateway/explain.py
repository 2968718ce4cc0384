"""Feature contributions for the best-ranked rows of a scan (``Compute.Explain``).

Explanations cost milliseconds per row, so only the top rows of the page get them. The rows that
topped the last scan of the same request are explained while the ranker ranks (the replicas are
idle then, and those rows usually top again); only rows that are new at the top are explained after
the ranking. The explanations are stored with the ranked scan in the ranker, so every later page
and a gateway restart keep them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import numpy as np

from gateway.backends import Backends
from gateway.prefilter import lookup
from services.common.codec import decode_block, encode_block
from technic.v1 import compute_pb2, scan_pb2


class Explainer:
    """The features of one scan's scored chunks, and the explanations asked for from them."""

    def __init__(self, backends: Backends, scan_id: str, top_k: int) -> None:
        self.backends = backends
        self.scan_id = scan_id
        self.top_k = top_k
        self.features: list[tuple[tuple[str, ...], bytes]] = []
        self.early: asyncio.Task[dict[str, compute_pb2.SymbolExplanation]] | None = None

    def add_chunk(self, response: compute_pb2.ScoreResponse) -> None:
        self.features.append((tuple(response.symbols), response.features))

    def start_early(self, symbols: list[str]) -> None:
        """Explain ``symbols`` (the last scan's top rows) now, while the ranker ranks."""
        if symbols:
            self.early = asyncio.create_task(self.explanations_of(symbols))

    def cancel(self) -> None:
        if self.early is not None:
            self.early.cancel()

    async def attach(
        self, result: scan_pb2.ScanResult, top: list[str], progress: Callable[[str, int, int], None]
    ) -> list[compute_pb2.SymbolExplanation]:
        """Attach contributions to the ``top`` rows of ``result``; returns the attached explanations."""
        if not top:
            return []
        progress("explain", 0, len(top))
        explained = dict(await self.early) if self.early is not None else {}
        missing = [symbol for symbol in top if symbol not in explained]
        if missing:
            explained.update(await self.explanations_of(missing))
        wanted = set(top)
        attached = []
        for row in result.rows:
            if row.symbol in wanted and row.symbol in explained:
                row.explanation.append(explained[row.symbol])
                attached.append(explained[row.symbol])
        if attached:
            progress("explain", len(top), len(top))
        return attached

    async def explanations_of(self, symbols: list[str]) -> dict[str, compute_pb2.SymbolExplanation]:
        """Feature contributions of ``symbols`` (those scored in this scan) by symbol; empty on failure."""
        features = self.features_of(symbols)
        if features is None:
            return {}
        response = await self.backends.explain(
            compute_pb2.ExplainRequest(scan_id=self.scan_id, features=features, top_k=self.top_k)
        )
        return {e.symbol: e for e in response.symbols} if response is not None else {}

    def features_of(self, symbols: list[str]) -> bytes | None:
        """A features block of ``symbols`` (rows in that order), from the chunks scored in this scan."""
        blocks = [(rows, decode_block(data)) for rows, data in self.features if data]
        if not blocks:
            return None
        fields = blocks[0][1].fields
        labels = np.concatenate([np.asarray(rows, dtype=object) for rows, _ in blocks])
        matrix = np.concatenate([b.array.reshape(len(rows), -1) for rows, b in blocks])
        idx = lookup(labels, symbols)
        found = idx >= 0
        if not found.any():
            return None
        return encode_block(
            np.ascontiguousarray(matrix[idx[found]], dtype=np.float32),
            rows=np.asarray(symbols, dtype=object)[found].tolist(),
            fields=fields,
        )
