"""Generated grouped-daily bodies: the Numba scanner agrees with orjson on every one, or declines.

Bodies have the Polygon shape (status, counts, adjusted, request_id and ``results`` in any order)
with rows whose keys come in any order, go missing, repeat, hold null or extra keys, numbers in
every JSON form (integers, decimals, exponents with and without sign, negative zero, volumes such
as 1.2345e+07) and whitespace anywhere between tokens.
"""

from __future__ import annotations

import math

import numpy as np
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.fetcher.jsonbars import parse_results

BAR_KEYS = ("o", "h", "l", "c", "v", "vw", "t")
EXTRA_KEYS = ("n", "otc", "x", "vwap", "tt", "oo", "Tx", "T2", "", "volume", "status")
WHITESPACE = st.sampled_from(["", "", "", " ", "  ", "\n", "\t", "\r\n  "])
TICKERS = st.builds(
    lambda root, suffix: root + suffix,
    st.text("ABCXYZ", min_size=1, max_size=5),
    st.sampled_from(["", "", "", ".A", ".WS", "pB", "1"]),
)


@st.composite
def fast_number(draw: st.DrawFn) -> str:
    """A JSON number the scanner reads exactly: at most 15 digits, exponent in the exact range."""
    form = draw(st.sampled_from(["int", "decimal", "exponent", "negative zero", "volume"]))
    if form == "negative zero":
        return draw(st.sampled_from(["-0", "-0.0", "-0.000", "-0e0", "-0.0E+3"]))
    if form == "volume":  # how Polygon writes large volumes
        mantissa = draw(st.integers(10_000, 99_999))
        return f"{mantissa // 10_000}.{mantissa % 10_000:04d}e+{draw(st.integers(5, 9)):02d}"
    whole = str(draw(st.integers(0, 10**8)))
    fraction = draw(st.text("0123456789", min_size=1 if form == "decimal" else 0, max_size=15 - len(whole)))
    text = whole + (f".{fraction}" if fraction else "")
    if form == "exponent":
        digits = len(whole) + len(fraction)
        exponent = draw(st.integers(-8, 15 - digits))
        sign = "-" if exponent < 0 else draw(st.sampled_from(["", "+"]))
        text += draw(st.sampled_from("eE")) + sign + str(abs(exponent))
    return ("-" if draw(st.booleans()) else "") + text


def any_number() -> st.SearchStrategy[str]:
    """Numbers in and beyond the exact fast path (long mantissas, large exponents)."""
    long_mantissa = st.integers(10**15, 10**20).map(str)
    long_fraction = st.integers(10**15, 10**18).map(lambda m: f"0.{m}")
    far = st.tuples(st.integers(1, 99_999), st.integers(-330, 330)).map(lambda p: f"{p[0]}e{p[1]}")
    return fast_number() | long_mantissa | long_fraction | far


@st.composite
def body(draw: st.DrawFn, numbers: st.SearchStrategy[str], nested: bool = False) -> bytes:
    ws = lambda: draw(WHITESPACE)  # noqa: E731

    def obj(pairs: list[tuple[str, str]]) -> str:
        inner = ",".join(f'{ws()}"{k}"{ws()}:{ws()}{v}{ws()}' for k, v in pairs)
        return "{" + (inner or ws()) + "}"

    scalar_extras = numbers | st.sampled_from(["true", "false", "null", '"x"', '"OK"', '""'])
    extras = scalar_extras | st.sampled_from(['{"a":1}', "[1,2]", "[]"]) if nested else scalar_extras
    rows = []
    for _ in range(draw(st.integers(0, 6))):
        pairs = [(k, draw(numbers | st.just("null"))) for k in BAR_KEYS if draw(st.integers(0, 4))]
        ticker = draw(st.sampled_from(["string", "string", "string", "null", "missing"]))
        if ticker != "missing":
            pairs.append(("T", f'"{draw(TICKERS)}"' if ticker == "string" else "null"))
        pairs += [(k, draw(extras)) for k in draw(st.lists(st.sampled_from(EXTRA_KEYS), max_size=3))]
        if pairs and draw(st.integers(0, 5)) == 0:  # a repeated key: the last one counts
            key = draw(st.sampled_from([k for k, _ in pairs]))
            pairs.append((key, draw(numbers) if key != "T" else f'"{draw(TICKERS)}"'))
        rows.append(obj(draw(st.permutations(pairs))))
    if rows and draw(st.booleans()):
        rows += draw(st.lists(st.sampled_from(rows), max_size=3))  # duplicate rows
    results = "[" + (",".join(ws() + r + ws() for r in rows) or ws()) + "]"
    if not rows and draw(st.integers(0, 3)) == 0:
        results = "null"
    top = [
        ("status", '"OK"'),
        ("queryCount", str(len(rows))),
        ("resultsCount", str(len(rows))),
        ("adjusted", "false"),
        ("request_id", '"6a7e466379af0a71039d60cc78e72282"'),
        ("results", results),
    ]
    kept = [p for p in top if p[0] == "results" or draw(st.booleans())]
    return (ws() + obj(draw(st.permutations(kept))) + ws()).encode()


def expected(raw: bytes) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Tickers, values and which values orjson read as integers (whose zero has no sign)."""
    rows = orjson.loads(raw).get("results") or []
    cells = [[row.get(k) for k in BAR_KEYS] for row in rows]
    values = np.array([[math.nan if c is None else float(c) for c in cs] for cs in cells], dtype=np.float64)
    integers = np.array([[isinstance(c, int) for c in cs] for cs in cells], dtype=bool)
    return [row.get("T") or "" for row in rows], values.reshape(-1, 7), integers.reshape(-1, 7)


def agree(raw: bytes, *, may_decline: bool) -> None:
    parsed = parse_results(raw)
    if parsed is None:
        assert may_decline, raw
        return
    tickers, values, integers = expected(raw)
    assert parsed.tickers() == tickers
    np.testing.assert_array_equal(parsed.values, values)  # equal values, NaN where absent or null
    bits, want = parsed.values.view(np.int64), values.view(np.int64)
    exact = ~integers & ~np.isnan(values)  # floats bit-exact, -0.0 included
    assert (bits[exact] == want[exact]).all(), raw
    if b'"results"' in raw:  # the span of the results array (or null) in the body
        assert orjson.loads(raw[parsed.start : parsed.end]) == orjson.loads(raw)["results"]
    else:
        assert parsed.start == parsed.end == len(raw)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body(fast_number()))
def test_bodies_in_the_fast_path_are_read_exactly(raw: bytes) -> None:
    agree(raw, may_decline=False)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body(any_number(), nested=True))
def test_other_bodies_are_read_exactly_or_declined(raw: bytes) -> None:
    agree(raw, may_decline=True)


@settings(max_examples=50, deadline=None)
@given(body(fast_number()), st.data())
def test_a_cut_body_is_never_misread(raw: bytes, data: st.DataObject) -> None:
    """A body cut short (a broken download) either declines or, cut after the rows, reads them all."""
    cut = raw[: data.draw(st.integers(0, max(0, len(raw) - 1)))]
    parsed = parse_results(cut)
    if parsed is None or parsed.end == parsed.start:
        return
    rows = orjson.loads(cut[parsed.start : parsed.end])
    assert len(parsed.values) == len(rows or [])


def test_a_repeated_key_set_to_null_is_null() -> None:
    """The last of a repeated key wins, null included (found by the generated bodies above)."""
    raw = b'{"results":[{"T":"A","t":5,"o":1.5,"t":null,"T":null},{"T":"B","vw":2,"vw":null,"vw":3}]}'
    agree(raw, may_decline=False)
    parsed = parse_results(raw)
    assert parsed is not None and parsed.tickers() == ["", "B"]
    assert np.isnan(parsed.values[0, 6]) and parsed.values[1, 5] == 3.0
