"""The prefilter: every requested symbol survives or lands in exactly one bucket with a reason."""

from __future__ import annotations

import numpy as np

from gateway.prefilter import PrefilterSpec, prefilter
from technic.v1 import common_pb2

SYMBOLS = ["AAA", "BBB", "CCC", "DDD", "EEE", "FFF", "GGG", "HHH"]
TYPES = ["CS", "CS", "ETF", "WARRANT", "ADRC", "CS", "CS", "CS"]
EXCHANGES = ["XNAS", "XNYS", "ARCX", "XNAS", "XNYS", "OTC", "XNAS", "XNAS"]
# Snapshot rows in another order; HHH did not trade in the session.
SNAP_ROWS = ["GGG", "FFF", "EEE", "DDD", "CCC", "BBB", "AAA"]
SNAP_CLOSE = np.array([3.0, 50.0, 20.0, 10.0, 400.0, 30.0, 100.0], dtype=np.float32)
SNAP_DV = np.array([9e7, 8e7, 7e6, 5e7, 9e9, 2e6, 6e7], dtype=np.float32)


def run(spec: PrefilterSpec):
    return prefilter(SYMBOLS, TYPES, EXCHANGES, SNAP_ROWS, SNAP_CLOSE, SNAP_DV, spec)


def reasons(result) -> dict[str, tuple[int, str]]:
    symbols, buckets, why = result.issues()
    return {s: (int(b), r) for s, b, r in zip(symbols, buckets, why, strict=True)}


def test_default_universe_rules_and_liquidity_order() -> None:
    result = run(PrefilterSpec(min_price=5.0, min_dollar_volume=5e6))
    assert result.survivors.tolist() == ["AAA", "EEE"]  # 6e7 before 7e6: most liquid first
    assert reasons(result) == {
        "HHH": (common_pb2.BUCKET_SKIPPED, "no_snapshot"),
        "CCC": (common_pb2.BUCKET_FILTERED, "prefilter_type"),
        "DDD": (common_pb2.BUCKET_FILTERED, "prefilter_type"),
        "FFF": (common_pb2.BUCKET_FILTERED, "prefilter_exchange"),
        "GGG": (common_pb2.BUCKET_FILTERED, "prefilter_price"),
        "BBB": (common_pb2.BUCKET_FILTERED, "prefilter_dollar_volume"),
    }
    assert result.requested == len(result.survivors) + result.issue_count == len(SYMBOLS)


def test_etfs_when_asked() -> None:
    result = run(PrefilterSpec(min_price=5.0, min_dollar_volume=5e6, types=frozenset({"CS", "ADRC", "ETF"})))
    assert result.survivors.tolist() == ["CCC", "AAA", "EEE"]


def test_watchlist_is_taken_as_asked_and_unknown_tickers_are_skipped() -> None:
    spec = PrefilterSpec(universe=("DDD", "GGG", "ZZZ", "HHH"), types=None, exclude_exchanges=frozenset())
    result = run(spec)
    assert result.survivors.tolist() == ["GGG", "DDD"]
    assert reasons(result) == {
        "ZZZ": (common_pb2.BUCKET_SKIPPED, "unknown_symbol"),
        "HHH": (common_pb2.BUCKET_SKIPPED, "no_snapshot"),
    }
    assert result.requested == 4


def test_sector_and_cap_keep_the_accounting_whole() -> None:
    result = run(PrefilterSpec(types=None, exclude_exchanges=frozenset()))
    assert result.survivors.tolist() == ["CCC", "GGG", "FFF", "AAA", "DDD", "EEE", "BBB"]
    sectors = np.array(["Technology", "Energy", "technology", "Energy", "Utilities", "Energy", "Energy"])
    result.keep_sectors(sectors, ["Technology "])
    assert result.survivors.tolist() == ["CCC", "FFF"]
    result.cap(1)
    assert result.survivors.tolist() == ["CCC"]
    why = reasons(result)
    assert why["FFF"] == (common_pb2.BUCKET_FILTERED, "prefilter_max_symbols")
    assert why["GGG"] == (common_pb2.BUCKET_FILTERED, "prefilter_sector")
    assert result.requested == len(result.survivors) + result.issue_count
