"""``technic``: scan from a terminal, look at one symbol, run the local cluster, train the models.

    technic scan [--style S] [--top N] [--sectors A,B] [--universe T1,T2] [--min-rating R] [--signals ...]
                 [--min-price P] [--min-dollar-volume V] [--lookback N] [--as-of D] [--include-etfs]
                 [--sort COL] [--ascending] [--range COL:MIN:MAX] [--format table|json|csv]
    technic symbol TICKER [--days N]
    technic up | down | status
    technic train [training options]

``scan`` and ``symbol`` talk to the gateway's gRPC Scanner API (``--target``, default the local
gateway). Progress and messages go to stderr, so ``--format json|csv`` output can be piped.
``scan`` carries every ScanOptions field; ``--min-rating`` is on TechRating's 0-100 scale (the HTTP
API's ``min_rating``; the app's ``min_tech_rating`` is the same floor divided by 10). The table
keeps the columns that fit the terminal, most useful first, and never cuts a number or a signal.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Sequence

import grpc
import orjson
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from gateway.settings import GatewaySettings
from gateway.validation import OPTIONS_MODES, STYLE_NAMES, TRADE_STYLES, check_options
from gateway.views import scan_response, summary_line, symbol_response, to_csv
from services.common.channels import make_sync_channel
from services.contract.vocabulary import STYLE_ALIASES, canonical_style
from technic.v1 import scan_pb2, scanner_pb2, scanner_pb2_grpc

SIGNAL_SHORT = {"Strong Long": "S-Long", "Strong Short": "S-Short"}
SECTOR_SHORT = {
    "Information Technology": "Info Tech",
    "Communication Services": "Comm Svcs",
    "Consumer Discretionary": "Cons Disc",
    "Consumer Staples": "Cons Stpl",
    "Health Care": "Health",
    "Real Estate": "Real Est",
    "Financials": "Financial",
    "Industrials": "Industrial",
}
# Rich's boxed table: a border and a space either side per column, and one closing border.
COLUMN_OVERHEAD = 3


def _style(value: str) -> int:
    name = canonical_style(value)
    if name is None:
        raise argparse.ArgumentTypeError(
            f"unknown style {value!r}; one of {', '.join(TRADE_STYLES)} (or {', '.join(STYLE_ALIASES)})"
        )
    return TRADE_STYLES[name]


def _range(value: str) -> scan_pb2.RangeFilter:
    column, _, bounds = value.partition(":")
    low, _, high = bounds.partition(":")
    try:
        rng = scan_pb2.RangeFilter(column=column.strip())
        if low.strip():
            rng.min = float(low)
        if high.strip():
            rng.max = float(high)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"range {value!r} is not COLUMN:MIN:MAX") from exc
    return rng


def _csv_list(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _fmt(value: float, digits: int = 2) -> str:
    return f"{value:,.{digits}f}" if value == value else "-"


def _stub(target: str) -> tuple[grpc.Channel, scanner_pb2_grpc.ScannerStub]:
    channel = make_sync_channel(target, GatewaySettings())
    return channel, scanner_pb2_grpc.ScannerStub(channel)


def _fail(console: Console, exc: grpc.RpcError, what: str) -> int:
    console.print(f"[red]{what} failed: {exc.code().name}: {exc.details()}[/]")
    return 1


def _cells(row: scan_pb2.ScanRow, short: bool) -> dict[str, str]:
    signal = SIGNAL_SHORT.get(row.signal, row.signal) if short else row.signal
    sector = SECTOR_SHORT.get(row.sector, row.sector) if short else row.sector
    return {
        "#": str(row.rank),
        "ticker": row.symbol,
        "signal": signal,
        "rating": _fmt(row.tech_rating, 1),
        "entry": _fmt(row.plan.entry),
        "stop": _fmt(row.plan.stop),
        "target": _fmt(row.plan.target),
        "r/r": _fmt(row.plan.reward_risk, 1),
        "alpha": _fmt(row.alpha_score),
        "win": _fmt(row.win_prob_10d * 100, 0),
        "sector": sector,
        "composite": _fmt(row.composite_score, 3),
    }


# Columns by priority (kept first when the terminal is narrow), then their order on screen.
PRIORITY = ("#", "ticker", "signal", "entry", "stop", "target", "rating", "r/r", "sector", "alpha", "win", "composite")
ORDER = ("#", "ticker", "signal", "rating", "alpha", "win", "composite", "sector", "entry", "stop", "target", "r/r")
LEFT = {"ticker", "signal", "sector"}


def table_columns(rows: list[dict[str, str]], width: int) -> list[tuple[str, int]]:
    """The columns that fit ``width`` characters, each with the width of its longest cell."""
    widths = {c: max([len(c), *(len(r[c]) for r in rows)]) for c in PRIORITY}
    chosen: list[str] = []
    used = 1
    for column in PRIORITY:
        if used + widths[column] + COLUMN_OVERHEAD <= width:
            chosen.append(column)
            used += widths[column] + COLUMN_OVERHEAD
    return [(c, widths[c]) for c in ORDER if c in chosen]


def top_table(result: scan_pb2.ScanResult, top: int, width: int = 80) -> Table:
    """The best rows in the columns that fit ``width``: ticker, signal and plan first."""
    ranked = sorted(result.rows, key=lambda r: r.rank)[:top]
    short = width < 120
    rows = [_cells(r, short) for r in ranked]
    table = Table(title=f"technic scan, {result.as_of} ({STYLE_NAMES.get(result.trade_style, '')})")
    columns = table_columns(rows, width)
    for column, size in columns:
        table.add_column(column, justify="left" if column in LEFT else "right", no_wrap=True, min_width=size)
    for row, cells in zip(ranked, rows, strict=True):
        colour = "green" if "Long" in row.signal else "red" if row.signal in ("Avoid", "Short", "Strong Short") else ""
        values = [cells[c] for c, _ in columns]
        if colour and "signal" in cells:
            values = [f"[{colour}]{v}[/]" if c == "signal" else v for (c, _), v in zip(columns, values, strict=True)]
        table.add_row(*values)
    return table


def scan_options(args: argparse.Namespace) -> scan_pb2.ScanOptions:
    """The ScanOptions of ``technic scan``'s arguments."""
    options = scan_pb2.ScanOptions(
        trade_style=args.style,
        limit=args.top,
        sectors=args.sectors or [],
        universe=args.universe or [],
        max_symbols=args.max_symbols,
        min_tech_rating=args.min_rating,
        signals=args.signals or [],
        lookback_days=args.lookback,
        as_of=args.as_of or "",
        include_etfs=args.include_etfs,
        sort_by=args.sort or "",
        ascending=args.ascending,
        ranges=args.range or [],
        options_mode=OPTIONS_MODES[args.options_mode],
    )
    if args.min_price is not None:
        options.min_price = args.min_price
    if args.min_dollar_volume is not None:
        options.min_dollar_volume = args.min_dollar_volume
    return options


def cmd_scan(args: argparse.Namespace) -> int:
    out, err = Console(), Console(stderr=True)
    options = scan_options(args)
    problem = check_options(options)
    if problem:
        err.print(f"[red]{problem}[/]")
        return 2
    result: scan_pb2.ScanResult | None = None
    channel, stub = _stub(args.target)
    try:
        with Progress(
            TextColumn("{task.description:<10}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            transient=args.format != "table",
        ) as bars:
            tasks: dict[str, TaskID] = {}
            total_of: dict[TaskID, int] = {}
            for event in stub.Scan(
                scanner_pb2.ScanRequest(options=options, refresh=args.refresh), timeout=args.timeout
            ):
                if event.HasField("progress"):
                    p = event.progress
                    total = max(p.total, 1)
                    if p.stage not in tasks:
                        tasks[p.stage] = bars.add_task(p.stage, total=total)
                    bars.update(tasks[p.stage], completed=min(p.done, total), total=total)
                    total_of[tasks[p.stage]] = total
                else:
                    result = event.result
                    for task in tasks.values():
                        bars.update(task, completed=total_of[task])
    except grpc.RpcError as exc:
        return _fail(err, exc, "scan")
    finally:
        channel.close()
    if result is None:
        err.print("[red]the scan ended without a result[/]")
        return 1
    if args.format == "json":
        sys.stdout.write(orjson.dumps(scan_response(result), option=orjson.OPT_INDENT_2).decode() + "\n")
    elif args.format == "csv":
        sys.stdout.write(to_csv(sorted(result.rows, key=lambda r: r.rank)))
    else:
        out.print(top_table(result, args.top, out.width))
    (out if args.format == "table" else err).print(summary_line(result), highlight=False)
    return 0


def cmd_symbol(args: argparse.Namespace) -> int:
    out, err = Console(), Console(stderr=True)
    channel, stub = _stub(args.target)
    try:
        detail = stub.GetSymbol(scanner_pb2.GetSymbolRequest(symbol=args.ticker, days=args.days), timeout=args.timeout)
    except grpc.RpcError as exc:
        return _fail(err, exc, "symbol")
    finally:
        channel.close()
    if args.format == "json":
        sys.stdout.write(orjson.dumps(symbol_response(detail), option=orjson.OPT_INDENT_2).decode() + "\n")
        return 0
    out.print(f"[bold]{detail.symbol}[/] {detail.name}  {detail.sector} / {detail.industry}")
    out.print(
        f"last {_fmt(detail.last_price)}  change {_fmt(detail.change_pct)} %  market cap {_fmt(detail.market_cap, 0)}"
    )
    if detail.in_latest_scan:
        row = detail.latest
        out.print(
            f"rank {row.rank}  signal {row.signal}  rating {_fmt(row.tech_rating, 1)}  "
            f"alpha {_fmt(row.alpha_score)}  win prob 10d {_fmt(row.win_prob_10d * 100, 0)} %  "
            f"entry {_fmt(row.plan.entry)} stop {_fmt(row.plan.stop)} target {_fmt(row.plan.target)}"
        )
        if row.rationale:
            out.print(row.rationale)
    else:
        out.print("not in the latest scan")
    table = Table(title="last sessions")
    for column in ("date", "open", "high", "low", "close", "volume"):
        table.add_column(column, justify="right")
    for bar in detail.history[-10:]:
        table.add_row(bar.date, _fmt(bar.open), _fmt(bar.high), _fmt(bar.low), _fmt(bar.close), _fmt(bar.volume, 0))
    out.print(table)
    return 0


def cmd_cluster(args: argparse.Namespace) -> int:
    from gateway import cluster

    return int({"up": cluster.up, "down": cluster.down, "status": cluster.status}[args.command]())


def build_parser() -> argparse.ArgumentParser:
    settings = GatewaySettings()
    default_target = f"127.0.0.1:{settings.gateway_port}"
    parser = argparse.ArgumentParser(prog="technic", description="Technic: full-universe US equity scans.")
    commands = parser.add_subparsers(dest="command", required=True)

    scan = commands.add_parser("scan", help="run a scan and print the top names")
    scan.add_argument(
        "--style",
        type=_style,
        default=scan_pb2.TRADE_STYLE_SHORT_TERM_SWING,
        help="Day, Short-term swing, Medium-term swing, Position (or day/swing/medium/position)",
    )
    scan.add_argument("--top", type=int, default=25, help="rows to show (default 25)")
    scan.add_argument("--sectors", type=_csv_list, help="comma-separated sectors to keep")
    scan.add_argument("--universe", type=_csv_list, help="comma-separated tickers to scan (a watchlist)")
    scan.add_argument("--max-symbols", type=int, default=0, help="cap after the prefilter (default 6000)")
    scan.add_argument("--min-rating", type=float, default=0.0, help="TechRating floor, 0-100")
    scan.add_argument("--signals", type=_csv_list, help="comma-separated signals to keep (Strong Long,Long,...)")
    scan.add_argument("--min-price", type=float, help="last close floor (default 5; none for a watchlist)")
    scan.add_argument("--min-dollar-volume", type=float, help="average dollar volume floor (default 5M)")
    scan.add_argument("--lookback", type=int, default=0, help="sessions of history (30-2520; default by style)")
    scan.add_argument("--as-of", help="scan as of this session (YYYY-MM-DD; default the latest)")
    scan.add_argument("--include-etfs", action="store_true", help="keep ETFs and funds")
    scan.add_argument("--options-mode", choices=tuple(OPTIONS_MODES), default="stock_only")
    scan.add_argument("--sort", help="sort column: a ScanRow column or a feature (default composite_score)")
    scan.add_argument("--ascending", action="store_true", help="sort ascending")
    scan.add_argument(
        "--range",
        type=_range,
        action="append",
        help="keep rows with COLUMN within MIN:MAX (either bound may be empty); repeatable",
    )
    scan.add_argument("--format", choices=("table", "json", "csv"), default="table")
    scan.add_argument("--refresh", action="store_true", help="ignore a cached ranking")
    scan.add_argument("--target", default=default_target, help=f"gateway gRPC address (default {default_target})")
    scan.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for the scan")
    scan.set_defaults(func=cmd_scan)

    symbol = commands.add_parser("symbol", help="one symbol: latest scores and recent bars")
    symbol.add_argument("ticker")
    symbol.add_argument("--days", type=int, default=90)
    symbol.add_argument("--format", choices=("table", "json"), default="table")
    symbol.add_argument("--target", default=default_target)
    symbol.add_argument("--timeout", type=float, default=30.0)
    symbol.set_defaults(func=cmd_symbol)

    for name, text in (
        ("up", "start the local cluster and wait until it is healthy"),
        ("down", "stop the local cluster"),
        ("status", "every process and its health"),
    ):
        commands.add_parser(name, help=text).set_defaults(func=cmd_cluster)

    # Listed for --help; main() runs `train` and its options as the compute package's training job.
    commands.add_parser("train", help="train the models on the simulated market (technic train --help)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["train"]:
        # Everything after `train` is the trainer's own: argparse's REMAINDER would refuse a leading option.
        # The job runs as its own process: the gateway does not import another service's package.
        return subprocess.call([sys.executable, "-m", "services.compute.train", *argv[1:]])
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
