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
    assert parsed.tickers() == tickers
    np.testing.assert_array_equal(parsed.values, values)  # bit-exact, NaN where absent
    assert body[parsed.start : parsed.end].startswith((b"[", b"null")) or parsed.start == len(body)


def test_random_rows_are_bit_exact() -> None:
    rng = np.random.default_rng(3)
    rows = []
    for i in range(3000):
        row = {
            "T": f"T{i}",
            "v": int(rng.integers(0, 10**9)),
            "vw": round(float(rng.uniform(0, 5000)), 4),
            "o": round(float(rng.uniform(0.0001, 9000)), 4),
            "c": round(float(rng.uniform(0, 1)), 6),
            "h": round(float(rng.uniform(0, 100)), 2),
            "l": -1.5e-3,
            "t": 1795208400000,
            "n": 12,
        }
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
    for body in (b'{"status":"OK","resultsCount":0}', b'{"results": null, "status": "OK"}', b'{"results":[]}'):
        parsed = parse_results(body)
        assert parsed is not None and parsed.tickers() == [] and parsed.values.shape == (0, 7)


def test_numbers_of_every_length_and_form() -> None:
    """Digit runs of 1 to 16 bytes (read 8 at a time), around the decimal point, signs and exponents."""
    rng = np.random.default_rng(11)
    texts = []
    for digits in range(1, 16):
        for point in range(digits + 1):
            mantissa = str(int(rng.integers(10 ** (digits - 1), 10**digits)))
            text = mantissa if point == digits else f"{mantissa[:point] or '0'}.{mantissa[point:]}"
            if sum(ch.isdigit() for ch in text) <= 15:  # more would leave the exact fast path
                texts += [text, "-" + text]
    texts += ["0", "-0", "1e3", "1E-3", "2.5e+2", "7e0", "123456789012345", "0.00000000000001"]
    body = ('{"results":[' + ",".join(f'{{"T":"X{i}","o":{t}}}' for i, t in enumerate(texts)) + "]}").encode()
    check(body)


def test_a_body_denser_than_the_row_estimate_is_still_read() -> None:
    check(b'{"results":[' + b",".join([b'{"o":1}'] * 5000) + b"]}")


def test_next_page_link_is_found_outside_the_rows() -> None:
    body = b'{"results":[{"T":"A","o":1}],"next_url":"https://x/next"}'
    parsed = parse_results(body)
    assert parsed is not None and b'"next_url"' in body[parsed.end :]


@pytest.mark.parametrize(
    "body",
    [
        b'{"results":[{"T":"A\\u0041","o":1}]}',  # escapes: decline
        b'{"results":[{"T":"AB","o":1.2345678901234567}]}',  # beyond the exact fast path
        b'{"results":[{"T":"AB","o":{"x":1}}]}',  # nested value
        b'{"results":[{"T":"AB","o":1},{"T":"C',  # truncated
        b'{"results":[{"T":"A\x00B","o":1}]}',  # control byte in a string
        b'{"results":[{"T":"AB","o":1\x00}]}',  # stray byte
        b'{"results":[{"T":"AB","o":"1"}]}',  # a string where a number belongs
        b'{"results" 5}',
        b'{"results":[{"T":"AB","o":12345678901234567}]}',  # 17 digits
        b'{"results":[{"T":"AB","o":0.000000000000001}]}',  # 16 digits with the leading zero
        b'{"results":[{"T":"AB","o":1.}]}',  # no digit after the point
        b'{"results":[{"T":"AB","o":-}]}',  # a sign alone
        b'{"results":[{"T":"AB","o":1e}]}',  # an exponent without digits
        b'{"results":[{"T":"AB","o":1e400}]}',  # beyond the exact powers of ten
        b'{"results":[{"T":"AB","o":true}]}',  # a literal where a number belongs
        b'{"results":[{"T":"AB","x":nul}]}',  # a broken literal
    ],
)
def test_declines_what_it_cannot_read_exactly(body: bytes) -> None:
    assert parse_results(body) is None


def test_a_body_without_rows_gives_empty_arrays_of_the_row_shapes() -> None:
    for body in (b'{"status":"OK"}', b'{"results":null}', b'{"results":[]}'):
        parsed = parse_results(body)
        assert parsed is not None
        assert parsed.values.shape == (0, 7) and parsed.values.dtype == np.float64
        assert parsed.spans.shape == (0, 2) and parsed.spans.dtype == np.int64


def test_the_first_results_key_is_the_array_even_when_a_row_has_one() -> None:
    check(b'{"results":[{"T":"A","results":2,"o":1.5}],"count":1}')


def test_the_results_span_of_every_form() -> None:
    """Where the results array (or null) lies in the body: the rest of the body is the page's other keys."""
    for body, span in (
        (b'{"status":"OK"}', b""),
        (b'{"results": null ,"n":1}', b"null"),
        (b'{"a":1,"results":[{"o":1},{"o":2}],"next_url":"x"}', b'[{"o":1},{"o":2}]'),
    ):
        parsed = parse_results(body)
        assert parsed is not None and body[parsed.start : parsed.end] == span
        assert parsed.start == (len(body) if not span else body.index(span))
        assert parsed.end == parsed.start + len(span)
