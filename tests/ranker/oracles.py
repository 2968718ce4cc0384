"""Independent oracles for the ranker's cross-sectional statistics: plain Python, no pandas, no ranker code."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile_of(
    values: Sequence[float], groups: Sequence[object] | None = None, mask: Sequence[bool] | None = None
) -> list[float]:
    """Percentile 0-100 of each finite, unmasked value among those of its group, by counting.

    A value below ``b`` others and tied with ``t`` others (itself excluded) of the ``n`` in its group
    has the average rank ``b + 1 + t / 2``, so its percentile is ``(b + t / 2) / (n - 1) * 100``; alone
    in its group it is 50. Everything else is NaN.
    """
    n_rows = len(values)
    groups = list(groups) if groups is not None else [None] * n_rows
    taking = [math.isfinite(v) and (mask is None or bool(mask[i])) for i, v in enumerate(values)]
    out = []
    for i, v in enumerate(values):
        if not taking[i]:
            out.append(math.nan)
            continue
        peers = [values[j] for j in range(n_rows) if taking[j] and groups[j] == groups[i]]
        if len(peers) == 1:
            out.append(50.0)
            continue
        below = sum(p < v for p in peers)
        tied = sum(p == v for p in peers) - 1
        out.append((below + tied / 2) / (len(peers) - 1) * 100.0)
    return out
