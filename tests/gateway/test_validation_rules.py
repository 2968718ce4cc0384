"""Scan request validation at each limit, every message in full, and normalisation field by field."""

from __future__ import annotations

import math

import pytest

from gateway.settings import GatewaySettings
from gateway.validation import (
    MAX_LIMIT,
    MAX_LOOKBACK,
    MAX_SECTORS,
    MAX_SYMBOLS,
    MAX_UNIVERSE,
    MIN_LOOKBACK,
    check_date,
    check_options,
    check_page,
    check_ticker,
    normalize_options,
)
from services.contract.sectors import SECTORS
from technic.v1 import scan_pb2

Opts, R = scan_pb2.ScanOptions, scan_pb2.RangeFilter
NOT_A_TICKER = "is not a ticker (letters, digits, '.', '-', '/'; at most 15)"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (Opts(universe=["A" * 45]), f"universe symbol '{'A' * 40}' {NOT_A_TICKER}"),
        (Opts(universe=["AAPL", " "]), "universe symbol must not be empty"),
        (Opts(universe=["AAPL", ""], max_symbols=-1), "universe symbol must not be empty"),  # the first problem
        (Opts(max_symbols=-1), "max_symbols must be between 0 (the default cap) and 20000, got -1"),
        (Opts(max_symbols=MAX_SYMBOLS + 1), "max_symbols must be between 0 (the default cap) and 20000, got 20001"),
        (Opts(trade_style=99), "trade_style 99 is not a TradeStyle"),
        (Opts(options_mode=7), "options_mode 7 is not an OptionsMode"),
        (Opts(min_tech_rating=-1), "min_tech_rating must be between 0 and 100, got -1.0"),
        (Opts(min_tech_rating=100.5), "min_tech_rating must be between 0 and 100, got 100.5"),
        (Opts(min_tech_rating=math.inf), "min_tech_rating must be between 0 and 100, got inf"),
        (Opts(sectors=["Energy"] * (MAX_SECTORS + 1)), "sectors has 201 entries; at most 200 are allowed"),
        (Opts(sectors=["Energy", ""]), "sectors must not contain empty strings"),
        (Opts(lookback_days=MIN_LOOKBACK - 1), f"lookback_days must be between 30 and 2520, got {MIN_LOOKBACK - 1}"),
        (Opts(lookback_days=MAX_LOOKBACK + 1), "lookback_days must be between 30 and 2520, got 2521"),
        (
            Opts(signals=["Long", "Up"]),
            "unknown signal 'Up'; one of Avoid, Long, Neutral, Short, Strong Long, Strong Short",
        ),
        (Opts(min_price=-1.0), "min_price must be a finite number >= 0, got -1.0"),
        (Opts(min_price=-0.5), "min_price must be a finite number >= 0, got -0.5"),
        (Opts(min_dollar_volume=math.nan), "min_dollar_volume must be a finite number >= 0, got nan"),
        (Opts(min_dollar_volume=-1.0), "min_dollar_volume must be a finite number >= 0, got -1.0"),
        (
            Opts(ranges=[R(column="z" * 70)]),
            f"unknown range column '{'z' * 60}'; use a numeric ScanRow column or a feature name",
        ),
        (Opts(ranges=[R(column="rsi_14", max=math.inf)]), "range on rsi_14 has a bound that is not a finite number"),
        (Opts(ranges=[R(column="rsi_14", min=math.nan)]), "range on rsi_14 has a bound that is not a finite number"),
        (Opts(ranges=[R(column="rsi_14", min=2, max=1)]), "range on rsi_14 has min 2.0 > max 1.0"),
        (Opts(offset=-1), "offset must be >= 0, got -1"),
        (Opts(limit=MAX_LIMIT + 1), "limit must be between 0 and 10000, got 10001"),
        (Opts(sort_by="s" * 70), f"unknown sort column '{'s' * 60}'; sort by a ScanRow column or a feature name"),
        (Opts(as_of="x" * 50), f"as_of '{'x' * 40}' is not a date (YYYY-MM-DD)"),
        (Opts(offset=-1, as_of="nope"), "offset must be >= 0, got -1"),
    ],
)
def test_each_problem_is_named_in_full(options: scan_pb2.ScanOptions, message: str) -> None:
    assert check_options(options) == message


@pytest.mark.parametrize(
    "options",
    [
        Opts(),
        Opts(max_symbols=0),  # unset: the gateway's default cap, as the message says
        Opts(max_symbols=MAX_SYMBOLS),
        Opts(min_tech_rating=100),
        Opts(min_tech_rating=0),
        Opts(sectors=["Energy"] * MAX_SECTORS),
        Opts(lookback_days=MIN_LOOKBACK),
        Opts(lookback_days=MAX_LOOKBACK),
        Opts(min_price=0.0),
        Opts(min_dollar_volume=0.0),
        Opts(min_price=0.5, min_dollar_volume=0.5),
        Opts(ranges=[R(column="rsi_14", min=3, max=3)]),
        Opts(ranges=[R(column="rsi_14", min=3)]),
        Opts(ranges=[R(column="rsi_14", max=-3)]),
        Opts(ranges=[R(column="rsi_14")]),
        Opts(limit=MAX_LIMIT, offset=0),
        Opts(limit=0),
        Opts(as_of="2026-11-13"),
        Opts(sort_by="symbol"),
        Opts(universe=["BRK.B", "BF-B", "ABC/WS", " msft "]),
        Opts(signals=["Strong Short"]),
    ],
)
def test_values_at_the_limits_are_accepted(options: scan_pb2.ScanOptions) -> None:
    assert check_options(options) is None


def test_single_checks() -> None:
    assert check_ticker("") == "symbol must not be empty"
    assert check_ticker("   ", "watchlist entry") == "watchlist entry must not be empty"
    assert check_ticker("b a d") == f"symbol 'b a d' {NOT_A_TICKER}"
    assert check_ticker(" AAPL ") is None
    assert check_date("", "as_of") is None and check_date("2026-02-30", "as_of") is not None
    assert check_page(0, 0, "") is None and check_page(0, MAX_LIMIT, "rsi_14") is None
    assert check_page(1, -1, "") == "limit must be between 0 and 10000, got -1"


def test_normalize_keeps_what_is_set() -> None:
    settings = GatewaySettings()
    options = Opts(
        universe=["msft", " aapl", "MSFT"],
        sectors=[" energy", "Utilities", "ENERGY"],
        signals=["Long", "Avoid", "Long"],
        max_symbols=7,
        trade_style=scan_pb2.TRADE_STYLE_DAY,
        options_mode=scan_pb2.OPTIONS_MODE_STOCK_PLUS_OPTIONS,
        lookback_days=300,
        sort_by="rsi_14",
        limit=9,
        offset=4,
        min_tech_rating=12.5,
        ascending=True,
    )
    out = normalize_options(options, settings)
    assert list(out.universe) == ["AAPL", "MSFT"] and list(out.sectors) == ["Energy", "Utilities"]
    assert list(out.signals) == ["Avoid", "Long"]
    assert (out.max_symbols, out.trade_style, out.options_mode, out.lookback_days, out.sort_by, out.limit) == (
        7,
        scan_pb2.TRADE_STYLE_DAY,
        scan_pb2.OPTIONS_MODE_STOCK_PLUS_OPTIONS,
        300,
        "rsi_14",
        9,
    )
    assert (out.offset, out.min_tech_rating, out.ascending) == (4, 12.5, True)
    assert not out.HasField("min_price") and not out.HasField("min_dollar_volume")  # a watchlist: no floors
    assert list(options.universe) == ["msft", " aapl", "MSFT"], "the request itself is left as it was"


def test_normalize_fills_the_floors_of_a_full_scan_unless_given() -> None:
    settings = GatewaySettings(gateway_min_price=3.0, gateway_min_dollar_volume=2e6)
    out = normalize_options(Opts(), settings)
    assert (out.min_price, out.min_dollar_volume) == (3.0, 2e6)
    assert out.options_mode == scan_pb2.OPTIONS_MODE_STOCK_ONLY and out.lookback_days > 0
    given = normalize_options(Opts(min_price=0.0, min_dollar_volume=7.0), settings)
    assert given.HasField("min_price") and (given.min_price, given.min_dollar_volume) == (0.0, 7.0)
    only_price = normalize_options(Opts(min_price=1.0), settings)
    assert (only_price.min_price, only_price.min_dollar_volume) == (1.0, 2e6)
    only_dollars = normalize_options(Opts(min_dollar_volume=1.0), settings)
    assert (only_dollars.min_price, only_dollars.min_dollar_volume) == (3.0, 1.0)


def test_the_longest_lists_and_names_in_messages() -> None:
    assert check_options(Opts(universe=["A"] * MAX_UNIVERSE)) is None
    sectors = ", ".join((*SECTORS, "Unknown"))
    assert check_options(Opts(sectors=["s" * 70])) == f"unknown sector '{'s' * 60}'; one of {sectors} (or an alias)"
    assert check_options(Opts(signals=["g" * 50])) == (
        f"unknown signal '{'g' * 40}'; one of Avoid, Long, Neutral, Short, Strong Long, Strong Short"
    )
