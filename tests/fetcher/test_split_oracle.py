"""The split adjustment of panels against a plain-Python oracle: which rows, which factors, applied how."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from services.fetcher.polygon import SplitTable
from services.fetcher.splits import adjust, split_factors

SESSIONS = np.array(
    ["2026-11-09", "2026-11-10", "2026-11-11", "2026-11-12", "2026-11-13", "2026-11-16"], dtype="datetime64[D]"
)
SYMBOLS = ["AAA", "BBB", "CCC", "DDD"]


def oracle(table: SplitTable, symbols: list[str], sessions: np.ndarray) -> dict[int, list[float]]:
    """Row -> factor per session: the product of split_to / split_from of every split of the row's ticker
    dated after that session and at most the last one."""
    out: dict[int, list[float]] = {}
    for ticker, day, before, after in zip(table.tickers, table.dates, table.split_from, table.split_to, strict=True):
        if ticker not in symbols or not sessions[0] < day <= sessions[-1]:
            continue
        row = out.setdefault(symbols.index(ticker), [1.0] * len(sessions))
        for t, session in enumerate(sessions):
            if session < day:
                row[t] *= after / before
    return out


splits = st.lists(
    st.tuples(
        st.sampled_from([*SYMBOLS, "ZZZ"]),
        st.integers(0, 12),
        st.sampled_from([1.0, 2.0, 3.0, 10.0]),
        st.sampled_from([1.0, 2.0, 4.0, 5.0]),
    ),
    max_size=8,
)


@settings(max_examples=200, deadline=None)
@given(splits, st.permutations(SYMBOLS))
def test_factors_match_the_oracle(events: list[tuple[str, int, float, float]], symbols: list[str]) -> None:
    table = SplitTable(
        tickers=[e[0] for e in events],
        dates=np.array([np.datetime64("2026-11-06") + e[1] for e in events], dtype="datetime64[D]"),
        split_from=np.array([e[2] for e in events]),
        split_to=np.array([e[3] for e in events]),
    )
    rows, factors = split_factors(table, symbols, SESSIONS)
    expected = oracle(table, symbols, SESSIONS)
    assert rows.dtype == np.int64 and rows.tolist() == sorted(expected)
    assert factors.shape == (len(rows), len(SESSIONS))
    for row, got in zip(rows.tolist(), factors.tolist(), strict=True):
        assert all(math.isclose(a, b, rel_tol=1e-12) for a, b in zip(got, expected[row], strict=True)), (row, got)


def test_edges_of_the_window() -> None:
    table = SplitTable(
        ["AAA", "AAA", "BBB", "CCC"],
        np.array(["2026-11-09", "2026-11-16", "2026-11-17", "2026-11-14"], dtype="datetime64[D]"),
        np.array([1.0, 1.0, 1.0, 2.0]),
        np.array([3.0, 2.0, 7.0, 1.0]),
    )
    rows, factors = split_factors(table, SYMBOLS, SESSIONS)
    # AAA: the split on the first session has no earlier bar; the one on the last session halves the rest.
    # BBB: after the window. CCC: 1-for-2 on a Saturday, before the Monday that closes the window.
    assert rows.tolist() == [0, 2]
    assert factors.tolist() == [[2.0] * 5 + [1.0], [0.5] * 5 + [1.0]]


def test_nothing_to_adjust() -> None:
    empty = SplitTable([], np.array([], dtype="datetime64[D]"), np.array([]), np.array([]))
    for table, symbols in (
        (empty, SYMBOLS),
        (SplitTable(["AAA"], np.array(["2026-11-12"], dtype="datetime64[D]"), np.array([1.0]), np.array([2.0])), []),
        (
            SplitTable(["ZZZ"], np.array(["2026-11-12"], dtype="datetime64[D]"), np.array([1.0]), np.array([2.0])),
            SYMBOLS,
        ),
    ):
        rows, factors = split_factors(table, symbols, SESSIONS)
        assert rows.dtype == np.int64 and rows.tolist() == []
        assert factors.shape == (0, len(SESSIONS)) and factors.dtype == np.float64


def test_adjust_divides_prices_and_multiplies_volume_of_the_rows_only() -> None:
    block = np.arange(2 * 3 * 5, dtype=np.float32).reshape(2, 3, 5) * np.float32(1.37) + np.float32(1.0)
    original = block.copy()
    factors = np.array([[0.37, 3.3, 1.7]])  # applied in float32, as the block is (float64 rounds differently)
    adjust(block, np.array([1]), factors)
    np.testing.assert_array_equal(block[0], original[0])
    np.testing.assert_array_equal(block[1, :, :4], original[1, :, :4] / factors[0][:, None].astype(np.float32))
    np.testing.assert_array_equal(block[1, :, 4], original[1, :, 4] * factors[0].astype(np.float32))
    assert block.dtype == np.float32
    unchanged = original.copy()
    adjust(unchanged, np.zeros(0, dtype=np.int64), np.ones((0, 3)))
    np.testing.assert_array_equal(unchanged, original)
