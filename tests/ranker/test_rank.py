"""Cross-sectional helpers (properties), filters, sort and pages."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from services.ranker.errors import RankerInputError
from services.ranker.rank import (
    FilterSpec,
    RangeSpec,
    apply_filters,
    check_filters,
    order,
    page_spec,
    percentile,
    rank,
    zscore,
)

floats = st.floats(min_value=-1e6, max_value=1e6) | st.just(float("nan"))
columns = st.integers(1, 60).flatmap(
    lambda n: st.tuples(
        hnp.arrays(np.float64, n, elements=floats),
        hnp.arrays(np.int64, n, elements=st.integers(0, 3)),
        hnp.arrays(np.bool_, n),
    )
)


@settings(max_examples=150, deadline=None)
@given(columns)
def test_ranks_are_permutations_and_percentiles_bounded(data: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    values, _, _ = data
    valid = np.isfinite(values)
    r_avg = rank(values)
    k = int(valid.sum())
    assert r_avg[valid].sum() == pytest.approx(k * (k + 1) / 2)  # tied ranks average out
    # Distinct values (the order of the values, ties broken by position): ranks are a permutation.
    distinct = np.where(valid, np.argsort(np.argsort(np.where(valid, values, 0.0), kind="stable")), np.nan)
    r = rank(distinct)
    assert sorted(r[valid].astype(int).tolist()) == list(range(1, int(valid.sum()) + 1))
    assert np.isnan(r[~valid]).all()
    p = percentile(values)
    assert ((p[valid] >= 0) & (p[valid] <= 100)).all()
    assert np.isnan(p[~valid]).all()


@settings(max_examples=150, deadline=None)
@given(columns)
def test_group_statistics_use_only_their_group(data: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    values, codes, mask = data
    groups = np.array(["Energy", "Utilities", "Technology", "Financials"], dtype=object)[codes]
    p = percentile(values, mask, groups)
    z = zscore(values, mask, groups)
    for g in set(groups):
        inside = groups == g
        alone_p = percentile(values[inside], mask[inside])
        alone_z = zscore(values[inside], mask[inside])
        np.testing.assert_allclose(p[inside], alone_p, equal_nan=True)
        np.testing.assert_allclose(z[inside], alone_z, equal_nan=True, atol=1e-9)
    assert np.isnan(p[~mask]).all()


def test_percentile_and_zscore_values() -> None:
    x = np.array([10.0, 20.0, 30.0, np.nan, 40.0])
    assert percentile(x).tolist()[:3] == pytest.approx([0, 100 / 3, 200 / 3])
    assert percentile(np.array([5.0]))[0] == 50.0
    z = zscore(x)
    assert np.nanmean(z) == pytest.approx(0) and np.nanstd(z) == pytest.approx(1)
    assert zscore(np.array([3.0, 3.0])).tolist() == [0.0, 0.0]
    assert rank(np.array([1.0, 2.0, 2.0]), ascending=False).tolist() == [3.0, 1.5, 1.5]


def test_filters_name_the_first_failing_filter() -> None:
    cols = {
        "last_close": np.array([4.0, 50.0, 50.0, 50.0, 50.0]),
        "avg_dollar_volume": np.array([1e9, 1e9, 1e9, 1e9, 1e9]),
        "sector": np.array(["Energy", "Energy", "Utilities", "Energy", "Energy"], dtype=object),
        "tech_rating": np.array([90.0, 90.0, 90.0, 20.0, 90.0]),
        "signal": np.array(["Long"] * 5, dtype=object),
        "rsi_14": np.array([50.0, 50.0, 50.0, 50.0, np.nan]),
    }
    spec = FilterSpec(min_price=5, sectors=("Energy",), min_tech_rating=30, ranges=(RangeSpec("rsi_14", 40, 60),))
    assert apply_filters(spec, cols, 5).tolist() == ["min_price", "", "sectors", "min_tech_rating", "range:rsi_14"]


def test_bad_options_list_the_allowed_values() -> None:
    with pytest.raises(RankerInputError, match="allowed: Energy, Utilities"):
        check_filters(FilterSpec(sectors=("Crypto",)), ["Utilities", "Energy"], ["Long"], None)
    with pytest.raises(RankerInputError, match="allowed: Long, Short"):
        check_filters(FilterSpec(signals=("Moon",)), [], ["Long", "Short"], None)
    with pytest.raises(RankerInputError, match="allowed: rsi_14, tech_rating"):
        check_filters(FilterSpec(ranges=(RangeSpec("nope", 1),)), [], [], ["tech_rating", "rsi_14"])
    with pytest.raises(RankerInputError, match="min 2 > max 1"):
        check_filters(FilterSpec(ranges=(RangeSpec("rsi_14", 2, 1),)), [], [], None)
    with pytest.raises(RankerInputError, match="limit"):
        page_spec("", False, 0, -1)
    with pytest.raises(RankerInputError, match="offset"):
        page_spec("", False, -5, 10)
    assert page_spec("", False, 0, 0).limit == 100


def test_order_puts_nan_last_both_ways() -> None:
    x = np.array([2.0, np.nan, 1.0, 3.0])
    assert order(x, True).tolist() == [2, 0, 3, 1]
    assert order(x, False).tolist() == [3, 0, 2, 1]
    assert order(np.array(["b", "a", "c"], dtype=object), True).tolist() == [1, 0, 2]
