"""Financial statements and cash dividends of the simulated companies, in Polygon's JSON shapes.

Every company (common stocks and ADRs) gets constants drawn from the seed and its symbol: a quality
factor, a fiscal year end, a price/sales multiple, margins, growth, leverage and whether it pays a
dividend. Quarterly revenue follows a random walk with drift anchored on the company's size, so big
names report big revenues; quality raises margins and lowers leverage and the noise of earnings.
The whole history is generated independently of "today": today only decides which filings (filed
30-45 days after the period end) and which dividends (declared 3-5 weeks before the ex date) are
visible, so advancing the market reveals new filings and never changes old ones.

Builders return response bodies without ``request_id`` (the app adds it) or raise ``ApiError``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import orjson

from services.marketsim.market import Market, xnys
from services.marketsim.polygon import _next_page_url, _page_state, _parse_date, bad_request

FINANCIALS_DEFAULT_LIMIT = 10
FINANCIALS_MAX_LIMIT = 100
DIVIDENDS_DEFAULT_LIMIT = 10
DIVIDENDS_MAX_LIMIT = 1_000
STATEMENT_TYPES = ("CS", "ADRC")
HISTORY_DAYS_BEFORE = 450  # statements start this many days before the first simulated session
_COMPARISONS: tuple[tuple[str, Callable[[Any, Any], Any]], ...] = (
    ("", np.equal),
    (".gte", np.greater_equal),
    (".gt", np.greater),
    (".lte", np.less_equal),
    (".lt", np.less),
)
# Division index (sic.py DIVISIONS order) -> (median net margin, operating margin gap, asset turnover).
_DIVISION_ECONOMICS: tuple[tuple[float, float, float], ...] = (
    (0.05, 0.04, 0.9),  # agriculture
    (0.09, 0.08, 0.4),  # mining
    (0.05, 0.03, 1.1),  # construction
    (0.08, 0.05, 0.8),  # manufacturing
    (0.09, 0.07, 0.4),  # transportation, communications, utilities
    (0.03, 0.02, 1.8),  # wholesale
    (0.04, 0.03, 1.6),  # retail
    (0.15, 0.06, 0.1),  # finance, insurance, real estate
    (0.07, 0.05, 0.8),  # services
    (0.05, 0.04, 0.7),  # public administration, nonclassifiable
)


@dataclass(frozen=True)
class Profile:
    """One company's constants: what its statements and dividends are drawn from."""

    quality: float  # standard normal: higher means better margins, lower leverage, steadier earnings
    fy_end_month: int
    ps_ratio: float
    net_margin: float
    operating_gap: float
    margin_noise: float
    growth: float  # quarterly log revenue drift
    asset_turnover: float
    leverage: float  # liabilities / assets
    debt_share: float  # long-term debt / liabilities
    dividend_yield: float  # 0 for non-payers
    frequency: int  # payments a year (0 for non-payers)
    dividend_month: int  # month (1-12) of the first payment of each year


def _rng(m: Market, i: int, salt: str) -> np.random.Generator:
    """A generator private to one symbol and purpose, independent of "today"."""
    code = zlib.crc32(f"{m.tickers[i]}:{salt}".encode())
    return np.random.default_rng([m.config.seed, code, m.config.n_tickers])


def _anchor_cap(m: Market, i: int) -> float:
    """Market cap at the symbol's last generated close (shares are split-adjusted to that session)."""
    closes = m.close[:, i]
    seen = np.flatnonzero(np.isfinite(closes))
    if not len(seen):
        return float("nan")
    return float(m.ref["shares_adjusted"][i] * closes[seen[-1]])


@lru_cache(maxsize=65_536)
def _profile_cached(m: Market, i: int) -> Profile | None:
    kind = str(m.ref["type"][i])
    if kind not in (*STATEMENT_TYPES, "ETF"):
        return None
    rng = _rng(m, i, "profile")
    quality = float(rng.standard_normal())
    cap = _anchor_cap(m, i)
    size = float(np.clip(np.log10(max(cap, 1e6)) - 9.0, -2.0, 3.0)) if np.isfinite(cap) else -2.0
    if kind == "ETF":
        pays = rng.random() < 0.75
        return Profile(
            0.0,
            12,
            1.0,
            0.0,
            0.0,
            0.0,
            0.0,
            1.0,
            0.0,
            0.0,
            float(np.clip(rng.lognormal(np.log(0.015), 0.5), 0.003, 0.06)) if pays else 0.0,
            4 if pays else 0,
            int(rng.integers(1, 4)) if pays else 1,
        )
    division = int(m.ref["division"][i])
    margin_base, gap, turnover = _DIVISION_ECONOMICS[min(max(division, 0), len(_DIVISION_ECONOMICS) - 1)]
    net_margin = margin_base + 0.05 * quality + 0.02 * size + 0.04 * rng.standard_normal()
    pays = rng.random() < 1.0 / (1.0 + np.exp(-(0.9 * quality + 0.8 * size - 0.8)))
    frequency = int(rng.choice([4, 12, 2, 1], p=[0.82, 0.08, 0.05, 0.05])) if pays else 0
    return Profile(
        quality=quality,
        fy_end_month=int(rng.choice([12, 6, 9, 3], p=[0.7, 0.12, 0.1, 0.08])),
        ps_ratio=float(np.exp(np.log(2.5) + 0.35 * quality + 0.5 * rng.standard_normal())),
        net_margin=float(np.clip(net_margin, -0.4, 0.45)),
        operating_gap=float(gap * np.exp(0.3 * rng.standard_normal())),
        margin_noise=float(np.clip(0.025 * np.exp(-0.45 * quality + 0.3 * rng.standard_normal()), 0.004, 0.15)),
        growth=float(0.015 + 0.01 * quality + 0.02 * rng.standard_normal()),
        asset_turnover=float(turnover * np.exp(0.3 * rng.standard_normal())),
        leverage=float(np.clip(0.55 - 0.08 * quality + 0.12 * rng.standard_normal(), 0.15, 0.9)),
        debt_share=float(np.clip(0.45 + 0.15 * rng.standard_normal(), 0.05, 0.9)),
        dividend_yield=float(np.clip(rng.lognormal(np.log(0.022), 0.45), 0.004, 0.08)) if pays else 0.0,
        frequency=frequency,
        dividend_month=int(rng.integers(1, 13 // max(frequency, 1) + 1)) if pays else 1,
    )


def profile(m: Market, i: int) -> Profile | None:
    """The company constants of ticker ``i``; None for types without statements or dividends."""
    return _profile_cached(m, i)


def dividend_yield(m: Market, i: int) -> float:
    """Continuous dividend yield for option pricing: the company's yield if it pays, else 0."""
    p = profile(m, i)
    return p.dividend_yield if p is not None else 0.0


def _month_end(year: int, month: int) -> dt.date:
    first_next = dt.date(year + month // 12, month % 12 + 1, 1)
    return first_next - dt.timedelta(days=1)


def _split_factor_after(m: Market, i: int, day: dt.date, known_by: int) -> float:
    """Product of split ratios of ticker ``i`` executed after ``day`` and known at session ``known_by``."""
    own = m.splits[(m.splits["ticker_index"] == i) & (m.splits["session_index"] <= known_by)]
    after = own[m.sessions[own["session_index"]] > np.datetime64(day, "D")]
    return float(np.prod(after["split_to"] / after["split_from"])) if len(after) else 1.0


def _dp(value: float, label: str, order: int, unit: str = "USD") -> dict[str, Any]:
    return {"value": round(float(value), 4 if unit != "USD" else 0), "unit": unit, "label": label, "order": order}


@lru_cache(maxsize=4_096)
def statements(m: Market, i: int) -> tuple[dict[str, Any], ...]:
    """Every quarterly and annual filing of ticker ``i`` over the whole generated history.

    Each record is a Polygon ``/vX/reference/financials`` result; ``timeframe`` is "quarterly" (Q1-Q4)
    or "annual" (FY, filed with Q4). Shares, and so EPS, are as reported: not adjusted for later splits.
    """
    p = profile(m, i)
    if p is None or str(m.ref["type"][i]) not in STATEMENT_TYPES:
        return ()
    cap = _anchor_cap(m, i)
    if not np.isfinite(cap) or cap <= 0:
        return ()
    rng = _rng(m, i, "statements")
    first = m.session_date(0) - dt.timedelta(days=HISTORY_DAYS_BEFORE)
    last = m.session_date(len(m.sessions) - 1)
    ends: list[dt.date] = []
    year, month = first.year, first.month
    while True:
        if (month - p.fy_end_month) % 3 == 0:
            end = _month_end(year, month)
            if end > last:
                break
            if end >= first:
                ends.append(end)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    n = len(ends)
    if n == 0:
        return ()
    steps = np.arange(n) - (n - 1)
    season = 0.03 * rng.standard_normal(4)
    noise = np.cumsum(0.03 * rng.standard_normal(n))
    noise -= noise[-1]
    revenue = cap / p.ps_ratio / 4.0 * np.exp(p.growth * steps + noise + season[np.arange(n) % 4])
    margin = p.net_margin + p.margin_noise * rng.standard_normal(n)
    net_income = revenue * margin
    operating = revenue * (margin + p.operating_gap + 0.3 * p.margin_noise * rng.standard_normal(n))
    assets = 4.0 * revenue / p.asset_turnover * np.exp(0.02 * rng.standard_normal(n))
    leverage = np.clip(p.leverage + 0.01 * rng.standard_normal(n), 0.05, 0.97)
    liabilities = assets * leverage
    equity = assets - liabilities
    debt = liabilities * p.debt_share
    cash_flow = net_income + revenue * (0.06 + 0.02 * rng.standard_normal(n))
    filed_after = rng.integers(30, 46, n)
    shares_today = float(m.ref["shares_adjusted"][i])
    last_index = len(m.sessions) - 1
    shares = np.array([shares_today / _split_factor_after(m, i, e, last_index) for e in ends])
    cik = str(m.ref["cik"][i])
    name = str(m.ref["name"][i])
    ticker = str(m.tickers[i])
    sic = int(m.ref["sic_code"][i])
    out: list[dict[str, Any]] = []

    def record(rows: np.ndarray, period: str, timeframe: str) -> dict[str, Any]:
        k = int(rows[-1])
        start = _first_of_period(ends[int(rows[0])])
        end = ends[k]
        filing = end + dt.timedelta(days=int(filed_after[k]))
        rev, ni, op, ocf = (float(x[rows].sum()) for x in (revenue, net_income, operating, cash_flow))
        avg_shares = float(shares[rows].mean())
        accession = hashlib.sha1(f"{ticker}:{end}:{timeframe}".encode()).hexdigest()[:18]
        return {
            "start_date": start.isoformat(),
            "end_date": end.isoformat(),
            "filing_date": filing.isoformat(),
            "timeframe": timeframe,
            "fiscal_period": period,
            "fiscal_year": str(_fiscal_year(end, p.fy_end_month)),
            "cik": cik,
            "company_name": name,
            "tickers": [ticker],
            "sic": str(sic) if sic else None,
            "source_filing_url": f"https://api.polygon.io/v1/reference/sec/filings/{accession}",
            "source_filing_file_url": f"https://api.polygon.io/v1/reference/sec/filings/{accession}/files/x.xml",
            "financials": {
                "income_statement": {
                    "revenues": _dp(rev, "Revenues", 100),
                    "operating_income_loss": _dp(op, "Operating Income/Loss", 1100),
                    "net_income_loss": _dp(ni, "Net Income/Loss", 3200),
                    "net_income_loss_attributable_to_parent": _dp(ni, "Net Income/Loss Attributable To Parent", 3500),
                    "basic_average_shares": _dp(avg_shares, "Basic Average Shares", 4400, "shares"),
                    "basic_earnings_per_share": _dp(ni / avg_shares, "Basic Earnings Per Share", 4200, "USD / shares"),
                    "diluted_earnings_per_share": _dp(
                        ni / (avg_shares * 1.01), "Diluted Earnings Per Share", 4300, "USD / shares"
                    ),
                },
                "balance_sheet": {
                    "assets": _dp(assets[k], "Assets", 100),
                    "liabilities": _dp(liabilities[k], "Liabilities", 600),
                    "long_term_debt": _dp(debt[k], "Long-term Debt", 810),
                    "equity": _dp(equity[k], "Equity", 1400),
                    "equity_attributable_to_parent": _dp(equity[k], "Equity Attributable To Parent", 1600),
                    "liabilities_and_equity": _dp(assets[k], "Liabilities And Equity", 1900),
                },
                "cash_flow_statement": {
                    "net_cash_flow_from_operating_activities": _dp(ocf, "Net Cash Flow From Operating Activities", 100),
                },
                "comprehensive_income": {
                    "comprehensive_income_loss": _dp(ni, "Comprehensive Income/Loss", 100),
                },
            },
        }

    for k in range(n):
        quarter = _fiscal_quarter(ends[k], p.fy_end_month)
        out.append(record(np.array([k]), f"Q{quarter}", "quarterly"))
        if quarter == 4 and k >= 3:
            out.append(record(np.arange(k - 3, k + 1), "FY", "annual"))
    return tuple(out)


def _first_of_period(end: dt.date) -> dt.date:
    """First day of the three-month period ending on ``end`` (a month end)."""
    month = end.month - 2
    year = end.year
    if month <= 0:
        month += 12
        year -= 1
    return dt.date(year, month, 1)


def _fiscal_quarter(end: dt.date, fy_end_month: int) -> int:
    return ((end.month - fy_end_month - 1) % 12) // 3 + 1


def _fiscal_year(end: dt.date, fy_end_month: int) -> int:
    """The calendar year in which the fiscal year containing ``end`` closes."""
    return end.year if end.month <= fy_end_month else end.year + 1


def _filter_dates(values: np.ndarray, state: Mapping[str, str], name: str) -> np.ndarray:
    keep = np.ones(len(values), dtype=bool)
    for suffix, compare in _COMPARISONS:
        raw = state.get(f"{name}{suffix}")
        if raw:
            keep &= compare(values, np.datetime64(_parse_date(raw, f"{name}{suffix}"), "D"))
    return keep


def _order(state: Mapping[str, str], allowed: tuple[str, ...], default_order: str) -> tuple[str, str]:
    """(sort field, order) from ``sort`` and ``order``; ``sort`` may also be ``field.asc|desc``."""
    sort = state.get("sort") or allowed[0]
    order = state.get("order") or ""
    if "." in sort:
        sort, order = sort.rsplit(".", 1)
    if sort not in allowed:
        raise bad_request(f"Invalid value for 'sort': must be one of {', '.join(allowed)}.")
    order = order or default_order
    if order not in ("asc", "desc"):
        raise bad_request("Invalid value for 'order': must be asc or desc.")
    return sort, order


class FundamentalsApi:
    """Answers ``/vX/reference/financials`` and the dividend endpoints from one market."""

    def __init__(self, market: Market) -> None:
        self.market = market
        self._all_dividends: list[dict[str, Any]] | None = None

    def _symbol(self, state: Mapping[str, str]) -> int | None:
        m = self.market
        if state.get("ticker"):
            return m.ticker_index(state["ticker"])
        if state.get("cik"):
            hits = np.flatnonzero(m.ref["cik"] == state["cik"].zfill(10))
            return int(hits[0]) if len(hits) else None
        raise bad_request("This endpoint needs a 'ticker' or 'cik' parameter.")

    # -- financials ------------------------------------------------------------------------------
    def financials(self, params: Mapping[str, str], base_url: str) -> bytes:
        state, offset, limit = _page_state(params, FINANCIALS_DEFAULT_LIMIT, FINANCIALS_MAX_LIMIT)
        timeframe = state.get("timeframe") or ""
        if timeframe not in ("", "quarterly", "annual"):
            raise bad_request("Invalid value for 'timeframe': must be quarterly or annual.")
        sort, order = _order(state, ("period_of_report_date", "filing_date"), "desc")
        m = self.market
        i = self._symbol(state)
        rows = [r for r in statements(m, i) if not timeframe or r["timeframe"] == timeframe] if i is not None else []
        today = m.today.isoformat()
        rows = [r for r in rows if r["filing_date"] <= today]
        filing = np.array([r["filing_date"] for r in rows], dtype="datetime64[D]")
        period = np.array([r["end_date"] for r in rows], dtype="datetime64[D]")
        keep = _filter_dates(filing, state, "filing_date") & _filter_dates(period, state, "period_of_report_date")
        selected = np.flatnonzero(keep)
        key = filing if sort == "filing_date" else period
        selected = selected[np.lexsort((selected, key[selected]))]
        if order == "desc":
            selected = selected[::-1]
        page = selected[offset : offset + limit]
        body: dict[str, Any] = {"results": [rows[j] for j in page], "status": "OK", "count": len(page)}
        if offset + limit < len(selected):
            body["next_url"] = _next_page_url(
                f"{base_url}/vX/reference/financials", {**state, "sort": sort, "order": order}, offset + limit
            )
        return orjson.dumps(body)

    # -- dividends -------------------------------------------------------------------------------
    def _dividends_of(self, i: int) -> list[dict[str, Any]]:
        """Every dividend of ticker ``i`` over the generated history (visible or not yet declared)."""
        return list(_dividend_events(self.market, i))

    def _selected_dividends(self, state: Mapping[str, str]) -> list[dict[str, Any]]:
        m = self.market
        if state.get("ticker"):
            i = m.ticker_index(state["ticker"])
            rows = self._dividends_of(i) if i is not None else []
        else:
            if self._all_dividends is None:
                self._all_dividends = [d for j in range(len(m.tickers)) for d in _dividend_events(m, j)]
            rows = self._all_dividends
        today = m.today.isoformat()
        rows = [r for r in rows if r["declaration_date"] <= today]
        if not rows:
            return []
        keep = np.ones(len(rows), dtype=bool)
        for field in ("ex_dividend_date", "pay_date", "record_date", "declaration_date"):
            if any(k.startswith(field) for k in state):
                keep &= _filter_dates(np.array([r[field] for r in rows], dtype="datetime64[D]"), state, field)
        if state.get("frequency"):
            keep &= np.array([str(r["frequency"]) == state["frequency"] for r in rows])
        return [r for r, k in zip(rows, keep, strict=True) if k]

    def _dividend_page(
        self,
        params: Mapping[str, str],
        base_url: str,
        path: str,
        shape: Callable[[dict[str, Any]], dict[str, Any]],
        default_limit: int,
        max_limit: int,
    ) -> bytes:
        state, offset, limit = _page_state(params, default_limit, max_limit)
        sort, order = _order(state, ("ex_dividend_date", "pay_date", "declaration_date", "ticker"), "desc")
        rows = self._selected_dividends(state)
        rows.sort(key=lambda r: (r[sort], r["ticker"], r["ex_dividend_date"]), reverse=order == "desc")
        page = rows[offset : offset + limit]
        body: dict[str, Any] = {"results": [shape(r) for r in page], "status": "OK"}
        if offset + limit < len(rows):
            body["next_url"] = _next_page_url(
                f"{base_url}{path}", {**state, "sort": sort, "order": order}, offset + limit
            )
        return orjson.dumps(body)

    def dividends_v3(self, params: Mapping[str, str], base_url: str) -> bytes:
        """``/v3/reference/dividends``: the shape the official client's ``list_dividends`` reads."""
        keys = (
            "id",
            "cash_amount",
            "currency",
            "declaration_date",
            "dividend_type",
            "ex_dividend_date",
            "frequency",
            "pay_date",
            "record_date",
            "ticker",
        )
        return self._dividend_page(
            params,
            base_url,
            "/v3/reference/dividends",
            lambda r: {k: r[k] for k in keys},
            DIVIDENDS_DEFAULT_LIMIT,
            DIVIDENDS_MAX_LIMIT,
        )

    def dividends_v1(self, params: Mapping[str, str], base_url: str) -> bytes:
        """``/stocks/v1/dividends``: adds the distribution type and split-adjusted amounts."""
        m = self.market

        def shape(r: dict[str, Any]) -> dict[str, Any]:
            i = m.ticker_index(r["ticker"])
            factor = 1.0
            if i is not None:
                factor = _split_factor_after(
                    m, i, dt.date.fromisoformat(r["ex_dividend_date"]) - dt.timedelta(days=1), m.today_index
                )
            return {
                "id": r["id"],
                "ticker": r["ticker"],
                "declaration_date": r["declaration_date"],
                "ex_dividend_date": r["ex_dividend_date"],
                "record_date": r["record_date"],
                "pay_date": r["pay_date"],
                "frequency": r["frequency"],
                "cash_amount": r["cash_amount"],
                "currency": r["currency"],
                "distribution_type": "recurring",
                "historical_adjustment_factor": round(1.0 / factor, 6),
                "split_adjusted_cash_amount": round(r["cash_amount"] / factor, 6),
            }

        return self._dividend_page(params, base_url, "/stocks/v1/dividends", shape, 100, 5_000)


@lru_cache(maxsize=65_536)
def _dividend_events(m: Market, i: int) -> tuple[dict[str, Any], ...]:
    """Ticker ``i``'s cash dividends over the history: a fixed schedule, amounts reset once a year."""
    p = profile(m, i)
    if p is None or p.frequency == 0:
        return ()
    rng = _rng(m, i, "dividends")
    step = 12 // p.frequency
    closes = m.close[:, i]
    traded = np.flatnonzero(np.isfinite(closes))
    if not len(traded):
        return ()
    first_day, last_day = m.session_date(int(traded[0])), m.session_date(int(traded[-1]))
    sessions = m.sessions
    ticker = str(m.tickers[i])
    day_of_month = int(rng.integers(5, 25))
    out: list[dict[str, Any]] = []
    annual: dict[int, float] = {}
    for year in range(first_day.year, m.session_date(len(sessions) - 1).year + 2):
        for month in range(p.dividend_month, 13, step):
            ex = _next_session(dt.date(year, month, day_of_month))
            if ex is None:
                continue
            declared = ex - dt.timedelta(days=int(rng.integers(21, 36)))
            if declared < first_day or declared > last_day:
                continue
            if year not in annual:
                at = min(int(np.searchsorted(sessions, np.datetime64(declared, "D"))), len(sessions) - 1)
                window = closes[: at + 1]
                seen = np.flatnonzero(np.isfinite(window))
                if not len(seen):
                    continue
                annual[year] = p.dividend_yield * float(window[seen[-1]]) * np.exp(0.03 * rng.standard_normal())
            amount = max(round(float(annual[year]) / p.frequency, 4 if annual[year] < 0.04 else 2), 0.0001)
            pay = ex + dt.timedelta(days=int(rng.integers(14, 29)))
            out.append(
                {
                    "id": "E" + hashlib.sha1(f"{ticker}:{ex}:div".encode()).hexdigest()[:32],
                    "cash_amount": amount,
                    "currency": "USD",
                    "declaration_date": declared.isoformat(),
                    "dividend_type": "CD",
                    "ex_dividend_date": ex.isoformat(),
                    "frequency": p.frequency,
                    "pay_date": pay.isoformat(),
                    "record_date": ex.isoformat(),
                    "ticker": ticker,
                }
            )
    return tuple(out)


@lru_cache(maxsize=1)
def _calendar_sessions() -> np.ndarray:
    return xnys().sessions.to_numpy().astype("datetime64[D]")


def _next_session(day: dt.date) -> dt.date | None:
    """The first XNYS session on or after ``day`` (dividend dates may lie past the generated sessions)."""
    sessions = _calendar_sessions()
    pos = int(np.searchsorted(sessions, np.datetime64(day, "D")))
    return sessions[pos].astype(object) if pos < len(sessions) else None
