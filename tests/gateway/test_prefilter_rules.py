"""Every outcome of the prefilter written out: survivors, their dollar volumes, and each issue's bucket
and reason, for each rule alone and together."""

from __future__ import annotations

import numpy as np

from gateway.prefilter import Prefiltered, PrefilterSpec, lookup, prefilter, sector_keys
from technic.v1 import common_pb2

SKIPPED, FILTERED = common_pb2.BUCKET_SKIPPED, common_pb2.BUCKET_FILTERED
SYMBOLS = ["AAA", "BBB", "CCC", "DDD", "EEE"]
TYPES = ["CS", "ETF", "CS", "ADRC", "CS"]
EXCHANGES = ["XNAS", "XNAS", "OTC", "XNYS", "XNAS"]
# The snapshot lists AAA first (row 0), EEE not at all; dollar volumes tie for BBB and DDD.
SNAP_ROWS = ["AAA", "DDD", "CCC", "BBB"]
SNAP_CLOSE = [0.6, 20.0, 30.0, 40.0]
SNAP_DV = [0.7, 3e6, np.nan, 3e6]


def run(spec: PrefilterSpec) -> Prefiltered:
    return prefilter(SYMBOLS, TYPES, EXCHANGES, SNAP_ROWS, np.array(SNAP_CLOSE), np.array(SNAP_DV), spec)


def outcome(result: Prefiltered) -> tuple[list[str], list[float], list[tuple[str, int, str]]]:
    symbols, buckets, reasons = result.issues()
    issues = list(zip(symbols.tolist(), buckets.tolist(), reasons.tolist(), strict=True))
    return result.survivors.tolist(), result.dollar_volume.tolist(), issues


def test_no_rule_keeps_every_traded_name_most_liquid_first_ties_by_symbol() -> None:
    result = run(PrefilterSpec(types=None, exclude_exchanges=frozenset()))
    assert outcome(result) == (["BBB", "DDD", "AAA", "CCC"], [3e6, 3e6, 0.7, 0.0], [("EEE", SKIPPED, "no_snapshot")])
    assert result.requested == 5 and result.issue_count == 1


def test_type_and_exchange_rules() -> None:
    result = run(PrefilterSpec())
    assert outcome(result) == (
        ["DDD", "AAA"],
        [3e6, 0.7],
        [("EEE", SKIPPED, "no_snapshot"), ("BBB", FILTERED, "prefilter_type"), ("CCC", FILTERED, "prefilter_exchange")],
    )


def test_small_floors_apply() -> None:
    """Floors below one still filter (a floor is off only at zero)."""
    assert outcome(run(PrefilterSpec(types=None, exclude_exchanges=frozenset(), min_price=0.65)))[2][1:] == [
        ("AAA", FILTERED, "prefilter_price")
    ]
    assert outcome(run(PrefilterSpec(types=None, exclude_exchanges=frozenset(), min_dollar_volume=0.8)))[2][1:] == [
        ("AAA", FILTERED, "prefilter_dollar_volume"),
        ("CCC", FILTERED, "prefilter_dollar_volume"),
    ]


def test_a_watchlist_keeps_its_unknown_and_untraded_names_apart() -> None:
    spec = PrefilterSpec(universe=("EEE", "ZZZ", "AAA", "QQQ"), types=None, exclude_exchanges=frozenset())
    assert outcome(run(spec)) == (
        ["AAA"],
        [0.7],
        [("ZZZ", SKIPPED, "unknown_symbol"), ("QQQ", SKIPPED, "unknown_symbol"), ("EEE", SKIPPED, "no_snapshot")],
    )
    assert run(spec).requested == 4


def test_cap_and_sectors_on_the_ordered_survivors() -> None:
    result = run(PrefilterSpec(types=None, exclude_exchanges=frozenset()))
    # Both sides are compared stripped and in any case: the survivors' sector names as the wanted ones.
    result.keep_sectors(np.array(["Energy", " energy\t", "Utilities", "ENERGY"]), [" Energy"])
    assert outcome(result)[:2] == (["BBB", "DDD", "CCC"], [3e6, 3e6, 0.0])
    result.cap(1)
    assert outcome(result) == (
        ["BBB"],
        [3e6],
        [
            ("EEE", SKIPPED, "no_snapshot"),
            ("AAA", FILTERED, "prefilter_sector"),
            ("DDD", FILTERED, "prefilter_max_symbols"),
            ("CCC", FILTERED, "prefilter_max_symbols"),
        ],
    )
    assert result.issues()[1].dtype == np.int32 and result.issues()[2].dtype == object


def test_nothing_dropped_leaves_no_issue() -> None:
    result = prefilter(["AAA"], ["CS"], ["XNAS"], ["AAA"], np.array([10.0]), np.array([1e7]), PrefilterSpec())
    symbols, buckets, reasons = result.issues()
    assert (len(symbols), len(buckets), len(reasons)) == (0, 0, 0)
    assert symbols.dtype == object and buckets.dtype == np.int32 and reasons.dtype == object
    assert result.issue_count == 0 and result.issue_symbols == []
    result.cap(5)
    assert result.issue_symbols == [] and result.survivors.tolist() == ["AAA"]


def test_sector_keys_spell_both_sides_alike() -> None:
    assert sector_keys([" Energy", "ENERGY\n", "Real Estate"]).tolist() == ["energy", "energy", "real estate"]
    result = run(PrefilterSpec(types=None, exclude_exchanges=frozenset()))
    result.keep_sectors(["  Real Estate ", "Energy", "real estate", "Utilities"], ["REAL ESTATE  "])
    assert outcome(result)[0] == ["BBB", "AAA"]


def test_lookup_finds_the_first_row_and_misses() -> None:
    assert lookup(["A", "B", "C"], ["A", "C", "Z"]).tolist() == [0, 2, -1]
    assert lookup(np.array(["A", "B"]), np.array(["B"])).tolist() == [1]
