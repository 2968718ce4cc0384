"""Blocks from raw sessions: the gatherer, the session stack, per-ticker overlay."""

from __future__ import annotations

import numpy as np

from services.fetcher.gather import Gatherer, overlay
from services.fetcher.polygon import TickerRange
from services.fetcher.stack import SessionStack
from services.fetcher.store import SessionData
from services.fetcher.tickers import TickerIndex

DAYS = np.array(["2026-11-09", "2026-11-10", "2026-11-11", "2026-11-12", "2026-11-13"], dtype="datetime64[D]")


def session(index: TickerIndex, day: np.datetime64, tickers: list[str], base: float) -> SessionData:
    values = np.array(
        [
            [base + i, base + i + 1, base + i - 1, base + i + 0.5, 1000.0 * (i + 1), base + i]
            for i in range(len(tickers))
        ],
        dtype=np.float32,
    )
    padded = np.vstack([values, np.full((1, 6), np.nan, np.float32)])
    return SessionData(day=day, ids=index.ids(tickers), padded=padded)


def test_gather_maps_rows_by_ticker_and_leaves_nan_for_absent() -> None:
    index = TickerIndex()
    sessions = [session(index, DAYS[0], ["AAA", "BBB"], 10), None, session(index, DAYS[2], ["CCC", "BBB", "AAA"], 20)]
    symbols = ["AAA", "ZZZ", "CCC", "BBB"]
    ids = index.ids(symbols, add=False)
    gatherer = Gatherer(sessions)
    block = gatherer.chunk(ids)
    assert block.shape == (4, 3, 5) and block.dtype == np.float32 and block.flags.c_contiguous
    np.testing.assert_array_equal(block[0, 0], [10, 11, 9, 10.5, 1000])
    np.testing.assert_array_equal(block[0, 2], [22, 23, 21, 22.5, 3000])
    assert np.isnan(block[1]).all()  # unknown ticker
    assert np.isnan(block[:, 1]).all()  # missing session
    assert np.isnan(block[2, 0]).all() and block[2, 2, 3] == 20.5
    # Some of the symbols give the same rows as the whole.
    np.testing.assert_array_equal(gatherer.chunk(ids[2:4]), block[2:4])


def test_rows_survive_a_growing_index() -> None:
    index = TickerIndex()
    first = session(index, DAYS[0], ["AAA"], 1)
    first.rows(index.ids(["AAA"]))
    index.ids([f"N{i}" for i in range(100)])
    rows = first.rows(index.ids(["N99", "AAA"], add=False))
    assert list(rows) == [1, 0]
    assert first.rows(np.array([-1, 0]))[0] == 1  # -1: the NaN row


def test_overlay_places_bars_by_day() -> None:
    block = np.full((2, 5, 5), np.nan, dtype=np.float32)
    rng = TickerRange(
        "BBB",
        np.array(["2026-11-06", "2026-11-10", "2026-11-13"], dtype="datetime64[D]"),
        np.arange(18, dtype=np.float64).reshape(3, 6),
    )
    overlay(block, DAYS, [(1, rng)])
    np.testing.assert_array_equal(block[1, 1], [6, 7, 8, 9, 10])
    np.testing.assert_array_equal(block[1, 4], [12, 13, 14, 15, 16])
    assert np.isnan(block[0]).all() and np.isnan(block[1, [0, 2, 3]]).all()


def test_stack_takes_the_same_chunks_as_the_gatherer_and_follows_new_sessions() -> None:
    index = TickerIndex()
    sessions: list[SessionData | None] = [
        session(index, DAYS[0], ["AAA", "BBB"], 10),
        None,
        session(index, DAYS[2], ["CCC", "BBB", "AAA"], 20),
        session(index, DAYS[3], ["BBB"], 30),
        session(index, DAYS[4], ["AAA", "CCC"], 40),
    ]
    symbols = ["CCC", "ZZZ", "AAA", "BBB"]
    ids = index.ids(symbols, add=False)
    stack = SessionStack(max_slots=4)
    # Calendar positions 100..102, then the window moves on by two sessions.
    assert stack.load(100, sessions[:3], len(index))
    np.testing.assert_array_equal(stack.take(ids, 100, 3), Gatherer(sessions[:3]).chunk(ids))
    assert stack.load(102, sessions[2:], len(index))
    np.testing.assert_array_equal(stack.take(ids[1:3], 102, 3), Gatherer(sessions[2:]).chunk(ids[1:3]))
    # A session fetched again (a new object) replaces its slot; one that failed since is NaN again.
    again = session(index, DAYS[3], ["BBB", "CCC"], 50)
    assert stack.load(102, [None, again, sessions[4]], len(index))
    block = stack.take(ids, 102, 3)
    assert np.isnan(block[:, 0]).all()
    assert block[0, 1, 3] == 51.5 and block[3, 1, 3] == 50.5 and block[2, 2, 3] == 40.5
    # Tickers first seen after the stack was built get rows too.
    late = session(index, DAYS[4], ["NEW", "AAA"], 60)
    assert stack.load(102, [None, again, late], len(index))
    assert stack.take(index.ids(["NEW"], add=False), 102, 3)[0, 2, 3] == 60.5
    # Many new listings: the stack grows its rows and keeps what it held.
    crowd = session(index, DAYS[4], [f"X{i}" for i in range(700)], 70)
    assert stack.load(102, [None, again, crowd], len(index))
    block = stack.take(index.ids(["CCC", "X699"], add=False), 102, 3)
    assert block[0, 1, 3] == 51.5 and block[1, 2, 3] == 769.5
    # A window far from the span moves it; a window longer than the stack holds is left to the gatherer.
    assert stack.holds(102, [None, again, crowd]) and not stack.holds(102, [None, again, late])
    assert stack.load(900, sessions[:3], len(index))
    assert stack.holds(900, sessions[:3]) and not stack.holds(102, [None, again, crowd])
    np.testing.assert_array_equal(stack.take(ids, 900, 3), Gatherer(sessions[:3]).chunk(ids))
    assert not stack.load(100, sessions, len(index))
