"""Financial statements (``/vX/reference/financials``) and dividends (``/v3/reference/dividends``)
decoded into small typed records, with point-in-time selection.

A statement counts from its filing date, not its period end: :func:`latest_filed` and
:func:`filed_by` only see filings made on or before the date asked for, so a backtest on a past
session never uses numbers the market did not have yet. Missing figures are NaN.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
import msgspec

from services.fetcher.pages import get_pages

FINANCIALS_PAGE_LIMIT = 100
DIVIDENDS_PAGE_LIMIT = 1_000
NAN = float("nan")


class _Point(msgspec.Struct):
    value: float | None = None


class _Section(msgspec.Struct):
    """The figures this module reads; the rest of each section is skipped by the decoder."""

    revenues: _Point | None = None
    operating_income_loss: _Point | None = None
    net_income_loss: _Point | None = None
    net_income_loss_attributable_to_parent: _Point | None = None
    basic_earnings_per_share: _Point | None = None
    diluted_earnings_per_share: _Point | None = None
    basic_average_shares: _Point | None = None
    assets: _Point | None = None
    liabilities: _Point | None = None
    equity: _Point | None = None
    equity_attributable_to_parent: _Point | None = None
    long_term_debt: _Point | None = None
    net_cash_flow_from_operating_activities: _Point | None = None


class _Financials(msgspec.Struct):
    income_statement: _Section | None = None
    balance_sheet: _Section | None = None
    cash_flow_statement: _Section | None = None


class _Filing(msgspec.Struct):
    start_date: str | None = None
    end_date: str | None = None
    filing_date: str | None = None
    timeframe: str | None = None
    fiscal_period: str | None = None
    fiscal_year: str | None = None
    cik: str | None = None
    tickers: list[str] | None = None
    financials: _Financials | None = None


class FinancialsPage(msgspec.Struct):
    results: list[_Filing] | None = None
    next_url: str | None = None


class _Dividend(msgspec.Struct):
    ticker: str | None = None
    cash_amount: float | None = None
    ex_dividend_date: str | None = None
    pay_date: str | None = None
    record_date: str | None = None
    declaration_date: str | None = None
    frequency: int | None = None


class DividendsPage(msgspec.Struct):
    results: list[_Dividend] | None = None
    next_url: str | None = None


_FINANCIALS = msgspec.json.Decoder(FinancialsPage)
_DIVIDENDS = msgspec.json.Decoder(DividendsPage)


@dataclass(frozen=True)
class FinancialStatement:
    """One filing's figures (USD, EPS in USD per share; NaN where the filing has no value).

    ``timeframe`` is "quarterly" or "annual"; ``fiscal_period`` "Q1".."Q4" or "FY". Flows
    (revenues, incomes, cash flow) cover ``start_date``..``end_date``; balances are at ``end_date``.
    """

    ticker: str
    timeframe: str
    fiscal_period: str
    fiscal_year: str
    start_date: dt.date
    end_date: dt.date
    filing_date: dt.date
    revenues: float
    operating_income: float
    net_income: float
    eps_basic: float
    eps_diluted: float
    shares_basic: float
    assets: float
    liabilities: float
    equity: float
    long_term_debt: float
    operating_cash_flow: float


@dataclass(frozen=True)
class DividendRecord:
    """One cash dividend; ``frequency`` is payments a year (0 when not given)."""

    ticker: str
    cash_amount: float
    ex_dividend_date: dt.date
    pay_date: dt.date | None
    record_date: dt.date | None
    declaration_date: dt.date | None
    frequency: int


def _value(*points: _Point | None) -> float:
    """The first present value among ``points`` (fallback figures), NaN if none."""
    for point in points:
        if point is not None and point.value is not None:
            return float(point.value)
    return NAN


def _date(value: str | None) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value[:10])
    except ValueError:
        return None


def _statement(ticker: str, f: _Filing) -> FinancialStatement | None:
    """A record from one filing; None when it lacks the dates that place it in time."""
    end, filed = _date(f.end_date), _date(f.filing_date)
    if end is None or filed is None:
        return None
    start = _date(f.start_date) or end
    fin = f.financials or _Financials()
    inc, bal, cash = (
        fin.income_statement or _Section(),
        fin.balance_sheet or _Section(),
        fin.cash_flow_statement or _Section(),
    )
    period = f.fiscal_period or ""
    timeframe = f.timeframe or ("annual" if period == "FY" else "quarterly")
    return FinancialStatement(
        ticker=ticker,
        timeframe=timeframe,
        fiscal_period=period,
        fiscal_year=f.fiscal_year or "",
        start_date=start,
        end_date=end,
        filing_date=filed,
        revenues=_value(inc.revenues),
        operating_income=_value(inc.operating_income_loss),
        net_income=_value(inc.net_income_loss_attributable_to_parent, inc.net_income_loss),
        eps_basic=_value(inc.basic_earnings_per_share),
        eps_diluted=_value(inc.diluted_earnings_per_share, inc.basic_earnings_per_share),
        shares_basic=_value(inc.basic_average_shares),
        assets=_value(bal.assets),
        liabilities=_value(bal.liabilities),
        equity=_value(bal.equity_attributable_to_parent, bal.equity),
        long_term_debt=_value(bal.long_term_debt),
        operating_cash_flow=_value(cash.net_cash_flow_from_operating_activities),
    )


def decode_financials_page(body: bytes) -> FinancialsPage:
    return _FINANCIALS.decode(body)


def statements_from_pages(ticker: str, pages: Iterable[FinancialsPage]) -> list[FinancialStatement]:
    """Records of every filing in ``pages``, oldest period first (undatable filings are left out)."""
    rows = [s for p in pages for f in (p.results or ()) if (s := _statement(ticker, f)) is not None]
    return sorted(rows, key=lambda s: (s.end_date, s.filing_date, s.timeframe))


def decode_financials(ticker: str, bodies: Sequence[bytes]) -> list[FinancialStatement]:
    """Records from raw ``/vX/reference/financials`` bodies (all pages of one ticker)."""
    return statements_from_pages(ticker, (decode_financials_page(b) for b in bodies))


def filed_by(
    statements: Iterable[FinancialStatement], on: dt.date, timeframe: str = "quarterly"
) -> list[FinancialStatement]:
    """Statements of ``timeframe`` filed on or before ``on``, newest period first.

    A period filed twice (an amendment) keeps its latest filing made by ``on``.
    """
    latest: dict[dt.date, FinancialStatement] = {}
    for s in statements:
        if s.timeframe == timeframe and s.filing_date <= on:
            seen = latest.get(s.end_date)
            if seen is None or s.filing_date >= seen.filing_date:
                latest[s.end_date] = s
    return [latest[k] for k in sorted(latest, reverse=True)]


def latest_filed(
    statements: Iterable[FinancialStatement], on: dt.date, timeframe: str = "quarterly"
) -> FinancialStatement | None:
    """The statement of the most recent period filed on or before ``on``; None if none was."""
    rows = filed_by(statements, on, timeframe)
    return rows[0] if rows else None


def decode_dividends_page(body: bytes) -> DividendsPage:
    return _DIVIDENDS.decode(body)


def dividends_from_pages(pages: Iterable[DividendsPage]) -> list[DividendRecord]:
    """Records of every dividend with a ticker, an amount and an ex date, oldest ex date first."""
    out: list[DividendRecord] = []
    for page in pages:
        for d in page.results or ():
            ex = _date(d.ex_dividend_date)
            if ex is None or not d.ticker or d.cash_amount is None:
                continue
            out.append(
                DividendRecord(
                    ticker=d.ticker,
                    cash_amount=float(d.cash_amount),
                    ex_dividend_date=ex,
                    pay_date=_date(d.pay_date),
                    record_date=_date(d.record_date),
                    declaration_date=_date(d.declaration_date),
                    frequency=int(d.frequency or 0),
                )
            )
    return sorted(out, key=lambda r: (r.ticker, r.ex_dividend_date))


def trailing_dividends(records: Iterable[DividendRecord], on: dt.date, days: int = 365) -> float:
    """Cash paid per share with ex dates in the ``days`` before ``on`` (inclusive), declared by ``on``."""
    start = on - dt.timedelta(days=days)
    return float(
        sum(
            r.cash_amount
            for r in records
            if start < r.ex_dividend_date <= on and (r.declaration_date is None or r.declaration_date <= on)
        )
    )


async def fetch_financials(
    session: aiohttp.ClientSession,
    base_url: str,
    api_key: str,
    ticker: str,
    timeframe: str = "quarterly",
    filed_on_or_before: dt.date | None = None,
) -> list[FinancialStatement]:
    """Every ``timeframe`` statement of ``ticker`` (filed by a date when given), oldest period first."""
    params: dict[str, Any] = {
        "ticker": ticker,
        "timeframe": timeframe,
        "limit": FINANCIALS_PAGE_LIMIT,
        "sort": "filing_date",
        "order": "desc",
    }
    if filed_on_or_before is not None:
        params["filing_date.lte"] = filed_on_or_before.isoformat()
    pages = await get_pages(
        session, base_url, api_key, "/vX/reference/financials", params, decode_financials_page, lambda p: p.next_url
    )
    return statements_from_pages(ticker, pages)


async def fetch_dividends(
    session: aiohttp.ClientSession, base_url: str, api_key: str, ticker: str
) -> list[DividendRecord]:
    """Every cash dividend of ``ticker`` Polygon lists, oldest ex date first."""
    params: dict[str, Any] = {"ticker": ticker, "limit": DIVIDENDS_PAGE_LIMIT}
    pages = await get_pages(
        session, base_url, api_key, "/v3/reference/dividends", params, decode_dividends_page, lambda p: p.next_url
    )
    return dividends_from_pages(pages)
