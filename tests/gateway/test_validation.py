"""Scan request validation: every bad value is named in a sentence; defaults are filled canonically."""

from __future__ import annotations

import math

import pytest

from gateway.settings import GatewaySettings
from gateway.validation import FEATURE_NAMES, check_options, check_page, normalize_options
from technic.v1 import scan_pb2


def test_valid_options_pass() -> None:
    options = scan_pb2.ScanOptions(
        universe=["AAPL", "brk.b"],
        max_symbols=100,
        min_tech_rating=50,
        sectors=["information technology"],
        lookback_days=260,
        signals=["Long"],
        sort_by="rsi_14",
        limit=50,
        as_of="2026-11-13",
        ranges=[scan_pb2.RangeFilter(column="atr_pct", min=1, max=5)],
    )
    assert check_options(options) is None


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        (scan_pb2.ScanOptions(universe=["A"] * 20_001), "at most 20000"),
        (scan_pb2.ScanOptions(universe=["AAPL", ""]), "must not be empty"),
        (scan_pb2.ScanOptions(universe=["DROP TABLE"]), "not a ticker"),
        (scan_pb2.ScanOptions(max_symbols=-1), "max_symbols"),
        (scan_pb2.ScanOptions(max_symbols=20_001), "max_symbols"),
        (scan_pb2.ScanOptions(trade_style=99), "trade_style"),
        (scan_pb2.ScanOptions(options_mode=7), "options_mode"),
        (scan_pb2.ScanOptions(min_tech_rating=101), "min_tech_rating"),
        (scan_pb2.ScanOptions(min_tech_rating=math.nan), "min_tech_rating"),
        (scan_pb2.ScanOptions(sectors=["Energy", " "]), "empty"),
        (scan_pb2.ScanOptions(sectors=["Crypto"]), "unknown sector 'Crypto'; one of Energy"),
        (scan_pb2.ScanOptions(lookback_days=5), "lookback_days"),
        (scan_pb2.ScanOptions(signals=["Maybe"]), "unknown signal"),
        (scan_pb2.ScanOptions(min_price=-1), "min_price"),
        (scan_pb2.ScanOptions(min_dollar_volume=math.inf), "min_dollar_volume"),
        (scan_pb2.ScanOptions(ranges=[scan_pb2.RangeFilter(column="nope")]), "unknown range column"),
        (scan_pb2.ScanOptions(ranges=[scan_pb2.RangeFilter(column="rsi_14", min=80, max=20)]), "min 80.0 > max"),
        (scan_pb2.ScanOptions(sort_by="password"), "unknown sort column"),
        (scan_pb2.ScanOptions(limit=10_001), "limit"),
        (scan_pb2.ScanOptions(offset=-3), "offset"),
        (scan_pb2.ScanOptions(as_of="2026-13-40"), "not a date"),
    ],
)
def test_invalid_options_are_named(options: scan_pb2.ScanOptions, fragment: str) -> None:
    problem = check_options(options)
    assert problem is not None and fragment in problem


def test_page_checks() -> None:
    assert check_page(0, 100, "composite_score") is None
    assert "limit" in (check_page(0, -1, "") or "")


def test_normalize_fills_defaults_and_canonical_lists() -> None:
    settings = GatewaySettings()
    a = normalize_options(scan_pb2.ScanOptions(sectors=["Energy", "Information Technology"]), settings)
    b = normalize_options(scan_pb2.ScanOptions(sectors=["information technology", "Energy", "ENERGY"]), settings)
    assert a == b
    assert a.max_symbols == settings.gateway_max_symbols and a.limit == settings.gateway_page_limit
    assert a.trade_style == scan_pb2.TRADE_STYLE_SHORT_TERM_SWING and a.sort_by == "composite_score"
    assert a.min_price == settings.gateway_min_price and a.min_dollar_volume == settings.gateway_min_dollar_volume
    watch = normalize_options(scan_pb2.ScanOptions(universe=["msft", "AAPL ", "MSFT"]), settings)
    assert list(watch.universe) == ["AAPL", "MSFT"]
    assert not watch.HasField("min_price") and not watch.HasField("min_dollar_volume")


def test_lookback_defaults_to_the_style_and_features_match_compute() -> None:
    from services.compute.features import FEATURES

    settings = GatewaySettings()
    position = normalize_options(scan_pb2.ScanOptions(trade_style=scan_pb2.TRADE_STYLE_POSITION), settings)
    day = normalize_options(scan_pb2.ScanOptions(trade_style=scan_pb2.TRADE_STYLE_DAY), settings)
    assert position.lookback_days > day.lookback_days > 0
    assert FEATURE_NAMES == FEATURES
