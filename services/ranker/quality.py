"""Fundamentals from filed statements, and sector-relative quality, value and growth scores.

Pure domain code over statement records (any object with the attributes of :class:`Statement`, such
as the fetcher's decoded filings). Point in time: only quarterly statements filed on or before the
``as_of`` date count. Every metric is a number or None with a reason; nothing here raises on a bad
or missing statement.

Metrics (TTM = the four latest consecutive quarters):

* EPS (TTM): TTM net income over the latest quarter's basic average shares (so a split inside the
  window does not mix share counts), else the sum of the four quarterly EPS.
* P/E = price / TTM EPS (None when earnings are not positive); earnings yield = TTM EPS / price.
* ROE = TTM net income / latest equity; debt/equity = long-term debt / latest equity.
* Net and operating margins over the TTM revenues; margin volatility = standard deviation of the
  quarterly net margins over the last (up to) eight quarters, the stability of earnings.
* Revenue and EPS growth, year over year: TTM against the TTM a year earlier when eight
  consecutive quarters exist, else the latest quarter against the same quarter a year before.
* Book to price = latest equity / (price x latest shares).

Scores 0-100 (:func:`factor_scores`) are percentiles within the name's sector (the whole cross
section for sectors with fewer than ``min_sector_size`` scored names): quality blends
profitability (ROE, margins), leverage (low debt/equity) and stability (low margin volatility);
value blends earnings yield and book to price; growth blends revenue and EPS growth.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import pandas as pd

QUARTER_SPAN_DAYS = (80, 100)  # consecutive quarter ends lie this far apart
YEAR_SPAN_DAYS = (350, 380)
MIN_SECTOR_SIZE = 5
QUALITY_WEIGHTS = {"profitability": 0.5, "leverage": 0.25, "stability": 0.25}


class Statement(Protocol):
    """The statement fields read here (USD; EPS per share; NaN where the filing has no value)."""

    timeframe: str
    end_date: dt.date
    filing_date: dt.date
    revenues: float
    operating_income: float
    net_income: float
    eps_basic: float
    shares_basic: float
    equity: float
    long_term_debt: float


@dataclass(frozen=True)
class Fundamentals:
    """One name's metrics on ``as_of`` (None where not computable; ``reasons`` says why, by metric)."""

    symbol: str
    as_of: dt.date
    period_end: dt.date | None = None
    filing_date: dt.date | None = None
    quarters: int = 0
    eps_ttm: float | None = None
    pe: float | None = None
    earnings_yield: float | None = None
    roe: float | None = None
    debt_to_equity: float | None = None
    net_margin: float | None = None
    operating_margin: float | None = None
    revenue_growth: float | None = None
    eps_growth: float | None = None
    margin_volatility: float | None = None
    book_to_price: float | None = None
    reasons: dict[str, str] = field(default_factory=dict)


METRICS: tuple[str, ...] = (
    "eps_ttm",
    "pe",
    "earnings_yield",
    "roe",
    "debt_to_equity",
    "net_margin",
    "operating_margin",
    "revenue_growth",
    "eps_growth",
    "margin_volatility",
    "book_to_price",
)


def _finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


def _quarters_filed(statements: Iterable[Statement], as_of: dt.date) -> list[Statement]:
    """Quarterly statements filed by ``as_of``, newest period first, one per period (latest filing)."""
    latest: dict[dt.date, Statement] = {}
    for s in statements:
        end, filed = getattr(s, "end_date", None), getattr(s, "filing_date", None)
        if getattr(s, "timeframe", None) != "quarterly" or not isinstance(end, dt.date):
            continue
        if not isinstance(filed, dt.date) or filed > as_of:
            continue
        seen = latest.get(end)
        if seen is None or filed >= seen.filing_date:
            latest[end] = s
    return [latest[k] for k in sorted(latest, reverse=True)]


def _consecutive(rows: Sequence[Statement]) -> int:
    """How many of ``rows`` (newest first) form an unbroken run of quarters from the newest."""
    run = min(len(rows), 1)
    lo, hi = QUARTER_SPAN_DAYS
    for newer, older in itertools.pairwise(rows):
        if not lo <= (newer.end_date - older.end_date).days <= hi:
            break
        run += 1
    return run


def _num(row: Statement, name: str) -> float:
    """A statement figure as a float, NaN when it is missing or not a number."""
    try:
        value = float(getattr(row, name))
    except (AttributeError, TypeError, ValueError):
        return math.nan
    return value if math.isfinite(value) else math.nan


def _ttm(rows: Sequence[Statement], name: str) -> float:
    values = [_num(r, name) for r in rows[:4]]
    return float(sum(values)) if len(values) == 4 and all(math.isfinite(v) for v in values) else math.nan


def _ratio(num: float, den: float) -> float | None:
    if not (math.isfinite(num) and math.isfinite(den)) or den == 0:
        return None
    return num / den


def _growth(new: float, old: float) -> float | None:
    """(new - old) / |old|: sign-aware, so a smaller loss is growth; None around a zero base."""
    if not (math.isfinite(new) and math.isfinite(old)) or abs(old) < 1e-12:
        return None
    return (new - old) / abs(old)


def fundamentals(symbol: str, statements: Iterable[Statement], as_of: dt.date, price: float) -> Fundamentals:
    """The metrics of ``symbol`` from the quarterly statements filed by ``as_of`` and its ``price``."""
    reasons: dict[str, str] = {}
    rows = _quarters_filed(statements, as_of)
    if not rows:
        return Fundamentals(symbol, as_of, reasons=dict.fromkeys(METRICS, "no quarterly statement filed"))
    latest = rows[0]
    run = _consecutive(rows)
    out: dict[str, float | None] = dict.fromkeys(METRICS)
    price_ok = _finite(price) and price > 0
    equity = _num(latest, "equity")

    if run < 4:
        for name in ("eps_ttm", "pe", "earnings_yield", "roe", "net_margin", "operating_margin"):
            reasons[name] = f"{run} consecutive quarters filed, 4 needed"
    else:
        ni, rev, op = _ttm(rows, "net_income"), _ttm(rows, "revenues"), _ttm(rows, "operating_income")
        shares = _num(latest, "shares_basic")
        eps = ni / shares if math.isfinite(ni) and math.isfinite(shares) and shares > 0 else _ttm(rows, "eps_basic")
        if math.isfinite(eps):
            out["eps_ttm"] = eps
            if not price_ok:
                reasons["pe"] = reasons["earnings_yield"] = "no price"
            else:
                out["earnings_yield"] = eps / price
                if eps > 0:
                    out["pe"] = price / eps
                else:
                    reasons["pe"] = "trailing earnings not positive"
        else:
            for name in ("eps_ttm", "pe", "earnings_yield"):
                reasons[name] = "earnings missing in a quarter"
        if not math.isfinite(ni):
            reasons["roe"] = "net income missing in a quarter"
        elif not (math.isfinite(equity) and equity > 0):
            reasons["roe"] = "equity not positive"
        else:
            out["roe"] = ni / equity
        for name, num in (("net_margin", ni), ("operating_margin", op)):
            value = _ratio(num, rev) if math.isfinite(rev) and rev > 0 else None
            out[name] = value
            if value is None:
                reasons[name] = "revenues or income missing or not positive"

    debt = _num(latest, "long_term_debt")
    if not (math.isfinite(equity) and equity > 0):
        reasons["debt_to_equity"] = "equity not positive"
    elif not math.isfinite(debt):
        reasons["debt_to_equity"] = "no long-term debt figure"
    else:
        out["debt_to_equity"] = debt / equity

    shares = _num(latest, "shares_basic")
    if price_ok and math.isfinite(shares) and shares > 0 and math.isfinite(equity):
        out["book_to_price"] = equity / (price * shares)
    else:
        reasons["book_to_price"] = "price, shares or equity missing"

    margins = [
        _ratio(_num(r, "net_income"), _num(r, "revenues")) for r in rows[: min(run, 8)] if _num(r, "revenues") > 0
    ]
    finite_margins = [m for m in margins if m is not None]
    if len(finite_margins) >= 4:
        out["margin_volatility"] = float(np.std(finite_margins, ddof=1))
    else:
        reasons["margin_volatility"] = "fewer than 4 quarterly margins"

    if run >= 8:
        out["revenue_growth"] = _growth(_ttm(rows, "revenues"), _ttm(rows[4:], "revenues"))
        out["eps_growth"] = _growth(_ttm(rows, "net_income"), _ttm(rows[4:], "net_income"))
    else:
        lo, hi = YEAR_SPAN_DAYS
        year_ago = next((r for r in rows[1:] if lo <= (latest.end_date - r.end_date).days <= hi), None)
        if year_ago is not None:
            out["revenue_growth"] = _growth(_num(latest, "revenues"), _num(year_ago, "revenues"))
            out["eps_growth"] = _growth(_num(latest, "eps_basic"), _num(year_ago, "eps_basic"))
    for name in ("revenue_growth", "eps_growth"):
        if out[name] is None:
            reasons[name] = "no comparable quarter a year earlier"

    return Fundamentals(
        symbol=symbol,
        as_of=as_of,
        period_end=latest.end_date,
        filing_date=latest.filing_date,
        quarters=run,
        reasons=reasons,
        **{k: (float(v) if v is not None and math.isfinite(v) else None) for k, v in out.items()},
    )


def metric_columns(rows: Sequence[Fundamentals]) -> dict[str, np.ndarray]:
    """The metrics of many names as float columns (NaN for None), one row per name."""
    return {
        name: np.array([np.nan if (v := getattr(r, name)) is None else v for r in rows], dtype=np.float64)
        for name in METRICS
    }


@dataclass(frozen=True)
class FactorScores:
    """Scores 0-100 per name (NaN when not scored) and, per score, why a name was not scored."""

    symbols: tuple[str, ...]
    quality: np.ndarray
    value: np.ndarray
    growth: np.ndarray
    profitability: np.ndarray
    leverage: np.ndarray
    stability: np.ndarray
    reasons: dict[str, tuple[str | None, ...]]


def sector_percentiles(
    values: np.ndarray, sectors: Sequence[str], min_sector_size: int = MIN_SECTOR_SIZE
) -> np.ndarray:
    """Percentile (0-1, ties averaged) of each value within its sector; names of sectors with fewer than
    ``min_sector_size`` finite values are ranked against the whole cross section. NaN stays NaN."""
    frame = pd.DataFrame({"v": np.asarray(values, dtype=np.float64), "s": np.asarray(sectors, dtype=object)})
    frame.loc[~np.isfinite(frame["v"]), "v"] = np.nan
    within = frame.groupby("s")["v"].rank(pct=True)
    overall = frame["v"].rank(pct=True)
    sizes = frame.groupby("s")["v"].transform("count")
    return np.where(sizes >= min_sector_size, within, overall).astype(np.float64)


def _blend(parts: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    """Weighted mean of the finite parts per row (NaN when none is finite)."""
    stack = np.vstack(parts)
    w = np.asarray(weights, dtype=np.float64)[:, None] * np.isfinite(stack)
    total = w.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, (np.nan_to_num(stack) * w).sum(0) / total, np.nan)


def factor_scores(
    rows: Sequence[Fundamentals], sectors: Sequence[str], min_sector_size: int = MIN_SECTOR_SIZE
) -> FactorScores:
    """Quality, value and growth scores for many names at once (vectorised over names)."""
    cols = metric_columns(rows)

    def pct(name: str, sign: float = 1.0) -> np.ndarray:
        return sector_percentiles(sign * cols[name], sectors, min_sector_size)

    profitability = _blend([pct("roe"), pct("net_margin"), pct("operating_margin")], [1.0, 1.0, 1.0])
    leverage = pct("debt_to_equity", -1.0)
    stability = pct("margin_volatility", -1.0)
    quality = _blend([profitability, leverage, stability], list(QUALITY_WEIGHTS.values()))
    quality = np.where(np.isfinite(profitability), quality, np.nan)
    value = _blend([pct("earnings_yield"), pct("book_to_price")], [0.6, 0.4])
    growth = _blend([pct("revenue_growth"), pct("eps_growth")], [0.5, 0.5])

    def why(score: np.ndarray, keys: Sequence[str]) -> tuple[str | None, ...]:
        out: list[str | None] = []
        for j, r in enumerate(rows):
            if np.isfinite(score[j]):
                out.append(None)
            else:
                found = [f"{k}: {r.reasons[k]}" for k in keys if k in r.reasons]
                out.append("; ".join(found) or "no metric to score")
        return tuple(out)

    return FactorScores(
        symbols=tuple(r.symbol for r in rows),
        quality=np.round(100.0 * quality, 2),
        value=np.round(100.0 * value, 2),
        growth=np.round(100.0 * growth, 2),
        profitability=np.round(100.0 * profitability, 2),
        leverage=np.round(100.0 * leverage, 2),
        stability=np.round(100.0 * stability, 2),
        reasons={
            "quality": why(quality, ("roe", "net_margin", "operating_margin")),
            "value": why(value, ("earnings_yield", "book_to_price")),
            "growth": why(growth, ("revenue_growth", "eps_growth")),
        },
    )
