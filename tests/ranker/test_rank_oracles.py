"""rank, percentile and zscore against hand-computed values and a counting oracle, plus page edges."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.ranker.errors import RankerInputError
from services.ranker.rank import (
    MAX_LIMIT,
    FilterSpec,
    RangeSpec,
    apply_filters,
    check_filters,
    order,
    page_spec,
    percentile,
    rank,
    window,
    zscore,
)
from tests.ranker.oracles import percentile_of

NAN = float("nan")


def same(actual: np.ndarray, expected: list[float]) -> None:
    np.testing.assert_allclose(actual, np.array(expected, dtype=np.float64), rtol=0, atol=1e-12, equal_nan=True)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([10.0, 20.0, 30.0, NAN, 40.0], [0.0, 100 / 3, 200 / 3, NAN, 100.0]),
        ([5.0, 5.0, 7.0], [25.0, 25.0, 100.0]),  # ties share the average rank 1.5 of 1..3
        ([7.0, 5.0, 5.0, 5.0], [100.0, 100 / 3, 100 / 3, 100 / 3]),  # three tied at rank 2 of 4
        ([4.0], [50.0]),  # a group of one
        ([4.0, NAN, np.inf], [50.0, NAN, NAN]),  # one finite value among non-finite ones
        ([1.0, 2.0], [0.0, 100.0]),  # a group of two: lowest 0, highest 100
        ([3.0, 3.0], [50.0, 50.0]),  # two tied
        ([NAN, NAN], [NAN, NAN]),
        ([], []),
    ],
)
def test_percentile_by_hand(values: list[float], expected: list[float]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning escapes (0 / 0 of a group of one)
        got = percentile(np.array(values, dtype=np.float64))
    same(got, expected)
    same(got, percentile_of(values))


def test_sector_percentiles_by_hand() -> None:
    values = [3.0, 1.0, 1.0, 9.0, 1.0, NAN, 2.0, -np.inf, 8.0]
    sectors = ["A", "B", "A", "C", "B", "A", "D", "D", "A"]
    # A: 3, 1, 8 (NaN out) -> 50, 0, 100; B: two tied at 1 -> 50, 50; C: alone -> 50; D: 2 alone (-inf out) -> 50.
    expected = [50.0, 50.0, 0.0, 50.0, 50.0, NAN, 50.0, NAN, 100.0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = percentile(np.array(values), groups=np.array(sectors, dtype=object))
    same(got, expected)
    same(got, percentile_of(values, sectors))


def test_masked_rows_take_no_part() -> None:
    values = np.array([1.0, 2.0, 3.0, 4.0])
    mask = np.array([True, False, True, True])
    same(percentile(values, mask), [0.0, NAN, 50.0, 100.0])
    same(percentile(values, mask, groups=["x", "x", "y", "y"]), [50.0, NAN, 0.0, 100.0])


def test_a_missing_sector_is_a_group_of_its_own() -> None:
    same(percentile(np.array([1.0, 2.0, 3.0]), groups=np.array([None, "A", None], dtype=object)), [0.0, 50.0, 100.0])


finite = st.floats(-1e6, 1e6, allow_nan=False) | st.sampled_from([0.0, 1.0, 2.0])  # small pools make ties


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(finite | st.just(NAN), st.sampled_from("ABC"), st.booleans()), max_size=30))
def test_percentile_matches_the_counting_oracle(rows: list[tuple[float, str, bool]]) -> None:
    values = [v for v, _, _ in rows]
    groups = [g for _, g, _ in rows]
    mask = [m for _, _, m in rows]
    x = np.array(values, dtype=np.float64)
    same(percentile(x), percentile_of(values))
    same(percentile(x, np.array(mask, dtype=bool), np.array(groups, dtype=object)), percentile_of(values, groups, mask))


def test_rank_by_hand() -> None:
    x = np.array([1.0, 2.0, 2.0, NAN])
    same(rank(x), [1.0, 2.5, 2.5, NAN])
    same(rank(x, ascending=False), [3.0, 1.5, 1.5, NAN])
    same(rank(x, mask=np.array([True, True, False, True])), [1.0, 2.0, NAN, NAN])
    groups = np.array(["a", "b", "a", "b"], dtype=object)
    same(rank(np.array([5.0, 1.0, 3.0, 2.0]), groups=groups), [2.0, 1.0, 1.0, 2.0])
    same(rank(np.array([5.0, 1.0, 3.0, 2.0]), groups=groups, ascending=False), [1.0, 2.0, 2.0, 1.0])
    same(
        rank(np.array([5.0, 5.0, 3.0, 2.0]), groups=np.array(["a", "a", "a", "b"], dtype=object)), [2.5, 2.5, 1.0, 1.0]
    )


def test_zscore_by_hand() -> None:
    # Population standard deviation: [1, 2, 3] has mean 2 and std sqrt(2/3).
    s = np.sqrt(2 / 3)
    same(zscore(np.array([1.0, 2.0, 3.0, NAN])), [-1 / s, 0.0, 1 / s, NAN])
    same(zscore(np.array([1.0, 2.0, 3.0]), mask=np.array([True, False, True])), [-1.0, NAN, 1.0])
    same(
        zscore(np.array([1.0, 5.0, 3.0, 9.0]), groups=np.array(["a", "b", "a", "b"], dtype=object)),
        [-1.0, -1.0, 1.0, 1.0],
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a group without spread (or of one) divides 0 by 0 silently
        same(zscore(np.array([3.0])), [0.0])
        same(zscore(np.array([3.0, 3.0, NAN]), groups=np.array(["a", "a", "b"], dtype=object)), [0.0, 0.0, NAN])


def test_zscore_spread_tolerance_edges() -> None:
    """A spread of at most 1e-12 (times the mean's size when that is above 1) counts as none."""
    same(zscore(np.array([-1e-12, 1e-12])), [0.0, 0.0])  # std exactly 1e-12: no spread
    same(zscore(np.array([-1.5e-12, 1.5e-12])), [-1.0, 1.0])  # just above it: scored
    same(zscore(np.array([1e6 - 1e-7, 1e6 + 1e-7])), [0.0, 0.0])  # 1e-7 < 1e-12 * 1e6: none
    same(zscore(np.array([1e6 - 1e-5, 1e6 + 1e-5])), [-1.0, 1.0])


def test_page_spec_edges() -> None:
    assert page_spec("", False, 0, MAX_LIMIT).limit == MAX_LIMIT
    spec = page_spec("", True, 3, 0)
    assert (spec.sort_by, spec.ascending, spec.offset, spec.limit) == ("composite_score", True, 3, 100)
    assert page_spec("rsi_14", False, 0, 7).sort_by == "rsi_14"


def test_window() -> None:
    assert window(np.arange(10), 2, 3).tolist() == [2, 3, 4]
    assert window(np.arange(10), 8, 5).tolist() == [8, 9]


def test_an_object_column_with_none_counts_none_as_missing() -> None:
    same(percentile(np.array([1.0, None, 3.0], dtype=object)), [0.0, NAN, 100.0])


def filter_columns(n: int = 4, **values: list[object]) -> dict[str, np.ndarray]:
    cols: dict[str, np.ndarray] = {
        "last_close": np.full(n, 50.0),
        "avg_dollar_volume": np.full(n, 1e9),
        "tech_rating": np.full(n, 50.0),
        "sector": np.array(["Energy"] * n, dtype=object),
        "signal": np.array(["Long"] * n, dtype=object),
    }
    for name, column in values.items():
        cols[name] = np.array(column, dtype=object if isinstance(column[0], str) else np.float64)
    return cols


def test_each_floor_keeps_a_value_equal_to_it() -> None:
    cols = filter_columns(
        last_close=[5.0, 4.99, 9.0, 9.0], avg_dollar_volume=[1e9, 1e9, 5e6, 4e6], tech_rating=[40.0, 40.0, 40.0, 39.9]
    )
    spec = FilterSpec(min_price=5.0, min_dollar_volume=5e6, min_tech_rating=40.0)
    assert apply_filters(spec, cols, 4).tolist() == ["", "min_price", "", "min_dollar_volume"]
    cols = filter_columns(tech_rating=[40.0, 39.9, np.nan, 40.0], last_close=[1.0, 1.0, 1.0, np.nan])
    assert apply_filters(FilterSpec(min_tech_rating=40.0), cols, 4).tolist() == [
        "",
        "min_tech_rating",
        "min_tech_rating",
        "",
    ]
    assert apply_filters(FilterSpec(min_price=1.0), cols, 4).tolist() == ["", "", "", "min_price"]


def test_a_zero_rating_floor_is_off_and_a_small_one_is_on() -> None:
    cols = filter_columns(tech_rating=[np.nan, -1.0, 0.3, 0.6])
    assert apply_filters(FilterSpec(min_tech_rating=0.0), cols, 4).tolist() == ["", "", "", ""]
    assert apply_filters(FilterSpec(min_tech_rating=0.5), cols, 4).tolist() == [
        "min_tech_rating",
        "min_tech_rating",
        "min_tech_rating",
        "",
    ]


def test_dollar_volume_and_signal_filters_name_themselves() -> None:
    cols = filter_columns(avg_dollar_volume=[1e7, 1e5, np.nan, 1e7], signal=["Long", "Long", "Long", "Avoid"])
    spec = FilterSpec(min_dollar_volume=1e6, signals=("Long", "Strong Long"))
    assert apply_filters(spec, cols, 4).tolist() == ["", "min_dollar_volume", "min_dollar_volume", "signals"]


def test_ranges_with_one_bound_or_both_keep_their_ends() -> None:
    cols = filter_columns(rsi_14=[30.0, 40.0, 50.0, np.nan])
    for spec, expected in [
        (RangeSpec("rsi_14", 40.0, None), ["range:rsi_14", "", "", "range:rsi_14"]),
        (RangeSpec("rsi_14", None, 40.0), ["", "", "range:rsi_14", "range:rsi_14"]),
        (RangeSpec("rsi_14", 30.0, 50.0), ["", "", "", "range:rsi_14"]),
        (RangeSpec("rsi_14", 40.0, 40.0), ["range:rsi_14", "", "range:rsi_14", "range:rsi_14"]),
        (RangeSpec("rsi_14"), ["", "", "", "range:rsi_14"]),  # no bound: only a missing value fails
    ]:
        assert apply_filters(FilterSpec(ranges=(spec,)), cols, 4).tolist() == expected, spec


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (FilterSpec(sectors=("Crypto", "Moon")), "unknown sector(s) Crypto, Moon; allowed: Energy"),
        (FilterSpec(signals=("Up", "Down")), "unknown signal(s) Up, Down; allowed: Long, Short"),
        (FilterSpec(min_tech_rating=100.5), "min_tech_rating must lie in [0, 100], got 100.5"),
        (FilterSpec(min_tech_rating=-0.5), "min_tech_rating must lie in [0, 100], got -0.5"),
        (FilterSpec(min_price=-1.0), "min_price must be a finite number >= 0, got -1.0"),
        (FilterSpec(min_price=float("inf")), "min_price must be a finite number >= 0, got inf"),
        (FilterSpec(min_dollar_volume=float("nan")), "min_dollar_volume must be a finite number >= 0, got nan"),
        (FilterSpec(min_dollar_volume=-0.5), "min_dollar_volume must be a finite number >= 0, got -0.5"),
        (FilterSpec(ranges=(RangeSpec("rsi_14", 2.0, 1.0),)), "range on 'rsi_14' has min 2.0 > max 1.0"),
        (FilterSpec(ranges=(RangeSpec("shoe", 1.0),)), "unknown range column 'shoe'; allowed: rsi_14"),
    ],
)
def test_bad_filters_are_named_exactly(spec: FilterSpec, message: str) -> None:
    with pytest.raises(RankerInputError) as err:
        check_filters(spec, ["Energy"], ["Long", "Short"], ["rsi_14"])
    assert str(err.value) == message


def test_good_filters_at_their_limits_pass() -> None:
    for spec in (
        FilterSpec(min_tech_rating=100.0),
        FilterSpec(min_tech_rating=0.0),
        FilterSpec(min_price=0.0),
        FilterSpec(min_dollar_volume=0.0),
        FilterSpec(min_price=0.5, min_dollar_volume=0.5),
        FilterSpec(ranges=(RangeSpec("rsi_14", 3.0, 3.0),)),
        FilterSpec(ranges=(RangeSpec("x", 1.0),)),
    ):
        check_filters(spec, ["Energy"], ["Long"], None)


def test_order_is_stable_for_ties_and_puts_nan_last() -> None:
    x = np.array([1.0, 0.0, 2.0] * 20 + [np.nan] * 3)
    up, down = order(x, True), order(x, False)
    assert up.tolist() == [*range(1, 60, 3), *range(0, 60, 3), *range(2, 60, 3), 60, 61, 62]
    assert down.tolist() == [*range(2, 60, 3), *range(0, 60, 3), *range(1, 60, 3), 60, 61, 62]


def test_order_of_text_both_ways_with_ties() -> None:
    text = np.array(["b", "a", "c"] * 20, dtype=object)
    up = order(text, True).tolist()
    assert up == [*range(1, 60, 3), *range(0, 60, 3), *range(2, 60, 3)]
    assert order(text, False).tolist() == [*range(2, 60, 3), *range(0, 60, 3), *range(1, 60, 3)]
    assert order(np.array([], dtype=object), False).tolist() == []


def test_order_of_unsigned_and_boolean_columns() -> None:
    assert order(np.array([1, 3, 2], dtype=np.uint32), False).tolist() == [1, 2, 0]
    assert order(np.array([True, False, True]), False).tolist() == [0, 2, 1]
    assert order(np.array([True, False, True]), True).tolist() == [1, 0, 2]
