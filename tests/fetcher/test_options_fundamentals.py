"""Chain and statement decoders: on Polygon-shaped fixtures, beside the official client's models, and
on the simulator's answers fetched over HTTP."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import aiohttp
import numpy as np
import orjson
import pytest
from aiohttp import web
from polygon.rest.models import Dividend, OptionContractSnapshot, StockFinancial

from services.fetcher.fundamentals import (
    DividendRecord,
    FinancialStatement,
    decode_dividends_page,
    decode_financials,
    dividends_from_pages,
    fetch_dividends,
    fetch_financials,
    filed_by,
    latest_filed,
    trailing_dividends,
)
from services.fetcher.options import decode_chain, decode_chain_page, fetch_chain
from services.fetcher.pages import get_decoded
from services.fetcher.polygon import PolygonAuthError, PolygonBadRequest, PolygonUnavailable
from services.marketsim.fundamentals import profile, statements
from services.marketsim.market import Market, load_market
from services.marketsim.options import build_chain
from tests.marketsim.conftest import API_KEY, SMALL, sim_env, wait_health
from tests.support import free_port, start_service

FIXTURES = Path(__file__).parent / "fixtures"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


# -- Polygon-shaped fixtures --------------------------------------------------------------------


def test_chain_fixture_decodes_like_the_official_client() -> None:
    body = fixture("options_chain_snapshot.json")
    chain = decode_chain("AAPL", [body])
    official = [OptionContractSnapshot.from_dict(r) for r in orjson.loads(body)["results"]]
    assert len(chain) == len(official) == 3
    assert chain.spot == 170.375
    for j, o in enumerate(official):
        assert chain.ticker[j] == o.details.ticker
        assert str(chain.expiration[j]) == o.details.expiration_date
        assert chain.strike[j] == o.details.strike_price
        assert chain.is_call[j] == (o.details.contract_type == "call")
        for column, value in (
            (chain.bid, o.last_quote.bid),
            (chain.ask, o.last_quote.ask),
            (chain.delta, o.greeks.delta),
            (chain.iv, o.implied_volatility),
            (chain.open_interest, o.open_interest),
            (chain.last, o.last_trade.price if o.last_trade else None),
        ):
            assert (np.isnan(column[j]) and value is None) or column[j] == value
    assert chain.mid[0] == 21.075 and chain.volume[0] == 37
    assert np.isnan(chain.delta[1]) and np.isnan(chain.last[1]) and chain.open_interest[1] == 0
    assert np.isnan(chain.mid[2]) and np.isnan(chain.bid[2])
    assert decode_chain_page(body).next_url is not None
    subset = chain.take(chain.is_call)
    assert len(subset) == 1 and subset.ticker[0] == "O:AAPL240119C00150000"


def test_financials_fixture_decodes_like_the_official_client() -> None:
    body = fixture("financials.json")
    rows = decode_financials("XMPL", [body])
    assert [r.fiscal_period for r in rows] == ["FY", "Q3"]  # the undated filing is left out
    official = StockFinancial.from_dict(orjson.loads(body)["results"][0])
    q3 = rows[1]
    inc, bal = official.financials.income_statement, official.financials.balance_sheet
    assert q3.revenues == inc.revenues.value and q3.operating_income == inc.operating_income_loss.value
    assert q3.net_income == inc.net_income_loss_attributable_to_parent.value
    assert q3.eps_basic == inc.basic_earnings_per_share.value and q3.eps_diluted == 2.48
    assert q3.assets == bal.assets.value and q3.liabilities == bal.liabilities.value
    assert q3.equity == bal.equity_attributable_to_parent.value and q3.long_term_debt == bal.long_term_debt.value
    assert q3.operating_cash_flow == 8.56e8
    assert q3.filing_date == dt.date(2023, 11, 2) and q3.end_date == dt.date(2023, 9, 30)
    fy = rows[0]
    assert fy.timeframe == "annual" and np.isnan(fy.operating_income) and np.isnan(fy.long_term_debt)


def test_dividends_fixture_decodes_like_the_official_client() -> None:
    body = fixture("dividends.json")
    rows = dividends_from_pages([decode_dividends_page(body)])
    official = [Dividend.from_dict(r) for r in orjson.loads(body)["results"]]
    assert [r.ex_dividend_date.isoformat() for r in rows] == sorted(d.ex_dividend_date for d in official)
    assert all(r.cash_amount == 0.24 and r.frequency == 4 for r in rows)
    assert trailing_dividends(rows, dt.date(2023, 11, 10)) == pytest.approx(0.48)
    assert trailing_dividends(rows, dt.date(2023, 11, 9)) == pytest.approx(0.24)


def _statement(end: str, filed: str, eps: float, timeframe: str = "quarterly") -> FinancialStatement:
    nan = float("nan")
    day = dt.date.fromisoformat(end)
    return FinancialStatement(
        ticker="X",
        timeframe=timeframe,
        fiscal_period="Q1",
        fiscal_year="2024",
        start_date=day,
        end_date=day,
        filing_date=dt.date.fromisoformat(filed),
        revenues=1.0,
        operating_income=nan,
        net_income=eps,
        eps_basic=eps,
        eps_diluted=eps,
        shares_basic=1.0,
        assets=nan,
        liabilities=nan,
        equity=nan,
        long_term_debt=nan,
        operating_cash_flow=nan,
    )


def test_point_in_time_selection() -> None:
    rows = [
        _statement("2024-03-31", "2024-05-01", 1.0),
        _statement("2024-06-30", "2024-08-05", 2.0),
        _statement("2024-06-30", "2024-09-20", 2.5),  # an amendment of Q2
        _statement("2024-06-30", "2024-08-05", 9.0, "annual"),
    ]
    assert latest_filed(rows, dt.date(2024, 4, 30)) is None
    assert latest_filed(rows, dt.date(2024, 5, 1)).eps_basic == 1.0  # counts from its filing date
    assert latest_filed(rows, dt.date(2024, 8, 4)).eps_basic == 1.0  # Q2 ended, not filed yet
    assert latest_filed(rows, dt.date(2024, 8, 5)).eps_basic == 2.0
    assert latest_filed(rows, dt.date(2024, 10, 1)).eps_basic == 2.5
    assert [s.eps_basic for s in filed_by(rows, dt.date(2024, 10, 1))] == [2.5, 1.0]
    assert latest_filed(rows, dt.date(2024, 10, 1), "annual").eps_basic == 9.0


# -- the simulator over HTTP --------------------------------------------------------------------


@pytest.fixture(scope="module")
def sim_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Market]]:
    cache = tmp_path_factory.mktemp("fetcher-options-sim")
    port = free_port()
    proc = start_service("services.marketsim", port, tmp_path_factory.mktemp("sim-logs"), sim_env(port, cache))
    url = f"http://127.0.0.1:{port}"
    try:
        wait_health(proc, url)
        yield url, load_market(SMALL, cache)
    finally:
        proc.terminate()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def _largest(m: Market) -> str:
    ok = np.isin(m.ref["type"], ["CS", "ADRC"]) & (m.ref["market"] == "stocks") & np.isfinite(m.close[m.today_index])
    return str(m.tickers[int(np.argmax(np.where(ok, np.nan_to_num(m.ref["market_cap"]), -1.0)))])


async def test_fetch_chain_from_the_simulator(sim_url: tuple[str, Market], session: aiohttp.ClientSession) -> None:
    url, m = sim_url
    ticker = _largest(m)
    chain = await fetch_chain(session, url, API_KEY, ticker)
    expected = build_chain(m, m.ticker_index(ticker))
    assert expected is not None and len(chain) == len(expected.strike) > 250
    assert chain.spot == expected.spot
    np.testing.assert_array_equal(chain.strike, expected.strike)
    np.testing.assert_array_equal(chain.expiration, expected.expiration)
    np.testing.assert_allclose(chain.delta, expected.delta, atol=1e-6)
    np.testing.assert_allclose(chain.iv, expected.iv, atol=1e-6)
    np.testing.assert_array_equal(chain.bid, expected.bid)
    puts = await fetch_chain(session, url, API_KEY, ticker, {"contract_type": "put"})
    assert len(puts) == int((~expected.is_call).sum()) and not puts.is_call.any()
    with pytest.raises(PolygonAuthError):
        await fetch_chain(session, url, "wrong-key", ticker)


async def test_fetch_financials_point_in_time(sim_url: tuple[str, Market], session: aiohttp.ClientSession) -> None:
    url, m = sim_url
    ticker = _largest(m)
    rows = await fetch_financials(session, url, API_KEY, ticker)
    truth = [r for r in statements(m, m.ticker_index(ticker)) if r["timeframe"] == "quarterly"]
    visible = [r for r in truth if r["filing_date"] <= m.today.isoformat()]
    assert len(rows) == len(visible) and all(r.timeframe == "quarterly" for r in rows)
    assert [r.end_date.isoformat() for r in rows] == sorted(r["end_date"] for r in visible)
    cutoff = dt.date.fromisoformat(visible[-1]["filing_date"]) - dt.timedelta(days=1)
    earlier = await fetch_financials(session, url, API_KEY, ticker, filed_on_or_before=cutoff)
    assert len(earlier) == len(rows) - 1
    latest = latest_filed(rows, cutoff)
    assert latest is not None and latest.end_date == earlier[-1].end_date
    inc = visible[-1]["financials"]["income_statement"]
    assert rows[-1].eps_basic == inc["basic_earnings_per_share"]["value"]
    annual = await fetch_financials(session, url, API_KEY, ticker, "annual")
    assert annual and all(a.fiscal_period == "FY" for a in annual)
    with pytest.raises(PolygonBadRequest):
        await fetch_financials(session, url, API_KEY, ticker, "monthly")


async def test_fetch_dividends(sim_url: tuple[str, Market], session: aiohttp.ClientSession) -> None:
    url, m = sim_url
    stocks = np.flatnonzero(np.isin(m.ref["type"], ["CS", "ADRC"]) & m.ref["active"])
    payer = next(str(m.tickers[i]) for i in stocks if (p := profile(m, int(i))) is not None and p.frequency == 4)
    rows = await fetch_dividends(session, url, API_KEY, payer)
    assert rows and all(isinstance(r, DividendRecord) and r.ticker == payer for r in rows)
    exes = [r.ex_dividend_date for r in rows]
    assert exes == sorted(exes)
    assert trailing_dividends(rows, m.today) > 0


@contextlib.asynccontextmanager
async def dividends_source(handler: Callable[[web.Request], Awaitable[web.Response]]) -> AsyncIterator[str]:
    """A loopback server for the dividends endpoint on the port it was given (bound to port 0)."""
    app = web.Application()
    app.router.add_get("/v3/reference/dividends", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def test_fetch_retries_a_transient_error() -> None:
    calls = {"n": 0}

    async def handler(request: web.Request) -> web.Response:
        calls["n"] += 1
        if calls["n"] == 1:
            return web.json_response({"status": "ERROR", "error": "busy"}, status=503)
        assert request.headers["Authorization"] == "Bearer k"
        return web.Response(body=fixture("dividends.json"), content_type="application/json")

    async with dividends_source(handler) as url, aiohttp.ClientSession() as s:
        rows = await fetch_dividends(s, url, "k", "AAPL")
    assert len(rows) == 2 and calls["n"] == 2


@pytest.mark.parametrize(
    ("status", "error"), [(401, PolygonAuthError), (403, PolygonAuthError), (400, PolygonBadRequest)]
)
async def test_client_errors_are_not_retried(status: int, error: type[Exception]) -> None:
    calls: list[int] = []

    async def handler(request: web.Request) -> web.Response:
        calls.append(status)
        return web.json_response({"status": "ERROR", "error": "no"}, status=status)

    async with dividends_source(handler) as url, aiohttp.ClientSession() as s:
        with pytest.raises(error):
            await get_decoded(s, url + "/v3/reference/dividends", "k", None, bytes, retries=5, backoff=0.001)
    assert calls == [status]


async def test_transient_errors_are_retried_a_bounded_number_of_times() -> None:
    calls: list[int] = []

    async def handler(request: web.Request) -> web.Response:
        calls.append(1)
        return web.json_response({"status": "ERROR", "error": "slow down"}, status=429)

    async with dividends_source(handler) as url, aiohttp.ClientSession() as s:
        with pytest.raises(PolygonUnavailable, match=r"3 attempts.*slow down"):
            await get_decoded(s, url + "/v3/reference/dividends", "k", None, bytes, retries=2, backoff=0.001)
    assert len(calls) == 3
