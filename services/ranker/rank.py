"""Cross-sectional helpers in the Zipline Pipeline style, plus filters, sort and pages.

``rank``, ``percentile`` and ``zscore`` are declared once: each takes a column, an optional
``mask`` (rows that take part; the others get NaN) and optional ``groups`` (e.g. the sector of
every row, so the statistic is computed within each group only). Non-finite values never take
part. Everything is vectorised (pandas groupby over factorized group codes).

Filters, the sort column and ranges address columns by name through a mapping of equal-length
arrays (numeric columns, features and text columns of a ranked scan).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from services.contract.columns import DEFAULT_LIMIT, DEFAULT_SORT, MAX_LIMIT
from services.ranker.errors import RankerInputError, allowed


def _series(values: np.ndarray, mask: np.ndarray | None) -> tuple[pd.Series, np.ndarray]:
    x = np.asarray(values, dtype=np.float64)
    valid = np.isfinite(x) if mask is None else np.isfinite(x) & np.asarray(mask, dtype=bool)
    return pd.Series(np.where(valid, x, np.nan)), valid


def _codes(groups: Sequence[str] | np.ndarray) -> np.ndarray:
    codes, _ = pd.factorize(np.asarray(groups, dtype=object), use_na_sentinel=False)
    return codes


def rank(
    values: np.ndarray,
    mask: np.ndarray | None = None,
    groups: Sequence[str] | np.ndarray | None = None,
    ascending: bool = True,
) -> np.ndarray:
    """1-based rank of every valid row (ties share their average rank), NaN elsewhere."""
    s, _ = _series(values, mask)
    if groups is None:
        return s.rank(method="average", ascending=ascending).to_numpy()
    return s.groupby(_codes(groups)).rank(method="average", ascending=ascending).to_numpy()


def percentile(
    values: np.ndarray, mask: np.ndarray | None = None, groups: Sequence[str] | np.ndarray | None = None
) -> np.ndarray:
    """Percentile 0-100 (lowest 0, highest 100) of every valid row within its group, NaN elsewhere.

    A group with a single valid row puts it at 50.
    """
    s, _ = _series(values, mask)
    if groups is None:
        ranks = s.rank(method="average").to_numpy()
        counts = np.full(len(s), s.count(), dtype=np.float64)
    else:
        grouped = s.groupby(_codes(groups))
        ranks = grouped.rank(method="average").to_numpy()
        counts = grouped.transform("count").to_numpy(dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        pct = np.where(counts > 1, (ranks - 1.0) / (counts - 1.0) * 100.0, 50.0)
    return np.where(np.isfinite(ranks), pct, np.nan)


def zscore(
    values: np.ndarray, mask: np.ndarray | None = None, groups: Sequence[str] | np.ndarray | None = None
) -> np.ndarray:
    """(x - mean) / std (population) within the group over valid rows; 0 without spread; NaN elsewhere."""
    s, _ = _series(values, mask)
    if groups is None:
        mean = np.full(len(s), s.mean())
        std = np.full(len(s), s.std(ddof=0))
    else:
        grouped = s.groupby(_codes(groups))
        mean = grouped.transform("mean").to_numpy()
        std = grouped.transform("std", ddof=0).to_numpy()
    x = s.to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        # A spread within rounding error of the mean is no spread (constant columns score 0).
        spread = std > 1e-12 * np.maximum(np.abs(mean), 1.0)
        return np.where(spread, (x - mean) / std, np.where(np.isfinite(x), 0.0, np.nan))


@dataclass(frozen=True)
class RangeSpec:
    """Keep rows whose ``column`` lies in [min, max]; None is an open bound."""

    column: str
    min: float | None = None
    max: float | None = None


@dataclass(frozen=True)
class FilterSpec:
    """The filters of a scan, applied in the order of FILTER_NAMES."""

    min_price: float | None = None
    min_dollar_volume: float | None = None
    sectors: tuple[str, ...] = ()
    min_tech_rating: float = 0.0
    signals: tuple[str, ...] = ()
    ranges: tuple[RangeSpec, ...] = field(default_factory=tuple)


FILTER_NAMES = ("min_price", "min_dollar_volume", "sectors", "min_tech_rating", "signals")


@dataclass(frozen=True)
class PageSpec:
    """Order and window of the rows to return."""

    sort_by: str = DEFAULT_SORT
    ascending: bool = False
    offset: int = 0
    limit: int = DEFAULT_LIMIT


def page_spec(sort_by: str, ascending: bool, offset: int, limit: int) -> PageSpec:
    """A PageSpec with defaults for empty values; negative or oversized pages are rejected."""
    if offset < 0:
        raise RankerInputError(f"offset must be >= 0, got {offset}")
    if limit < 0 or limit > MAX_LIMIT:
        raise RankerInputError(f"limit must be between 0 and {MAX_LIMIT} (0 means {DEFAULT_LIMIT}), got {limit}")
    return PageSpec(sort_by=sort_by or DEFAULT_SORT, ascending=ascending, offset=offset, limit=limit or DEFAULT_LIMIT)


def check_column(name: str, columns: Sequence[str] | Mapping[str, object], what: str) -> None:
    if name not in columns:
        raise RankerInputError(f"unknown {what} column {name!r}; allowed: {allowed(columns)}")


def check_filters(
    spec: FilterSpec, sectors: Sequence[str], signals: Sequence[str], numeric_columns: Sequence[str] | None
) -> None:
    """Reject unknown sectors and signals, bad bounds and (when known) unknown range columns."""
    known = set(sectors)
    unknown = [s for s in spec.sectors if s not in known]
    if unknown:
        raise RankerInputError(f"unknown sector(s) {', '.join(unknown)}; allowed: {allowed(known)}")
    bad = [s for s in spec.signals if s not in signals]
    if bad:
        raise RankerInputError(f"unknown signal(s) {', '.join(bad)}; allowed: {', '.join(signals)}")
    if not 0.0 <= spec.min_tech_rating <= 100.0:
        raise RankerInputError(f"min_tech_rating must lie in [0, 100], got {spec.min_tech_rating}")
    for name, value in (("min_price", spec.min_price), ("min_dollar_volume", spec.min_dollar_volume)):
        if value is not None and (not np.isfinite(value) or value < 0):
            raise RankerInputError(f"{name} must be a finite number >= 0, got {value}")
    for r in spec.ranges:
        if r.min is not None and r.max is not None and r.min > r.max:
            raise RankerInputError(f"range on {r.column!r} has min {r.min} > max {r.max}")
        if numeric_columns is not None:
            check_column(r.column, numeric_columns, "range")


def apply_filters(spec: FilterSpec, columns: Mapping[str, np.ndarray], n: int) -> np.ndarray:
    """Per row: "" when it passes every filter, else the name of the first filter that removes it."""
    reason = np.full(n, "", dtype=object)

    def drop(name: str, fails: np.ndarray) -> None:
        reason[(reason == "") & fails] = name

    with np.errstate(invalid="ignore"):
        if spec.min_price is not None:
            drop("min_price", ~(columns["last_close"] >= spec.min_price))
        if spec.min_dollar_volume is not None:
            drop("min_dollar_volume", ~(columns["avg_dollar_volume"] >= spec.min_dollar_volume))
        if spec.sectors:
            drop("sectors", ~np.isin(columns["sector"], list(spec.sectors)))
        if spec.min_tech_rating > 0:
            drop("min_tech_rating", ~(columns["tech_rating"] >= spec.min_tech_rating))
        if spec.signals:
            drop("signals", ~np.isin(columns["signal"], list(spec.signals)))
        for r in spec.ranges:
            values = np.asarray(columns[r.column], dtype=np.float64)
            inside = np.isfinite(values)
            if r.min is not None:
                inside &= values >= r.min
            if r.max is not None:
                inside &= values <= r.max
            drop(f"range:{r.column}", ~inside)
    return reason


def order(values: np.ndarray, ascending: bool) -> np.ndarray:
    """Row indices sorted by ``values`` (numeric or text); NaN last either way; ties keep row order."""
    if values.dtype.kind in "fiub":
        x = np.asarray(values, dtype=np.float64)
        key = np.where(np.isnan(x), np.inf, x if ascending else -x)
        return np.argsort(key, kind="stable")
    text = np.asarray(values, dtype=str)
    if ascending:
        return np.argsort(text, kind="stable")
    # Descending with ties still in row order: sort by the negated rank of each distinct text.
    codes = np.unique(text, return_inverse=True)[1].reshape(-1)
    return np.argsort(-codes, kind="stable")


def window(indices: np.ndarray, offset: int, limit: int) -> np.ndarray:
    return indices[offset : offset + limit]
