"""Validation and normalisation of scan requests, shared by the gRPC and HTTP APIs (no grpc here).

:func:`check_options` returns the first problem of a :class:`ScanOptions` as a sentence, or None;
the APIs turn it into INVALID_ARGUMENT or a 422. :func:`normalize_options` fills the documented
defaults so that equal requests compare (and fingerprint) equal.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable

from gateway.settings import GatewaySettings
from services.contract.columns import DEFAULT_SORT, MAX_LIMIT, RANGE_COLUMNS, SIGNALS, SORT_COLUMNS
from services.contract.features import FEATURES, MIN_HISTORY
from services.contract.sectors import SECTORS, UNKNOWN
from services.contract.styles import style_for
from services.contract.vocabulary import SECTOR_ALIASES
from technic.v1 import scan_pb2

MAX_UNIVERSE = 20_000
MAX_SYMBOLS = 20_000
MAX_SECTORS = 200
# A lookback as short as the app's slider allows is accepted; the fetch never goes below the
# features' warm-up (MIN_HISTORY sessions), so lookbacks up to it give the same scan.
MIN_LOOKBACK = 30
MAX_LOOKBACK = 2520
MAX_DAYS = 2520
TICKER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.\-/]{0,14}$")

TRADE_STYLES: dict[str, int] = {
    "Day": scan_pb2.TRADE_STYLE_DAY,
    "Short-term swing": scan_pb2.TRADE_STYLE_SHORT_TERM_SWING,
    "Medium-term swing": scan_pb2.TRADE_STYLE_MEDIUM_TERM_SWING,
    "Position": scan_pb2.TRADE_STYLE_POSITION,
}
STYLE_NAMES: dict[int, str] = {value: name for name, value in TRADE_STYLES.items()}
OPTIONS_MODES: dict[str, int] = {
    "stock_only": scan_pb2.OPTIONS_MODE_STOCK_ONLY,
    "stock_plus_options": scan_pb2.OPTIONS_MODE_STOCK_PLUS_OPTIONS,
}

FEATURE_NAMES: tuple[str, ...] = FEATURES
# Sector names by lower-case spelling, the app's and other common aliases included.
SECTOR_NAMES: dict[str, str] = dict(SECTOR_ALIASES)


def _finite(value: float) -> bool:
    return math.isfinite(value)


def check_ticker(symbol: str, what: str = "symbol") -> str | None:
    """Why ``symbol`` is not a plausible ticker, or None."""
    if not symbol or not symbol.strip():
        return f"{what} must not be empty"
    if not TICKER_RE.match(symbol.strip()):
        return f"{what} {symbol[:40]!r} is not a ticker (letters, digits, '.', '-', '/'; at most 15)"
    return None


def check_date(value: str, what: str) -> str | None:
    if not value:
        return None
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return f"{what} {value[:40]!r} is not a date (YYYY-MM-DD)"
    return None


def check_page(offset: int, limit: int, sort_by: str) -> str | None:
    """Why a page request is invalid, or None."""
    if offset < 0:
        return f"offset must be >= 0, got {offset}"
    if not 0 <= limit <= MAX_LIMIT:
        return f"limit must be between 0 and {MAX_LIMIT}, got {limit}"
    if sort_by and sort_by not in SORT_COLUMNS:
        return f"unknown sort column {sort_by[:60]!r}; sort by a ScanRow column or a feature name"
    return None


def _first(problems: Iterable[str | None]) -> str | None:
    return next((p for p in problems if p), None)


def check_options(options: scan_pb2.ScanOptions) -> str | None:
    """The first problem of ``options`` as a sentence naming the field, or None when valid."""
    if len(options.universe) > MAX_UNIVERSE:
        return f"universe has {len(options.universe)} symbols; at most {MAX_UNIVERSE} are allowed"
    problem = _first(check_ticker(s, "universe symbol") for s in options.universe)
    if problem:
        return problem
    if not 0 <= options.max_symbols <= MAX_SYMBOLS:
        return f"max_symbols must be between 0 (the default cap) and {MAX_SYMBOLS}, got {options.max_symbols}"
    if options.trade_style not in scan_pb2.TradeStyle.values():
        return f"trade_style {options.trade_style} is not a TradeStyle"
    if options.options_mode not in scan_pb2.OptionsMode.values():
        return f"options_mode {options.options_mode} is not an OptionsMode"
    if not (_finite(options.min_tech_rating) and 0 <= options.min_tech_rating <= 100):
        return f"min_tech_rating must be between 0 and 100, got {options.min_tech_rating}"
    if len(options.sectors) > MAX_SECTORS:
        return f"sectors has {len(options.sectors)} entries; at most {MAX_SECTORS} are allowed"
    if any(not s.strip() for s in options.sectors):
        return "sectors must not contain empty strings"
    unknown = [s for s in options.sectors if s.strip().lower() not in SECTOR_NAMES]
    if unknown:
        return f"unknown sector {unknown[0][:60]!r}; one of {', '.join((*SECTORS, UNKNOWN))} (or an alias)"
    if options.lookback_days and not MIN_LOOKBACK <= options.lookback_days <= MAX_LOOKBACK:
        return f"lookback_days must be between {MIN_LOOKBACK} and {MAX_LOOKBACK}, got {options.lookback_days}"
    unknown = [s for s in options.signals if s not in SIGNALS]
    if unknown:
        return f"unknown signal {unknown[0][:40]!r}; one of {', '.join(sorted(SIGNALS))}"
    for name in ("min_price", "min_dollar_volume"):
        if options.HasField(name):
            value = getattr(options, name)
            if not (_finite(value) and value >= 0):
                return f"{name} must be a finite number >= 0, got {value}"
    for rng in options.ranges:
        if rng.column not in RANGE_COLUMNS:
            return f"unknown range column {rng.column[:60]!r}; use a numeric ScanRow column or a feature name"
        bounds = [getattr(rng, b) for b in ("min", "max") if rng.HasField(b)]
        if any(not _finite(b) for b in bounds):
            return f"range on {rng.column} has a bound that is not a finite number"
        if rng.HasField("min") and rng.HasField("max") and rng.min > rng.max:
            return f"range on {rng.column} has min {rng.min} > max {rng.max}"
    return _first((check_page(options.offset, options.limit, options.sort_by), check_date(options.as_of, "as_of")))


def normalize_options(options: scan_pb2.ScanOptions, settings: GatewaySettings) -> scan_pb2.ScanOptions:
    """A copy of valid ``options`` with defaults filled and lists canonical (upper-case, sorted)."""
    out = scan_pb2.ScanOptions()
    out.CopyFrom(options)
    out.universe[:] = sorted({s.strip().upper() for s in options.universe})
    out.sectors[:] = sorted({SECTOR_NAMES[s.strip().lower()] for s in options.sectors})
    out.signals[:] = sorted(set(options.signals))
    out.max_symbols = options.max_symbols or settings.gateway_max_symbols
    out.trade_style = options.trade_style or scan_pb2.TRADE_STYLE_SHORT_TERM_SWING
    out.options_mode = options.options_mode or scan_pb2.OPTIONS_MODE_STOCK_ONLY
    out.lookback_days = max(options.lookback_days or style_for(out.trade_style).lookback, MIN_HISTORY)
    out.sort_by = options.sort_by or DEFAULT_SORT
    out.limit = options.limit or settings.gateway_page_limit
    # A watchlist is scanned as asked; the liquidity floors apply to it only when set explicitly.
    if not options.universe:
        if not options.HasField("min_price"):
            out.min_price = settings.gateway_min_price
        if not options.HasField("min_dollar_volume"):
            out.min_dollar_volume = settings.gateway_min_dollar_volume
    return out
