"""The CLI's pure parts: argument types, the cells of a row, the columns that fit, ScanOptions."""

from __future__ import annotations

import argparse
import math

import pytest
from rich.console import Console

from gateway import cli
from technic.v1 import scan_pb2

NAN = math.nan


def row(
    rank: int, symbol: str, signal: str = "Strong Long", sector: str = "Information Technology"
) -> scan_pb2.ScanRow:
    return scan_pb2.ScanRow(
        rank=rank,
        symbol=symbol,
        signal=signal,
        sector=sector,
        tech_rating=71.26,
        alpha_score=1.2345,
        win_prob_10d=0.6149,
        composite_score=0.87654,
        plan=scan_pb2.TradePlan(entry=1234.567, stop=1200.004, target=1300.5, reward_risk=2.25),
    )


def test_style_accepts_names_and_aliases_and_lists_both_when_unknown() -> None:
    assert cli._style("Day") == scan_pb2.TRADE_STYLE_DAY
    assert cli._style("swing") == scan_pb2.TRADE_STYLE_SHORT_TERM_SWING
    with pytest.raises(argparse.ArgumentTypeError) as err:
        cli._style("Scalp")
    message = str(err.value)
    assert message.startswith(
        "unknown style 'Scalp'; one of Day, Short-term swing, Medium-term swing, Position "
        "(or day, short-term swing, medium-term swing, "
    )
    assert message.endswith(", investor)") and ", swing, " in message


def test_range_parses_either_bound() -> None:
    both = cli._range(" rsi_14 :30:70")
    assert (both.column, both.min, both.max) == ("rsi_14", 30.0, 70.0)
    low = cli._range("atr_pct:1.5:")
    assert low.HasField("min") and not low.HasField("max") and low.min == 1.5
    high = cli._range("atr_pct:: 4")
    assert high.HasField("max") and not high.HasField("min") and high.max == 4.0
    one = cli._range("atr_pct:5")  # a single bound is the minimum
    assert one.HasField("min") and not one.HasField("max") and one.min == 5.0
    bare = cli._range("atr_pct")
    assert bare.column == "atr_pct" and not bare.HasField("min") and not bare.HasField("max")
    with pytest.raises(argparse.ArgumentTypeError, match="range 'atr_pct:x:4' is not COLUMN:MIN:MAX"):
        cli._range("atr_pct:x:4")
    with pytest.raises(argparse.ArgumentTypeError, match="is not COLUMN:MIN:MAX"):
        cli._range("atr_pct:1:y")


def test_csv_list_and_numbers() -> None:
    assert cli._csv_list(" Energy, ,Utilities ,") == ["Energy", "Utilities"]
    assert cli._csv_list("") == []
    assert cli._fmt(1234.5678) == "1,234.57" and cli._fmt(2.25, 1) == "2.2" and cli._fmt(NAN) == "-"


def test_cells_full_and_short() -> None:
    full = {
        "#": "3",
        "ticker": "ACME",
        "signal": "Strong Long",
        "rating": "71.3",
        "entry": "1,234.57",
        "stop": "1,200.00",
        "target": "1,300.50",
        "r/r": "2.2",
        "alpha": "1.23",
        "win": "61",
        "sector": "Information Technology",
        "composite": "0.877",
    }
    assert cli._cells(row(3, "ACME"), short=False) == full
    assert cli._cells(row(3, "ACME"), short=True) == {**full, "signal": "S-Long", "sector": "Info Tech"}
    other = cli._cells(row(1, "X", signal="Neutral", sector="Energy"), short=True)
    assert (other["signal"], other["sector"]) == ("Neutral", "Energy")


def test_columns_fit_the_width_by_priority_and_show_in_screen_order() -> None:
    rows = [cli._cells(row(1, "ACME"), short=True), cli._cells(row(12, "LONGER"), short=True)]
    widths = {"#": 2, "ticker": 6, "signal": 6, "entry": 8, "stop": 8, "target": 8, "rating": 6, "r/r": 3}
    widths |= {"sector": 9, "alpha": 5, "win": 3, "composite": 9}
    # 1 border + (width + 3) per column: #, ticker, signal, entry, stop, target need 1 + 5 + 9 + 9 + 11 * 3 = 57
    assert cli.table_columns(rows, 57) == [(c, widths[c]) for c in ("#", "ticker", "signal", "entry", "stop", "target")]
    # at 56 the target (11) no longer fits in the 10 left after stop, but the rating (9) does
    assert [c for c, _ in cli.table_columns(rows, 56)] == ["#", "ticker", "signal", "rating", "entry", "stop"]
    assert [c for c, _ in cli.table_columns(rows, 66)] == ["#", "ticker", "signal", "rating", "entry", "stop", "target"]
    # at 80: r/r (6) brings it to 72; sector (12) does not fit, alpha (8) fills it exactly, win (6) no more
    at_80 = [c for c, _ in cli.table_columns(rows, 80)]
    assert at_80 == ["#", "ticker", "signal", "rating", "alpha", "entry", "stop", "target", "r/r"]
    assert [c for c, _ in cli.table_columns(rows, 200)] == list(cli.ORDER)
    assert cli.table_columns([], 8) == [("#", 1)]


def render(result: scan_pb2.ScanResult, width: int) -> str:
    console = Console(width=width, record=True, color_system=None)
    console.print(cli.top_table(result, 2, width))
    return console.export_text()


def test_top_table_text_at_80_columns_never_cuts_a_value() -> None:
    result = scan_pb2.ScanResult(
        as_of="2026-12-02",
        trade_style=scan_pb2.TRADE_STYLE_POSITION,
        rows=[row(2, "BBB", signal="Avoid", sector="Energy"), row(1, "AAA"), row(3, "CCC")],
    )
    text = render(result, 80)
    assert "technic scan, 2026-12-02 (Position)" in text
    assert max(len(line) for line in text.splitlines()) <= 80
    lines = [line for line in text.splitlines() if "AAA" in line or "BBB" in line]
    assert [("AAA" in line) for line in lines] == [True, False]  # ranked order, top 2 only
    assert "CCC" not in text
    for value in ("S-Long", "Avoid", "1,234.57", "1,200.00", "1,300.50", "2.2", "71.3"):
        assert value in text, value
    wide = render(result, 160)
    assert "Strong Long" in wide and "Information Technology" in wide and "0.877" in wide


def test_top_table_colours_the_signal_only() -> None:
    signals = ["Strong Long", "Long", "Strong Short", "Short", "Avoid", "Neutral"]
    result = scan_pb2.ScanResult(rows=[row(i + 1, f"S{i}", signal=s) for i, s in enumerate(signals)])
    table = cli.top_table(result, 6, 200)
    names = [c.header for c in table.columns]
    signal = table.columns[names.index("signal")]
    assert list(signal.cells) == [
        "[green]Strong Long[/]",
        "[green]Long[/]",
        "[red]Strong Short[/]",
        "[red]Short[/]",
        "[red]Avoid[/]",
        "Neutral",
    ]
    assert list(table.columns[names.index("ticker")].cells) == [f"S{i}" for i in range(6)]
    assert [c.justify for c in table.columns] == ["left" if n in cli.LEFT else "right" for n in names]
    assert all(c.no_wrap for c in table.columns)
    widths = dict(cli.table_columns([cli._cells(r, False) for r in result.rows], 200))
    assert [c.min_width for c in table.columns] == [widths[n] for n in names]


def test_top_table_abbreviates_below_120_columns_and_fits_80_by_default() -> None:
    # a 7-letter sector needs exactly 81 columns after r/r: the default width of 80 leaves it out
    result = scan_pb2.ScanResult(as_of="2026-12-02", rows=[row(1, "AAA", sector="Biotech")])
    assert cli.top_table(result, 1).title == "technic scan, 2026-12-02 ()"  # no style named
    default = [c.header for c in cli.top_table(result, 1).columns]
    assert default == ["#", "ticker", "signal", "rating", "alpha", "entry", "stop", "target", "r/r"]
    assert "sector" in [c.header for c in cli.top_table(result, 1, 81).columns]
    at_119 = cli.top_table(result, 1, 119)
    at_120 = cli.top_table(result, 1, 120)
    assert list(at_119.columns[2].cells) == ["[green]S-Long[/]"]
    assert list(at_120.columns[2].cells) == ["[green]Strong Long[/]"]


def test_scan_options_carry_every_argument() -> None:
    args = cli.build_parser().parse_args(
        [
            "scan",
            "--style",
            "Day",
            "--top",
            "7",
            "--sectors",
            "Energy,Utilities",
            "--universe",
            "AAA,BBB",
            "--max-symbols",
            "300",
            "--min-rating",
            "55",
            "--signals",
            "Long",
            "--lookback",
            "120",
            "--as-of",
            "2026-11-30",
            "--include-etfs",
            "--sort",
            "alpha_score",
            "--ascending",
            "--range",
            "rsi_14:30:70",
            "--options-mode",
            "stock_plus_options",
            "--min-price",
            "0",
            "--min-dollar-volume",
            "0",
        ]
    )
    options = cli.scan_options(args)
    assert options.trade_style == scan_pb2.TRADE_STYLE_DAY and options.limit == 7
    assert list(options.sectors) == ["Energy", "Utilities"] and list(options.universe) == ["AAA", "BBB"]
    assert (options.max_symbols, options.min_tech_rating, list(options.signals)) == (300, 55.0, ["Long"])
    assert (options.lookback_days, options.as_of, options.include_etfs) == (120, "2026-11-30", True)
    assert (options.sort_by, options.ascending) == ("alpha_score", True)
    assert [(r.column, r.min, r.max) for r in options.ranges] == [("rsi_14", 30.0, 70.0)]
    assert options.options_mode == scan_pb2.OPTIONS_MODE_STOCK_PLUS_OPTIONS
    # an explicit 0 floor is sent, not left to the default
    assert options.HasField("min_price") and options.HasField("min_dollar_volume")
    assert options.min_price == 0.0 and options.min_dollar_volume == 0.0
    default = cli.scan_options(cli.build_parser().parse_args(["scan"]))
    assert not default.HasField("min_price") and not default.HasField("min_dollar_volume")
    assert (list(default.sectors), list(default.universe), default.as_of, default.sort_by) == ([], [], "", "")
