"""The app's JSON and the CSV of fully populated messages, written out by hand.

Every key is spelled as the app's parsers read it, and every number is given with more digits than
its rounding keeps, so a renamed key, a different rounding or a dropped branch changes the output.
"""

from __future__ import annotations

import math

from gateway.views import (
    row_to_result,
    scan_response,
    summary_line,
    symbol_response,
    to_csv,
    universe_response,
)
from technic.v1 import common_pb2, compute_pb2, scan_pb2, scanner_pb2

NAN = math.nan


def full_row() -> scan_pb2.ScanRow:
    return scan_pb2.ScanRow(
        rank=3,
        symbol="ACME",
        name="Acme Corp",
        sector="Information Technology",
        industry="Software",
        signal="Strong Long",
        tech_rating=71.23456789,
        alpha_score=1.234567891,
        composite_score=0.876543219,
        percentile=93.456789,
        sector_percentile=88.123456,
        rating_percentile=91.987654,
        alpha_percentile=77.555555,
        win_prob_10d=0.612345678,
        alpha_5d=0.456789123,
        alpha_10d=-0.321987654,
        last_close=101.234567,
        change_pct=1.2345678,
        atr_pct=2.3456789,
        avg_dollar_volume=123456789.6,
        market_cap=98765432109.7,
        plan=scan_pb2.TradePlan(
            entry=100.123456,
            stop=95.987654,
            target=110.555555,
            reward_risk=2.345678,
            position_size=212.3456,
            side="long",
        ),
        subscores={"trend": 70.1234567, "momentum": 65.9876543},
        features={"rsi_14": 61.23456789, "atr_14_pct": 2.3456789},
        sparkline=[100.123456, NAN, 101.5],
        rationale="Trend leads.",
        play_style="Short-term swing",
        explanation=[
            compute_pb2.SymbolExplanation(
                symbol="ACME",
                models=[
                    compute_pb2.ModelExplanation(
                        model="alpha_5d",
                        base_value=0.0123456789,
                        prediction=0.456789123,
                        contributions=[
                            compute_pb2.FeatureContribution(
                                feature="rsi_14", label="RSI 14", value=61.23456789, contribution=0.0987654321
                            )
                        ],
                    )
                ],
            )
        ],
        ics=77.23456,
        ics_tier="CORE",
        merit_score=82.45678,
        merit_band="A",
        merit_flags=["OVERBOUGHT", "LOW_LIQUIDITY"],
        merit_summary="Merit A (82/100): composite percentile 93",
        risk_label="Moderate",
        ultra_risky=False,
        profile="swing:trend",
        profile_label="Short-term swing, trend setup",
    )


FULL_RESULT = {
    "ticker": "ACME",
    "signal": "Strong Long",
    "rrr": 2.35,
    "entry": 100.1235,
    "stop": 95.9877,
    "target": 110.5556,
    "note": "Trend leads.",
    "sparkline": [100.1235, 101.5],
    "TechRating": 71.23,
    "AlphaScore": 1.2346,
    "ATR14_pct": 0.023457,
    "Sector": "Information Technology",
    "Industry": "Software",
    "PlayStyle": "Short-term swing",
    "win_prob_10d": 0.6123,
    "InstitutionalCoreScore": 77.23,
    "ICS_Tier": "CORE",
    "QualityScore": None,
    "merit_score": 82.46,
    "merit_band": "A",
    "merit_flags": "OVERBOUGHT, LOW_LIQUIDITY",
    "merit_summary": "Merit A (82/100): composite percentile 93",
    "option_strategies": [],
    "IsUltraRisky": False,
    "Profile": "swing:trend",
    "ProfileLabel": "Short-term swing, trend setup",
    "EventSummary": None,
    "EventFlags": None,
    "FundamentalSnapshot": None,
    "delta": "+1.2%",
    "isPositive": True,
    "title": "Strong Long: ACME",
    "meta": "Information Technology | TechRating 71.2 | win prob 61%",
    "plan": "Entry 100.12, stop 95.99, target 110.56 (reward/risk 2.3)",
    "atr_pct": 2.3457,
    "rank": 3,
    "name": "Acme Corp",
    "composite_score": 0.8765,
    "percentile": 93.46,
    "sector_percentile": 88.12,
    "rating_percentile": 91.99,
    "alpha_percentile": 77.56,
    "alpha_5d": 0.4568,
    "alpha_10d": -0.322,
    "last_close": 101.2346,
    "change_pct": 1.2346,
    "avg_dollar_volume": 123456790.0,
    "market_cap": 98765432110.0,
    "side": "long",
    "position_size": 212.35,
    "subscores": {"momentum": 65.987654, "trend": 70.123457},
    "features": {"atr_14_pct": 2.345679, "rsi_14": 61.234568},
    "explanation": [
        {
            "model": "alpha_5d",
            "base_value": 0.012346,
            "prediction": 0.456789,
            "contributions": [{"feature": "rsi_14", "label": "RSI 14", "value": 61.234568, "contribution": 0.098765}],
        }
    ],
}


def test_a_full_row_in_the_apps_keys() -> None:
    out = row_to_result(full_row())
    assert out == FULL_RESULT
    # whole dollars stay JSON numbers with a fraction, as the app's double parsers read them
    assert type(out["avg_dollar_volume"]) is float and type(out["market_cap"]) is float


def test_unknown_numbers_are_null_and_a_flat_or_small_move_counts_as_positive() -> None:
    row = scan_pb2.ScanRow(
        symbol="FLAT",
        signal="Avoid",
        change_pct=0.0,
        atr_pct=NAN,
        ics=NAN,
        merit_score=NAN,
        plan=scan_pb2.TradePlan(entry=NAN, side="short"),
    )
    out = row_to_result(row)
    assert (out["delta"], out["isPositive"]) == ("+0.0%", True)
    assert (out["ATR14_pct"], out["entry"], out["InstitutionalCoreScore"], out["merit_score"]) == (None,) * 4
    assert (out["ICS_Tier"], out["merit_band"], out["merit_flags"], out["merit_summary"]) == (None,) * 4
    assert (out["Profile"], out["ProfileLabel"], out["IsUltraRisky"]) == (None, None, False)
    assert out["side"] == "short" and out["explanation"] == [] and out["subscores"] == {}
    row.change_pct = 0.5
    assert row_to_result(row)["isPositive"] is True
    row.change_pct = -0.04
    assert (row_to_result(row)["delta"], row_to_result(row)["isPositive"]) == ("-0.0%", False)
    row.change_pct = NAN
    assert row_to_result(row)["delta"] is None
    row.ultra_risky = True
    assert row_to_result(row)["IsUltraRisky"] is True


def full_result() -> scan_pb2.ScanResult:
    return scan_pb2.ScanResult(
        scan_id="scan-1",
        fingerprint="fp-1",
        as_of="2026-12-02",
        cached=True,
        trade_style=scan_pb2.TRADE_STYLE_DAY,
        total_rows=42,
        feature_version="f7",
        model_versions={"alpha_5d": "m2", "alpha_10d": "m1"},
        stage_seconds={"total": 0.123456, "fetch": 0.0512345},
        accounting=common_pb2.Accounting(
            requested=20,
            ranked=12,
            filtered={"prefilter_price": 3, "min_rating": 2},
            skipped={"unknown_symbol": 1, "no_bars": 2},
            errored={"compute": 1},
        ),
        regime=scan_pb2.MarketRegime(
            trend="uptrend",
            volatility="normal",
            label="uptrend / normal volatility",
            benchmark_close=512.345678,
            benchmark_sma_200=480.123456,
            benchmark_volatility=14.987654,
        ),
        rows=[full_row()],
        movers=[
            scan_pb2.Mover(symbol="UPPY", change_pct=0.0, note="Energy, 2.0x average volume", sparkline=[1.23456789]),
            scan_pb2.Mover(symbol="DOWN", change_pct=-3.25, note="Utilities"),
        ],
    )


def test_a_full_scan_answer() -> None:
    body = scan_response(full_result())
    assert body["results"] == [FULL_RESULT]
    del body["results"]
    assert body == {
        "status": "ok",
        "disclaimer": (
            "Technic is a research tool, not investment advice. Ratings and probabilities are model "
            "estimates from past prices and can be wrong; do your own research."
        ),
        "movers": [
            {
                "ticker": "UPPY",
                "delta": "+0.0%",
                "note": "Energy, 2.0x average volume",
                "isPositive": True,
                "sparkline": [1.2346],
            },
            {"ticker": "DOWN", "delta": "-3.2%", "note": "Utilities", "isPositive": False, "sparkline": []},
        ],
        "ideas": [
            {
                "title": "Strong Long: ACME",
                "ticker": "ACME",
                "meta": "Information Technology | TechRating 71.2 | win prob 61%",
                "plan": "Entry 100.12, stop 95.99, target 110.56 (reward/risk 2.3)",
                "sparkline": [100.1235, 101.5],
            }
        ],
        # 20 requested - 3 prefiltered - 1 unknown symbol (never sent to the fetcher)
        "log": "scanned 20 symbols (16 after prefilter) in 0.12 s (cached)",
        "universe_size": 20,
        "symbols_scanned": 14,  # 12 ranked + 2 removed by a filter after scoring
        "scan_id": "scan-1",
        "fingerprint": "fp-1",
        "as_of": "2026-12-02",
        "cached": True,
        "trade_style": "Day",
        "accounting": {
            "requested": 20,
            "ranked": 12,
            "filtered": {"min_rating": 2, "prefilter_price": 3},
            "skipped": {"no_bars": 2, "unknown_symbol": 1},
            "errored": {"compute": 1},
        },
        "regime": {
            "trend": "uptrend",
            "volatility": "normal",
            "label": "uptrend / normal volatility",
            "benchmark_close": 512.3457,
            "benchmark_sma_200": 480.1235,
            "benchmark_volatility": 14.9877,
        },
        "total_rows": 42,
        "stage_seconds": {"fetch": 0.0512, "total": 0.1235},
        "feature_version": "f7",
        "model_versions": {"alpha_10d": "m1", "alpha_5d": "m2"},
    }


def test_summary_line_without_a_total_adds_the_stages_and_an_unstyled_scan_is_swing() -> None:
    result = scan_pb2.ScanResult(
        stage_seconds={"fetch": 1.5, "rank": 0.25}, accounting=common_pb2.Accounting(requested=5)
    )
    assert summary_line(result) == "scanned 5 symbols (5 after prefilter) in 1.75 s"
    body = scan_response(result)
    assert (body["trade_style"], body["regime"], body["ideas"], body["movers"]) == ("Short-term swing", None, [], [])


def test_a_full_symbol_page() -> None:
    detail = scanner_pb2.SymbolDetail(
        symbol="ACME",
        name="Acme Corp",
        sector="Information Technology",
        industry="Software",
        market_cap=98765432109.7,
        last_price=101.234567,
        change_pct=0.987654,
        history=[
            scanner_pb2.Bar(date="2026-12-01", open=99.123456, high=100.5, low=98.25, close=100.25, volume=1234567),
            scanner_pb2.Bar(date="2026-12-02", open=100.25, high=102.0, low=100.0, close=101.234567, volume=NAN),
        ],
        latest=full_row(),
        in_latest_scan=True,
    )
    assert symbol_response(detail) == {
        "symbol": "ACME",
        "name": "Acme Corp",
        "sector": "Information Technology",
        "industry": "Software",
        "last_price": 101.2346,
        "change_pct": 0.9877,
        "history": [
            {"date": "2026-12-01", "Open": 99.1235, "High": 100.5, "Low": 98.25, "Close": 100.25, "Volume": 1234567},
            {"date": "2026-12-02", "Open": 100.25, "High": 102.0, "Low": 100.0, "Close": 101.2346, "Volume": 0},
        ],
        "tech_rating": 71.23,
        "alpha_score": 1.2346,
        "win_prob_10d": 0.6123,
        "ics": 77.23,
        "ics_tier": "CORE",
        "quality_score": None,
        "risk_score": "Moderate",
        "momentum_score": 65.99,
        "value_score": None,
        "quality_factor": None,
        "growth_score": None,
        "merit_score": 82.46,
        "merit_band": "A",
        "merit_flags": "OVERBOUGHT, LOW_LIQUIDITY",
        "merit_summary": "Merit A (82/100): composite percentile 93",
        "fundamentals": {"pe": None, "eps": None, "roe": None, "debt_to_equity": None, "market_cap": 98765432110.0},
        "events": {"next_earnings": None, "days_to_earnings": None, "next_dividend": None, "dividend_amount": None},
        "options_available": False,
        "in_latest_scan": True,
        "scan": FULL_RESULT,
    }
    assert type(symbol_response(detail)["fundamentals"]["market_cap"]) is float


def test_a_symbol_page_with_one_bar_and_no_ranking() -> None:
    detail = scanner_pb2.SymbolDetail(
        symbol="NEWCO",
        last_price=10.0,
        change_pct=5.0,
        history=[scanner_pb2.Bar(date="2026-12-02", open=9.5, high=10.5, low=9.0, close=10.0, volume=NAN)],
        latest=full_row(),  # present but not in the latest scan: not shown
        in_latest_scan=False,
    )
    page = symbol_response(detail)
    assert (page["last_price"], page["change_pct"], page["history"][0]["Volume"]) == (10.0, None, 0)
    assert page["scan"] is None and page["in_latest_scan"] is False
    scores = ("tech_rating", "alpha_score", "win_prob_10d", "ics", "ics_tier", "risk_score", "momentum_score")
    assert all(page[k] is None for k in (*scores, "merit_score", "merit_band", "merit_flags", "merit_summary"))
    assert symbol_response(scanner_pb2.SymbolDetail(symbol="NONE"))["last_price"] is None


def test_universe_stats_answer() -> None:
    stats = scanner_pb2.UniverseStats(
        total=11,
        as_of="2026-12-02",
        sectors=[scanner_pb2.SectorCount(name="Energy", count=7), scanner_pb2.SectorCount(name="Utilities", count=4)],
        industries=[scanner_pb2.SectorCount(name="Oil & Gas", count=7)],
        last_scan=common_pb2.Accounting(requested=11, ranked=9, filtered={"min_rating": 2}),
    )
    assert universe_response(stats) == {
        "sectors": [{"name": "Energy", "count": 7}, {"name": "Utilities", "count": 4}],
        "subindustries": [{"name": "Oil & Gas", "count": 7}],
        "total": 11,
        "as_of": "2026-12-02",
        "last_scan": {"requested": 11, "ranked": 9, "filtered": {"min_rating": 2}, "skipped": {}, "errored": {}},
    }
    assert universe_response(scanner_pb2.UniverseStats(total=0))["last_scan"] is None


def test_csv_text() -> None:
    row = full_row()
    row.features["zz_extra"] = NAN
    row.plan.stop = NAN
    head = (
        "rank,symbol,name,sector,industry,signal,tech_rating,alpha_score,composite_score,percentile,"
        "sector_percentile,win_prob_10d,alpha_5d,alpha_10d,last_close,change_pct,atr_pct,avg_dollar_volume,"
        "market_cap,entry,stop,target,reward_risk,side,rsi_14,atr_14_pct,zz_extra\n"
    )
    line = (
        "3,ACME,Acme Corp,Information Technology,Software,Strong Long,71.23456789,1.234567891,0.876543219,"
        "93.456789,88.123456,0.612345678,0.456789123,-0.321987654,101.234567,1.2345678,2.3456789,123456789.6,"
        "98765432109.7,100.123456,,110.555555,2.345678,long,61.23456789,2.3456789,\n"
    )
    assert to_csv([row]) == head + line
