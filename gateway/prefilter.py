"""The liquidity prefilter: which symbols of the universe are worth fetching a year of bars for.

Pure numpy over the universe columns and the snapshot block (no loop over symbols). Every symbol
the request covers ends either among the survivors or in the issue list with a bucket and reason:

- SKIPPED ``unknown_symbol``: a watchlist ticker the universe does not know;
- SKIPPED ``no_snapshot``: no close in the as-of session;
- FILTERED ``prefilter_type`` / ``prefilter_exchange`` / ``prefilter_price`` /
  ``prefilter_dollar_volume`` / ``prefilter_sector`` / ``prefilter_max_symbols``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from services.contract.buckets import GATEWAY_SKIPS as GATEWAY_SKIPS
from services.contract.buckets import PREFILTER_PREFIX, SKIP_NO_SNAPSHOT, SKIP_UNKNOWN
from technic.v1 import common_pb2

DEFAULT_TYPES = frozenset({"CS", "ADRC"})
EXCLUDED_EXCHANGES = frozenset({"OTC"})


@dataclass(frozen=True)
class PrefilterSpec:
    """What the prefilter keeps. ``types`` None: any type (a watchlist is taken as asked)."""

    universe: tuple[str, ...] = ()
    min_price: float = 0.0
    min_dollar_volume: float = 0.0
    types: frozenset[str] | None = DEFAULT_TYPES
    exclude_exchanges: frozenset[str] = EXCLUDED_EXCHANGES


@dataclass
class Prefiltered:
    """Survivors (most liquid first) and every other requested symbol with its bucket and reason."""

    requested: int
    survivors: np.ndarray
    dollar_volume: np.ndarray
    issue_symbols: list[np.ndarray] = field(default_factory=list)
    issue_buckets: list[np.ndarray] = field(default_factory=list)
    issue_reasons: list[np.ndarray] = field(default_factory=list)

    def _add(self, symbols: np.ndarray, bucket: int, reason: str) -> None:
        if len(symbols):
            self.issue_symbols.append(symbols)
            self.issue_buckets.append(np.full(len(symbols), bucket, dtype=np.int32))
            self.issue_reasons.append(np.full(len(symbols), reason, dtype=object))

    def drop(self, mask: np.ndarray, reason: str) -> Prefiltered:
        """Remove the survivors where ``mask`` is True as FILTERED ``reason``."""
        self._add(self.survivors[mask], common_pb2.BUCKET_FILTERED, reason)
        self.survivors, self.dollar_volume = self.survivors[~mask], self.dollar_volume[~mask]
        return self

    def cap(self, max_symbols: int) -> Prefiltered:
        """Keep the ``max_symbols`` most liquid survivors (they are already ordered)."""
        mask = np.arange(len(self.survivors)) >= max_symbols
        return self.drop(mask, PREFILTER_PREFIX + "max_symbols")

    def keep_sectors(self, sectors: Sequence[str] | np.ndarray, wanted: Sequence[str]) -> Prefiltered:
        """Keep survivors whose sector (aligned with ``survivors``) is one of ``wanted``: both sides
        compared as :func:`sector_keys` spells them (any case, surrounding blanks ignored)."""
        keep = np.isin(sector_keys(sectors), sector_keys(wanted))
        return self.drop(~keep, PREFILTER_PREFIX + "sector")

    @property
    def issue_count(self) -> int:
        return sum(len(s) for s in self.issue_symbols)

    def issues(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(symbols, buckets, reasons) of every requested symbol that did not survive."""
        if not self.issue_symbols:
            return np.empty(0, dtype=object), np.empty(0, dtype=np.int32), np.empty(0, dtype=object)
        return (
            np.concatenate(self.issue_symbols),
            np.concatenate(self.issue_buckets),
            np.concatenate(self.issue_reasons),
        )


def sector_keys(names: Sequence[str] | np.ndarray) -> np.ndarray:
    """Sector names as compared: stripped and lower-case (the same for the wanted and the found)."""
    return np.char.lower(np.char.strip(np.asarray(names, dtype=str)))


def lookup(labels: Sequence[str] | np.ndarray, wanted: Sequence[str] | np.ndarray) -> np.ndarray:
    """Row of each ``wanted`` label in ``labels`` (-1 when absent), hashed in C."""
    return pd.Index(np.asarray(labels, dtype=object)).get_indexer(np.asarray(wanted, dtype=object))


def prefilter(
    universe_symbols: Sequence[str] | np.ndarray,
    universe_types: Sequence[str] | np.ndarray,
    universe_exchanges: Sequence[str] | np.ndarray,
    snapshot_rows: Sequence[str] | np.ndarray,
    snapshot_close: np.ndarray,
    snapshot_dollar_volume: np.ndarray,
    spec: PrefilterSpec,
) -> Prefiltered:
    """Apply universe, snapshot, type, exchange, price and dollar-volume rules; order by liquidity."""
    symbols = np.asarray(universe_symbols, dtype=object)
    if spec.universe:
        requested = np.asarray(spec.universe, dtype=object)
        uidx = lookup(symbols, requested)
    else:
        requested, uidx = symbols, np.arange(len(symbols))
    result = Prefiltered(requested=len(requested), survivors=requested, dollar_volume=np.zeros(0))
    known = uidx >= 0
    result._add(requested[~known], common_pb2.BUCKET_SKIPPED, SKIP_UNKNOWN)
    requested, uidx = requested[known], uidx[known]

    sidx = lookup(snapshot_rows, requested)
    present = sidx >= 0
    close = np.where(present, np.asarray(snapshot_close, dtype=np.float64)[sidx], np.nan)
    dollar_volume = np.where(present, np.asarray(snapshot_dollar_volume, dtype=np.float64)[sidx], np.nan)
    traded = np.isfinite(close)
    result._add(requested[~traded], common_pb2.BUCKET_SKIPPED, SKIP_NO_SNAPSHOT)
    result.survivors, result.dollar_volume = requested[traded], np.nan_to_num(dollar_volume[traded], nan=0.0)
    uidx, close = uidx[traded], close[traded]

    def drop(mask: np.ndarray, reason: str) -> None:
        nonlocal uidx, close
        result.drop(mask, PREFILTER_PREFIX + reason)
        uidx, close = uidx[~mask], close[~mask]

    if spec.types is not None:
        types = np.asarray(universe_types, dtype=object)[uidx]
        drop(~np.isin(types, list(spec.types)), "type")
    if spec.exclude_exchanges:
        exchanges = np.asarray(universe_exchanges, dtype=object)[uidx]
        drop(np.isin(exchanges, list(spec.exclude_exchanges)), "exchange")
    if spec.min_price > 0:
        drop(close < spec.min_price, "price")
    if spec.min_dollar_volume > 0:
        drop(result.dollar_volume < spec.min_dollar_volume, "dollar_volume")
    # Most liquid first; ties by symbol so equal requests give equal orders.
    order = np.lexsort((result.survivors.astype(str), -result.dollar_volume))
    result.survivors, result.dollar_volume = result.survivors[order], result.dollar_volume[order]
    return result
