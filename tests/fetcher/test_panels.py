"""Panel assembly on synthetic raw sessions: gather, per-ticker overlay, split adjustment."""

from __future__ import annotations

import numpy as np

from services.fetcher.calendar import as_day
from services.fetcher.panels import Gatherer, adjust, overlay, split_factors, unique
from services.fetcher.polygon import SplitTable, TickerRange
from services.fetcher.store import SessionData, TickerIndex

DAYS = np.array(["2026-11-09", "2026-11-10", "2026-11-11", "2026-11-12", "2026-11-13"], dtype="datetime64[D]")


def session(index: TickerIndex, day: np.datetime64, tickers: list[str], base: float) -> SessionData:
    values = np.array([[base + i, base + i + 1, base + i - 1, base + i + 0.5, 1000.0 * (i + 1), base + i]
                       for i in range(len(tickers))], dtype=np.float32)
    padded = np.vstack([values, np.full((1, 6), np.nan, np.float32)])
    return SessionData(day=day, tickers=tuple(tickers), ids=index.ids(tickers), padded=padded)


def test_gather_maps_rows_by_ticker_and_leaves_nan_for_absent() -> None:
    index = TickerIndex()
    sessions = [session(index, DAYS[0], ["AAA", "BBB"], 10), None,
                session(index, DAYS[2], ["CCC", "BBB", "AAA"], 20)]
    symbols = ["AAA", "ZZZ", "CCC", "BBB"]
    gatherer = Gatherer(sessions, index.ids(symbols, add=False))
    block = gatherer.chunk(0, 4)
    assert block.shape == (4, 3, 5) and block.dtype == np.float32 and block.flags.c_contiguous
    np.testing.assert_array_equal(block[0, 0], [10, 11, 9, 10.5, 1000])
    np.testing.assert_array_equal(block[0, 2], [22, 23, 21, 22.5, 3000])
    assert np.isnan(block[1]).all()  # unknown ticker
    assert np.isnan(block[:, 1]).all()  # missing session
    assert np.isnan(block[2, 0]).all() and block[2, 2, 3] == 20.5
    # A slice gives the same rows as the whole.
    np.testing.assert_array_equal(gatherer.chunk(2, 4), block[2:4])


def test_rows_survive_a_growing_index() -> None:
    index = TickerIndex()
    first = session(index, DAYS[0], ["AAA"], 1)
    first.rows(index.ids(["AAA"]))
    index.ids([f"N{i}" for i in range(100)])
    rows = first.rows(index.ids(["N99", "AAA"], add=False))
    assert list(rows) == [1, 0]
    assert first.rows(np.array([-1, 0]))[0] == 1  # -1: the NaN row


def test_split_factors_divide_prices_before_each_split() -> None:
    table = SplitTable(tickers=["AAA", "BBB", "AAA", "CCC", "BBB"],
                       dates=np.array(["2026-11-11", "2026-11-13", "2026-11-13", "2026-11-12", "2026-12-01"],
                                      dtype="datetime64[D]"),
                       split_from=np.array([1.0, 10.0, 1.0, 1.0, 1.0]),
                       split_to=np.array([4.0, 1.0, 2.0, 3.0, 5.0]))
    symbols = ["BBB", "AAA", "DDD"]
    rows, factors = split_factors(table, symbols, DAYS)
    assert list(rows) == [0, 1]
    # BBB: 1-for-10 reverse split on the 13th (the one in December is after the window).
    np.testing.assert_allclose(factors[0], [0.1, 0.1, 0.1, 0.1, 1.0])
    # AAA: 4-for-1 on the 11th, then 2-for-1 on the 13th.
    np.testing.assert_allclose(factors[1], [8, 8, 2, 2, 1])
    block = np.ones((3, 5, 5), dtype=np.float32) * 100
    adjust(block, rows, factors)
    np.testing.assert_allclose(block[1, :, 3], [12.5, 12.5, 50, 50, 100])
    np.testing.assert_allclose(block[1, :, 4], [800, 800, 200, 200, 100])
    np.testing.assert_allclose(block[0, :, 0], [1000, 1000, 1000, 1000, 100])
    np.testing.assert_array_equal(block[2], 100)


def test_split_on_the_first_session_changes_nothing() -> None:
    table = SplitTable(["AAA"], np.array(["2026-11-09"], dtype="datetime64[D]"), np.array([1.0]), np.array([4.0]))
    rows, factors = split_factors(table, ["AAA"], DAYS)
    assert len(rows) == 0 and factors.shape == (0, 5)


def test_overlay_places_bars_by_day() -> None:
    block = np.full((2, 5, 5), np.nan, dtype=np.float32)
    rng = TickerRange("BBB", np.array(["2026-11-06", "2026-11-10", "2026-11-13"], dtype="datetime64[D]"),
                      np.arange(18, dtype=np.float64).reshape(3, 6))
    overlay(block, DAYS, [(1, rng)])
    np.testing.assert_array_equal(block[1, 1], [6, 7, 8, 9, 10])
    np.testing.assert_array_equal(block[1, 4], [12, 13, 14, 15, 16])
    assert np.isnan(block[0]).all() and np.isnan(block[1, [0, 2, 3]]).all()


def test_unique_keeps_order_and_normalises() -> None:
    assert unique(["aaa", "BBB", " AAA ", "", "ccc", "BBB"]) == ["AAA", "BBB", "CCC"]
    assert as_day("2026-11-13") == DAYS[-1]
