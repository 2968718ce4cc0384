"""The Numba scanner of aggregates bodies agrees with a JSON decoder, or declines."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from services.fetcher.jsonbars import parse_results

KEYS = ("o", "h", "l", "c", "v", "vw", "t")


def expected(body: bytes) -> tuple[list[str], np.ndarray]:
    rows = orjson.loads(body).get("results") or []
    values = np.array([[np.nan if r.get(k) is None else r[k] for k in KEYS] for r in rows], dtype=np.float64)
    return [r.get("T", "") for r in rows], values.reshape(-1, 7)


def check(body: bytes) -> None:
    parsed = parse_results(body)
    assert parsed is not None
    tickers, values = expected(body)
    assert parsed[0] == tickers
    np.testing.assert_array_equal(parsed[1], values)  # bit-exact, NaN where absent


def test_random_rows_are_bit_exact() -> None:
    rng = np.random.default_rng(3)
    rows = []
    for i in range(3000):
        row = {"T": f"T{i}", "v": int(rng.integers(0, 10**9)), "vw": round(float(rng.uniform(0, 5000)), 4),
               "o": round(float(rng.uniform(0.0001, 9000)), 4), "c": round(float(rng.uniform(0, 1)), 6),
               "h": round(float(rng.uniform(0, 100)), 2), "l": -1.5e-3, "t": 1795208400000, "n": 12}
        if i % 7 == 0:
            row["vw"] = None
        if i % 11 == 0:
            del row["h"]
        rows.append(row)
    body = orjson.dumps({"queryCount": 1, "results": rows, "status": "OK", "request_id": "x"})
    check(body)


def test_whitespace_unknown_keys_and_empty_forms() -> None:
    check(b'{ "results" : [ { "T" : "A.B" , "o" : 1E2, "x": true, "y": "s", "n": 3 } ,{"c":2.5e-1,"T":"C"} ] }')
    check(b'{"ticker":"AAA","results":[{"o":1,"t":1795208400000}]}')
    assert parse_results(b'{"status":"OK","resultsCount":0}') == ([], pytest.approx(np.empty((0, 7))))
    tickers, values = parse_results(b'{"results": null, "status": "OK"}')
    assert tickers == [] and values.shape == (0, 7)
    assert parse_results(b'{"results":[]}')[1].shape == (0, 7)


@pytest.mark.parametrize("body", [
    b'{"results":[{"T":"A\\u0041","o":1}]}',  # escapes: decline
    b'{"results":[{"T":"AB","o":1.2345678901234567}]}',  # beyond the exact fast path
    b'{"results":[{"T":"AB","o":{"x":1}}]}',  # nested value
    b'{"results":[{"T":"AB","o":1},{"T":"C',  # truncated
    b'{"results":[{"T":"A\x00B","o":1}]}',  # control byte in a string
    b'{"results":[{"T":"AB","o":1\x00}]}',  # stray byte
    b'{"results":[{"T":"AB","o":"1"}]}',  # a string where a number belongs
    b'{"results" 5}',
])
def test_declines_what_it_cannot_read_exactly(body: bytes) -> None:
    assert parse_results(body) is None
