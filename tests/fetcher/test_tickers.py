"""The ticker index: dense ids, the same whether a ticker comes as a string or as bytes of a body."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from services.fetcher.jsonbars import parse_results
from services.fetcher.tickers import WIDTH, TickerIndex


def spans_of(tickers: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The tickers as a parsed body gives them: a byte buffer and (start, length) rows."""
    body = ('{"results":[' + ",".join(f'{{"T":"{t}","o":1}}' if t else '{"o":1}' for t in tickers) + "]}").encode()
    parsed = parse_results(body)
    assert parsed is not None
    return parsed.buf, parsed.spans


def test_ids_are_dense_stable_and_named() -> None:
    index = TickerIndex(capacity=4)
    assert list(index.ids(["B", "A", "B"])) == [0, 1, 0]
    assert list(index.ids(["C", "A", "NOPE"], add=False)) == [-1, 1, -1]
    assert len(index) == 2
    assert index.names(np.array([1, 0])) == ["A", "B"]


def test_spans_match_strings_through_growth_long_and_empty_tickers() -> None:
    index = TickerIndex(capacity=4)
    long_one = "L" * (WIDTH + 3)  # beyond the hash table's width: matched through the dict
    known = [f"K{i}" for i in range(700)] + [long_one]
    index.ids(known)
    fresh = [f"N{i}.WS" for i in range(3000)]
    tickers = [*fresh[:1500], *known[::-1], "", *fresh[1500:], fresh[0]]
    buf, spans = spans_of(tickers)
    ids = index.ids_of_spans(buf, spans)
    assert len(index) == len(known) + len(fresh) + 1  # "" is a ticker too, as before
    np.testing.assert_array_equal(ids, index.ids(tickers, add=False))
    assert index.names(ids) == tickers
    # Asked again, every one is found in the table (ids unchanged, nothing added).
    np.testing.assert_array_equal(index.ids_of_spans(buf, spans), ids)
    assert len(index) == len(known) + len(fresh) + 1


def test_threads_adding_the_same_tickers_agree() -> None:
    index = TickerIndex(capacity=8)
    tickers = [f"T{i}" for i in range(5000)]
    buf, spans = spans_of(tickers)
    results: list[np.ndarray] = []

    def work(order: int) -> None:
        if order % 2:
            results.append(index.ids_of_spans(buf, spans))
        else:
            results.append(index.ids(tickers))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(index) == len(tickers)
    for ids in results:
        np.testing.assert_array_equal(ids, results[0])
    assert sorted(results[0].tolist()) == list(range(len(tickers)))


def test_known_tickers_are_found_without_decoding_a_string(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only tickers the index has not seen are decoded: the rest come from the hash table."""
    index = TickerIndex(capacity=3)  # rounded up to 4, then grown with what it holds
    tickers = ["A", "B" * WIDTH, *[f"X{i}" for i in range(40)], "C" * (WIDTH + 1)]
    index.ids(tickers[:3])
    index.ids(tickers[3:20])
    buf, spans = spans_of(tickers)
    decoded: list[str] = []
    original = TickerIndex._ids_locked

    def spy(self: TickerIndex, names: list[str], add: bool) -> np.ndarray:
        decoded.extend(names)
        return original(self, names, add)

    monkeypatch.setattr(TickerIndex, "_ids_locked", spy)
    first = index.ids_of_spans(buf, spans)
    assert decoded == tickers[20:]  # the unseen ones, and the one too wide for the table
    decoded.clear()
    np.testing.assert_array_equal(index.ids_of_spans(buf, spans), first)
    assert decoded == [tickers[-1]], "every ticker of at most WIDTH bytes is in the table"
    assert first.tolist() == list(range(len(tickers))) and len(index) == len(tickers)


def test_ids_accept_any_iterable_and_names_come_back() -> None:
    index = TickerIndex(capacity=1)
    assert index.ids(iter(["Q", "R", "Q"])).tolist() == [0, 1, 0]
    assert index.ids(("R", "S")).tolist() == [1, 2]
    assert index.ids(["T"], add=False).tolist() == [-1] and len(index) == 3
    assert index.names(np.array([2, 0, 1])) == ["S", "Q", "R"]


def test_growing_a_nearly_full_index_keeps_every_ticker() -> None:
    index = TickerIndex(capacity=4)
    assert index.ids(["A", "B", "C"]).tolist() == [0, 1, 2]
    assert index.ids(["D", "E"]).tolist() == [3, 4]  # 5 > 4: the index grows
    assert index.names(np.arange(5)) == ["A", "B", "C", "D", "E"]
