"""Option chains, financials and dividends of the running simulator, read by the official client."""

from __future__ import annotations

import datetime as dt
import math

import httpx
import numpy as np
import pytest
from polygon import RESTClient
from polygon.rest.models import Dividend, OptionContractSnapshot, StockFinancial
from scipy.stats import norm

from services.marketsim.fundamentals import profile, statements
from services.marketsim.options import RISK_FREE_RATE, build_chain
from tests.marketsim.conftest import API_KEY, RunningSim


def client(sim: RunningSim) -> RESTClient:
    return RESTClient(api_key=API_KEY, base=sim.url, retries=0)


def get(sim: RunningSim, path: str, **params: str | int) -> httpx.Response:
    return httpx.get(f"{sim.url}{path}", params={"apiKey": API_KEY, **params}, timeout=30)


def requests(sim: RunningSim, endpoint: str) -> int:
    return int(sim.admin("GET", "/admin/stats").json()["requests"].get(endpoint, 0))


def largest_stock(sim: RunningSim) -> str:
    m = sim.market
    ok = np.isin(m.ref["type"], ["CS", "ADRC"]) & (m.ref["market"] == "stocks") & np.isfinite(m.close[m.today_index])
    cap = np.where(ok, np.nan_to_num(m.ref["market_cap"]), -1.0)
    return str(m.tickers[int(np.argmax(cap))])


def reference_bs(spot: float, strike: float, years: float, rate: float, q: float, vol: float, call: bool):
    """Black-Scholes price and delta written independently of the simulator."""
    d1 = (math.log(spot / strike) + (rate - q + vol * vol / 2) * years) / (vol * math.sqrt(years))
    d2 = d1 - vol * math.sqrt(years)
    if call:
        price = spot * math.exp(-q * years) * norm.cdf(d1) - strike * math.exp(-rate * years) * norm.cdf(d2)
        return price, math.exp(-q * years) * norm.cdf(d1)
    price = strike * math.exp(-rate * years) * norm.cdf(-d2) - spot * math.exp(-q * years) * norm.cdf(-d1)
    return price, -math.exp(-q * years) * norm.cdf(-d1)


# -- option chains ------------------------------------------------------------------------------


def test_chain_through_the_official_client_pages_and_reprices(clean_sim: RunningSim) -> None:
    m = clean_sim.market
    underlying = largest_stock(clean_sim)
    i = m.ticker_index(underlying)
    assert i is not None
    contracts = list(client(clean_sim).list_snapshot_options_chain(underlying, params={"limit": 250}))
    expected = build_chain(m, i)
    assert expected is not None and len(contracts) == len(expected.strike) > 250
    assert requests(clean_sim, "options_chain") == -(-len(contracts) // 250)
    assert all(isinstance(c, OptionContractSnapshot) for c in contracts)
    tickers = [c.details.ticker for c in contracts]
    assert tickers == sorted(tickers) and len(set(tickers)) == len(tickers)
    today = m.today
    q = profile(m, i).dividend_yield if profile(m, i) else 0.0
    expiries = {c.details.expiration_date for c in contracts}
    assert len(expiries) >= 6
    assert max(dt.date.fromisoformat(e) for e in expiries) <= today + dt.timedelta(days=366)
    for c in contracts:
        d = c.details
        assert d.contract_type in ("call", "put") and d.shares_per_contract == 100
        code = f"{d.expiration_date[2:4]}{d.expiration_date[5:7]}{d.expiration_date[8:10]}"
        assert d.ticker == f"O:{underlying}{code}{d.contract_type[0].upper()}{round(d.strike_price * 1000):08d}"
        assert c.underlying_asset.ticker == underlying and c.underlying_asset.price == m.close[m.today_index, i]
        years = max((dt.date.fromisoformat(d.expiration_date) - today).days, 1) / 365
        price, delta = reference_bs(
            c.underlying_asset.price,
            d.strike_price,
            years,
            RISK_FREE_RATE,
            q,
            c.implied_volatility,
            d.contract_type == "call",
        )
        assert c.fair_market_value == pytest.approx(price, abs=2e-4)
        assert c.greeks.delta == pytest.approx(delta, abs=2e-6)
        q_ = c.last_quote
        assert 0 <= q_.bid <= c.fair_market_value + 0.01 and q_.ask >= c.fair_market_value - 0.01
        assert q_.midpoint == pytest.approx((q_.bid + q_.ask) / 2, abs=1e-9)
        assert c.greeks.gamma >= 0 and c.greeks.vega >= 0
        assert c.open_interest >= 0


def test_smile_term_structure_and_liquidity_shape(clean_sim: RunningSim) -> None:
    m = clean_sim.market
    i = m.ticker_index(largest_stock(clean_sim))
    c = build_chain(m, i)
    assert c is not None
    # Put skew: at the same expiry, low strikes carry more implied volatility than high strikes.
    first = c.expiration == c.expiration.min()
    low, high = c.strike[first].min(), c.strike[first].max()
    assert c.iv[first & (c.strike == low)][0] > c.iv[first & (c.strike == high)][0]
    # Open interest and tightness fall away from the money.
    moneyness = np.abs(np.log(c.strike / c.spot))
    near, far = moneyness < 0.03, moneyness > 0.2
    spread = (c.ask - c.bid) / np.maximum((c.ask + c.bid) / 2, 1e-9)
    assert np.median(c.open_interest[near]) > np.median(c.open_interest[far])
    assert np.median(spread[near]) < np.median(spread[far])


def test_small_names_have_thin_or_no_chains(clean_sim: RunningSim) -> None:
    m = clean_sim.market
    stocks = np.flatnonzero(np.isin(m.ref["type"], ["CS", "ADRC"]) & (m.ref["market"] == "stocks"))
    chains = {int(i): build_chain(m, int(i)) for i in stocks}
    assert any(c is None for c in chains.values())
    listed = {i: c for i, c in chains.items() if c is not None}
    caps = np.array([m.ref["market_cap"][i] for i in listed])
    atm_oi = np.array([np.median(c.open_interest[np.argsort(np.abs(c.delta - 0.5))[:4]]) for c in listed.values()])
    small, large = caps < np.quantile(caps, 0.25), caps > np.quantile(caps, 0.75)
    assert np.median(atm_oi[small]) < np.median(atm_oi[large])
    none = next(i for i, c in chains.items() if c is None)
    reply = get(clean_sim, f"/v3/snapshot/options/{m.tickers[none]}")
    assert reply.status_code == 200 and reply.json()["results"] == []


def test_chain_filters_and_sorting(clean_sim: RunningSim) -> None:
    underlying = largest_stock(clean_sim)
    c = client(clean_sim)
    puts = list(c.list_snapshot_options_chain(underlying, params={"contract_type": "put", "limit": 250}))
    assert puts and {p.details.contract_type for p in puts} == {"put"}
    expiry = puts[0].details.expiration_date
    one = list(
        c.list_snapshot_options_chain(
            underlying, params={"expiration_date": expiry, "strike_price.gte": puts[0].details.strike_price}
        )
    )
    assert {x.details.expiration_date for x in one} == {expiry}
    assert min(x.details.strike_price for x in one) >= puts[0].details.strike_price
    body = get(clean_sim, f"/v3/snapshot/options/{underlying}", sort="strike_price", order="desc", limit=5).json()
    strikes = [r["details"]["strike_price"] for r in body["results"]]
    assert strikes == sorted(strikes, reverse=True) and "next_url" in body
    assert get(clean_sim, f"/v3/snapshot/options/{underlying}", limit=251).status_code == 400


# -- financials ---------------------------------------------------------------------------------


def test_financials_through_the_official_client(clean_sim: RunningSim) -> None:
    m = clean_sim.market
    ticker = largest_stock(clean_sim)
    rows = list(client(clean_sim).vx.list_stock_financials(ticker=ticker, timeframe="quarterly", limit=3))
    assert requests(clean_sim, "financials") >= 2
    assert all(isinstance(r, StockFinancial) for r in rows) and len(rows) >= 6
    today = m.today.isoformat()
    ends = [r.end_date for r in rows]
    assert ends == sorted(ends, reverse=True)
    for r in rows:
        assert r.filing_date <= today and r.fiscal_period in ("Q1", "Q2", "Q3", "Q4")
        lag = (dt.date.fromisoformat(r.filing_date) - dt.date.fromisoformat(r.end_date)).days
        assert 30 <= lag <= 45
        inc, bal = r.financials.income_statement, r.financials.balance_sheet
        assert inc.revenues.value > 0 and inc.revenues.unit == "USD"
        assert inc.basic_earnings_per_share.value == pytest.approx(
            inc.net_income_loss.value / inc.basic_average_shares.value, rel=1e-3, abs=1e-4
        )
        assert bal.assets.value == pytest.approx(bal.liabilities.value + bal.equity.value, rel=1e-6)
        assert bal.long_term_debt.value <= bal.liabilities.value
        assert r.financials.cash_flow_statement.net_cash_flow_from_operating_activities.value is not None
    annual = list(client(clean_sim).vx.list_stock_financials(ticker=ticker, timeframe="annual"))
    assert annual and all(a.fiscal_period == "FY" for a in annual)
    fy = annual[0]
    quarters = [r for r in rows if r.fiscal_year == fy.fiscal_year]
    if len(quarters) == 4:
        total = sum(q.financials.income_statement.revenues.value for q in quarters)
        assert fy.financials.income_statement.revenues.value == pytest.approx(total, rel=1e-6)


def test_financials_are_point_in_time_and_history_is_stable(clean_sim: RunningSim) -> None:
    m = clean_sim.market
    ticker = largest_stock(clean_sim)
    i = m.ticker_index(ticker)
    everything = statements(m, i)
    cutoff = m.session_date(m.today_index - 120).isoformat()
    early = get(clean_sim, "/vX/reference/financials", ticker=ticker, **{"filing_date.lte": cutoff}, limit=100).json()
    assert early["results"] and all(r["filing_date"] <= cutoff for r in early["results"])
    later = [r for r in everything if cutoff < r["filing_date"] <= m.today.isoformat()]
    now = get(clean_sim, "/vX/reference/financials", ticker=ticker, limit=100).json()["results"]
    assert len(now) == len(early["results"]) + len(later)
    by_key = {(r["end_date"], r["timeframe"]): r for r in now}
    for r in early["results"]:
        assert by_key[(r["end_date"], r["timeframe"])]["financials"] == r["financials"]
    assert get(clean_sim, "/vX/reference/financials").status_code == 400


# -- dividends ----------------------------------------------------------------------------------


def test_dividends_through_the_official_client(clean_sim: RunningSim) -> None:
    m = clean_sim.market
    stocks = np.flatnonzero(np.isin(m.ref["type"], ["CS", "ADRC"]) & m.ref["active"])
    payer = next(int(i) for i in stocks if (p := profile(m, int(i))) is not None and p.frequency == 4)
    ticker = str(m.tickers[payer])
    divs = list(client(clean_sim).list_dividends(ticker=ticker, limit=2))
    assert requests(clean_sim, "dividends") >= 2
    assert divs and all(isinstance(d, Dividend) for d in divs)
    for d in divs:
        assert d.ticker == ticker and d.frequency == 4 and d.cash_amount > 0 and d.dividend_type == "CD"
        assert d.declaration_date <= m.today.isoformat() < "9999"
        assert d.declaration_date < d.ex_dividend_date <= d.pay_date and d.record_date == d.ex_dividend_date
    exes = [d.ex_dividend_date for d in divs]
    assert exes == sorted(exes, reverse=True)
    v1 = get(clean_sim, "/stocks/v1/dividends", ticker=ticker).json()["results"]
    assert [r["ex_dividend_date"] for r in v1] == exes
    assert all(r["split_adjusted_cash_amount"] > 0 and r["distribution_type"] == "recurring" for r in v1)
    non_payer = next(int(i) for i in stocks if (p := profile(m, int(i))) is not None and p.frequency == 0)
    assert list(client(clean_sim).list_dividends(ticker=str(m.tickers[non_payer]))) == []
