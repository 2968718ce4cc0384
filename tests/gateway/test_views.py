"""Mapping of ranked rows to the Flutter app's keys, derived scores, CSV."""

from __future__ import annotations

import csv
import io
import math

import orjson

from gateway.views import (
    after_prefilter,
    derived_scores,
    row_to_result,
    scan_response,
    summary_line,
    symbol_response,
    to_csv,
)
from technic.v1 import scanner_pb2
from tests.gateway.doubles import make_result, make_row, with_derived
from tests.support import APP_RESULT_KEYS


def test_row_has_every_app_key_with_app_types() -> None:
    out = row_to_result(make_row(1, "AAA", 0.9))
    assert set(out) >= APP_RESULT_KEYS
    assert {"features", "subscores", "composite_score", "percentile", "sector_percentile", "rank"} <= set(out)
    assert out["ticker"] == "AAA" and out["signal"] == "Strong Long"
    assert out["sparkline"] == [99.0, 100.5]  # NaN padding dropped
    for key in (
        "rrr",
        "entry",
        "stop",
        "target",
        "TechRating",
        "AlphaScore",
        "ATR14_pct",
        "win_prob_10d",
        "InstitutionalCoreScore",
        "merit_score",
    ):
        assert isinstance(out[key], float), key
    assert out["QualityScore"] is None  # needs financials the cluster does not fetch
    assert isinstance(out["merit_flags"], str) and out["option_strategies"] == []
    assert out["features"]["rsi_14"] == 75.0 and out["explanation"][0]["contributions"][0]["feature"] == "ret_21d"
    orjson.dumps(out)


def test_a_row_without_a_signal_shows_none() -> None:
    row = make_row(1, "AAA", 0.5)
    row.tech_rating, row.signal = math.nan, ""
    out = row_to_result(row)
    assert out["signal"] is None and out["TechRating"] is None and out["title"] == "No signal: AAA"
    row.signal = "Long"
    assert row_to_result(row)["signal"] == "Long" and row_to_result(row)["title"] == "Long: AAA"


def test_derived_scores_are_the_rankers_under_the_apps_keys() -> None:
    row = make_row(1, "AAA", 0.9)  # percentile 99, ADV 1e8 -> liquidity 66.67, ATR 2.5 % -> stability 78.57
    liquidity, stability = 100 * (8 - 6) / 3, 100 * (1 - 1.5 / 7)
    got = derived_scores(row)
    assert got["merit_summary"] == row.merit_summary and got["merit_summary"].startswith("Merit A (")
    assert math.isclose(got["ics"], 0.4 * liquidity + 0.3 * stability + 0.3 * 99, abs_tol=0.01)
    assert math.isclose(got["merit_score"], 0.6 * 99 + 0.25 * liquidity + 0.15 * stability, abs_tol=0.01)
    assert got["ics_tier"] == "CORE" and got["merit_band"] == "A"
    assert got["merit_flags"] == "OVERBOUGHT"  # rsi_14 75
    row.avg_dollar_volume, row.atr_pct, row.percentile = 2e6, 9.0, 10.0
    low = derived_scores(with_derived(row))
    assert low["merit_band"] == "D" and low["ics_tier"] == "SPECULATIVE"
    assert low["merit_flags"] == "LOW_LIQUIDITY, HIGH_VOLATILITY, OVERBOUGHT"
    row.atr_pct = math.nan
    unknown = derived_scores(with_derived(row))
    assert unknown == dict.fromkeys(unknown)  # every derived score unknown: all None, no empty strings


def test_scan_response_counts_and_lines() -> None:
    result = make_result()
    body = scan_response(result)
    assert body["status"] == "ok" and body["universe_size"] == 10
    assert body["symbols_scanned"] == 4  # 3 ranked + 1 removed by a post-score filter
    assert after_prefilter(result.accounting) == 5
    assert body["log"] == summary_line(result) == "scanned 10 symbols (5 after prefilter) in 1.25 s"
    assert body["movers"][0] == {
        "ticker": "AAA",
        "delta": "+4.2%",
        "note": "gap up",
        "isPositive": True,
        "sparkline": [1.0, 2.0],
    }
    assert body["movers"][1]["isPositive"] is False and body["movers"][1]["delta"] == "-3.0%"
    assert [i["ticker"] for i in body["ideas"]] == ["AAA", "BBB", "CCC"]
    assert set(body["ideas"][0]) == {"title", "ticker", "meta", "plan", "sparkline"}


def test_symbol_response_types() -> None:
    detail = scanner_pb2.SymbolDetail(
        symbol="AAA",
        last_price=10.0,
        change_pct=1.0,
        in_latest_scan=True,
        latest=make_row(1, "AAA", 0.9),
        history=[scanner_pb2.Bar(date="2026-11-13", open=1, high=2, low=0.5, close=1.5, volume=1234.0)] * 2,
    )
    body = symbol_response(detail)
    assert body["history"][0] == {
        "date": "2026-11-13",
        "Open": 1.0,
        "High": 2.0,
        "Low": 0.5,
        "Close": 1.5,
        "Volume": 1234,
    }
    assert isinstance(body["risk_score"], str) and body["momentum_score"] == 65.0
    assert set(body["fundamentals"]) == {"pe", "eps", "roe", "debt_to_equity", "market_cap"}
    assert set(body["events"]) == {"next_earnings", "days_to_earnings", "next_dividend", "dividend_amount"}
    empty = symbol_response(scanner_pb2.SymbolDetail(symbol="ZZZ"))
    assert empty["tech_rating"] is None and empty["last_price"] is None and empty["merit_score"] is None


def test_csv_has_row_plan_and_feature_columns() -> None:
    rows = list(csv.DictReader(io.StringIO(to_csv(make_result().rows))))
    assert [r["symbol"] for r in rows] == ["AAA", "BBB", "CCC"]
    assert float(rows[0]["rsi_14"]) == 75.0 and float(rows[0]["entry"]) == 100.0 and rows[0]["side"] == "long"
