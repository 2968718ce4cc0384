"""The Numba row writer produces the JSON a JSON library would, for the values the simulator serves."""

from __future__ import annotations

import numpy as np
import orjson

from services.marketsim.jsonrows import label_bytes, rows_json


def test_rows_parse_back_exactly() -> None:
    rng = np.random.default_rng(3)
    n = 2_000
    prices = np.where(rng.random(n) < 0.3, np.round(rng.random(n), 4), np.round(rng.random(n) * 5_000, 2))
    prices[:5] = [0.0, 0.0001, 1.0, 19_999.99, 0.05]
    volume = np.round(rng.random(n) * 1e10)
    stamps = np.full(n, 1_794_603_600_000.0)
    tickers = np.array(["A", "BRK.B", "ABCDp", "SPY", "QQQQW"] * (n // 5))
    body = rows_json(
        [("c", prices), ("v", volume), ("t", stamps), ("x", -prices)], ("T", *label_bytes(tickers)), b',"otc":true'
    )
    rows = orjson.loads(b"[" + body + b"]")
    assert [r["T"] for r in rows] == tickers.tolist()
    assert [r["c"] for r in rows] == prices.tolist()
    assert [r["x"] for r in rows] == (-prices).tolist()
    assert [r["v"] for r in rows] == volume.tolist() and all(isinstance(r["v"], int) for r in rows)
    assert {r["t"] for r in rows} == {1_794_603_600_000} and all(r["otc"] is True for r in rows)


def test_empty_and_unlabelled() -> None:
    assert rows_json([("v", np.zeros(0))]) == b""
    assert rows_json([("v", np.array([2.5, 3.0]))]) == b'{"v":2.5},{"v":3}'
