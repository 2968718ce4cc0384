"""Option ideas: choice of expiry and strikes, the payoff identities (property tests), liquidity."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import norm

from services.ranker.options import (
    IdeaRules,
    OptionIdeas,
    iv_rank,
    option_ideas,
    pick_expiry,
    realized_vol_history,
)

AS_OF = dt.date(2026, 11, 13)


@dataclass(frozen=True)
class Chain:
    expiration: np.ndarray
    strike: np.ndarray
    is_call: np.ndarray
    bid: np.ndarray
    ask: np.ndarray
    mid: np.ndarray
    open_interest: np.ndarray
    iv: np.ndarray
    delta: np.ndarray


def synthetic_chain(spot: float, vol: float, spread: float = 0.02, oi: float = 2_000.0, rate: float = 0.04) -> Chain:
    """Fridays over a year, strikes every 2.5 % around the spot, Black-Scholes mids, a fixed % spread."""
    days = np.array([7, 14, 21, 28, 35, 63, 91, 126, 182, 273, 364])
    strikes = spot * np.exp(np.linspace(-0.6, 0.6, 49))
    d, k = np.meshgrid(days, strikes, indexing="ij")
    d, k = np.repeat(d.ravel(), 2), np.repeat(k.ravel(), 2)
    call = np.tile([True, False], len(d) // 2)
    t = d / 365.0
    d1 = (np.log(spot / k) + (rate + vol**2 / 2) * t) / (vol * np.sqrt(t))
    d2 = d1 - vol * np.sqrt(t)
    price = np.where(
        call,
        spot * norm.cdf(d1) - k * np.exp(-rate * t) * norm.cdf(d2),
        k * np.exp(-rate * t) * norm.cdf(-d2) - spot * norm.cdf(-d1),
    )
    delta = np.where(call, norm.cdf(d1), norm.cdf(d1) - 1.0)
    mid = np.round(np.maximum(price, 0.01), 2)
    half = np.maximum(mid * spread / 2, 0.005)
    return Chain(
        expiration=np.datetime64(AS_OF, "D") + d.astype("timedelta64[D]"),
        strike=np.round(k, 2),
        is_call=call,
        bid=mid - half,
        ask=mid + half,
        mid=mid,
        open_interest=np.full(len(d), oi) * np.exp(-2 * np.abs(np.log(k / spot))),
        iv=np.full(len(d), vol),
        delta=delta,
    )


def check_identities(answer: OptionIdeas, spot: float) -> None:
    for idea in answer.ideas:
        assert idea.liquidity.ok and 0.0 <= idea.prob_itm <= 1.0
        assert idea.expiry == answer.expiry and all(leg.expiry == idea.expiry for leg in idea.legs)
        assert idea.strikes == tuple(leg.strike for leg in idea.legs)
        debit = idea.net_debit
        if idea.type in ("long_call", "long_put"):
            (leg,) = idea.legs
            assert debit == pytest.approx(leg.price, abs=1e-4) and debit > 0
            assert idea.max_loss == pytest.approx(debit, abs=1e-9) and idea.defined_risk
            if idea.type == "long_call":
                assert idea.max_profit is None and idea.breakeven == pytest.approx(leg.strike + debit, abs=1e-4)
                assert leg.contract_type == "call" and idea.side == "long"
            else:
                assert idea.breakeven == pytest.approx(leg.strike - debit, abs=1e-4)
                assert idea.max_profit == pytest.approx(leg.strike - debit, abs=1e-4)
        elif idea.type in ("call_debit_spread", "put_debit_spread"):
            buy, sell = idea.legs
            width = abs(sell.strike - buy.strike)
            assert (buy.action, sell.action) == ("buy", "sell") and buy.contract_type == sell.contract_type
            assert debit == pytest.approx(buy.price - sell.price, abs=1e-4) and 0 < debit < width
            assert idea.max_loss == pytest.approx(debit, abs=1e-9) and idea.defined_risk
            assert idea.max_profit == pytest.approx(width - debit, abs=1e-4)
            assert idea.max_profit + idea.max_loss == pytest.approx(width, abs=1e-3)
            sign = 1 if idea.type == "call_debit_spread" else -1
            assert sign * (sell.strike - buy.strike) > 0
            assert idea.breakeven == pytest.approx(buy.strike + sign * debit, abs=1e-4)
            assert abs(sell.delta) < abs(buy.delta)
        else:
            (leg,) = idea.legs
            assert idea.type == "cash_secured_put" and leg.action == "sell" and leg.strike < spot
            assert idea.net_credit == pytest.approx(leg.price, abs=1e-4) and idea.net_credit > 0
            assert idea.max_profit == pytest.approx(idea.net_credit, abs=1e-9)
            assert idea.max_loss == pytest.approx(leg.strike - idea.net_credit, abs=1e-4)
            assert idea.breakeven == pytest.approx(leg.strike - idea.net_credit, abs=1e-4)
    assert answer.reason is None if answer.ideas else answer.reason


@settings(max_examples=60, deadline=None)
@given(
    spot=st.floats(5.0, 800.0),
    vol=st.floats(0.12, 1.2),
    horizon=st.integers(1, 200),
    side=st.sampled_from(["long", "short"]),
    spread=st.floats(0.005, 0.3),
    oi=st.floats(0.0, 50_000.0),
)
def test_payoff_identities(spot: float, vol: float, horizon: int, side: str, spread: float, oi: float) -> None:
    chain = synthetic_chain(spot, vol, spread, oi)
    history = np.linspace(0.5 * vol, 1.5 * vol, 252)
    answer = option_ideas("XYZ", side, horizon, chain, spot, AS_OF, history)  # type: ignore[arg-type]
    check_identities(answer, spot)


def test_bullish_liquid_name_gets_every_idea() -> None:
    chain = synthetic_chain(100.0, 0.35)
    history = np.linspace(0.15, 0.45, 252)  # ATM IV 0.35 ranks about 67
    answer = option_ideas("XYZ", "long", 10, chain, 100.0, AS_OF, history)
    assert [i.type for i in answer.ideas] == ["long_call", "call_debit_spread", "cash_secured_put"]
    assert answer.expiry == dt.date(2026, 11, 27)  # 10 sessions ~ 14 days: the first expiry on or after it
    assert answer.iv_rank == pytest.approx(66.7, abs=1.0) and answer.atm_iv == pytest.approx(0.35)
    call, spread, csp = answer.ideas
    assert abs(call.legs[0].delta - 0.5) < 0.05 and abs(spread.legs[1].delta - 0.3) < 0.05
    assert abs(csp.legs[0].delta + 0.3) < 0.05 and not csp.defined_risk
    assert call.id == f"XYZ-long_call-20261127-{call.legs[0].strike:g}"
    assert answer.skipped == {}
    check_identities(answer, 100.0)


def test_bearish_name_gets_puts_and_no_cash_secured_put() -> None:
    answer = option_ideas("XYZ", "short", 30, synthetic_chain(50.0, 0.5), 50.0, AS_OF, np.full(252, 0.4))
    assert [i.type for i in answer.ideas] == ["long_put", "put_debit_spread"]
    assert answer.skipped == {"cash_secured_put": "bearish name"}
    check_identities(answer, 50.0)


def test_cash_secured_put_needs_rich_premium_and_history() -> None:
    chain = synthetic_chain(100.0, 0.2)
    cheap = option_ideas("XYZ", "long", 10, chain, 100.0, AS_OF, np.linspace(0.15, 0.6, 252))
    assert "cash_secured_put" not in [i.type for i in cheap.ideas]
    assert "below 30" in cheap.skipped["cash_secured_put"]
    short = option_ideas("XYZ", "long", 10, chain, 100.0, AS_OF, np.full(20, 0.1))
    assert "fewer than 60" in short.skipped["cash_secured_put"]
    none = option_ideas("XYZ", "long", 10, chain, 100.0, AS_OF, None)
    assert none.iv_rank is None and "no IV rank" in none.skipped["cash_secured_put"]


def test_illiquid_or_empty_chains_propose_nothing_and_say_why() -> None:
    thin = synthetic_chain(20.0, 0.6, oi=10.0)
    answer = option_ideas("THIN", "long", 10, thin, 20.0, AS_OF, np.full(252, 0.5))
    assert answer.ideas == () and answer.reason is not None and "illiquid chain" in answer.reason
    wide = synthetic_chain(20.0, 0.6, spread=0.5)
    assert "illiquid" in (option_ideas("WIDE", "long", 10, wide, 20.0, AS_OF).reason or "")
    empty = replace(thin, **{f: getattr(thin, f)[:0] for f in thin.__dataclass_fields__})
    assert option_ideas("NONE", "long", 10, empty, 20.0, AS_OF).reason == "no listed options"
    far = option_ideas("XYZ", "long", 400, synthetic_chain(20.0, 0.6), 20.0, AS_OF)
    assert far.ideas == () and "no expiry" in (far.reason or "")


def test_rules_are_tunable() -> None:
    thin = synthetic_chain(20.0, 0.6, oi=10.0)
    loose = IdeaRules(min_open_interest=1.0)
    assert option_ideas("THIN", "long", 10, thin, 20.0, AS_OF, rules=loose).ideas


def test_helpers() -> None:
    expiries = np.array(["2026-11-20", "2026-12-18", "2027-01-15"], dtype="datetime64[D]")
    assert pick_expiry(expiries, AS_OF, 5) == dt.date(2026, 11, 20)
    assert pick_expiry(expiries, AS_OF, 6) == dt.date(2026, 12, 18)
    assert pick_expiry(expiries, AS_OF, 60) is None
    rng = np.random.default_rng(3)
    closes = 100 * np.exp(np.cumsum(0.02 * rng.standard_normal(400)))
    rv = realized_vol_history(closes, 21)
    assert len(rv) == 379
    r = np.diff(np.log(closes))
    assert rv[-1] == pytest.approx(np.std(r[-21:], ddof=1) * np.sqrt(252), rel=1e-9)
    assert iv_rank(0.3, np.array([0.2, 0.4])) == pytest.approx(50.0)
    assert iv_rank(0.5, np.array([0.2, 0.4])) == 100.0


def test_on_the_simulated_market(tmp_path: Path) -> None:
    from services.marketsim.market import MarketConfig, load_market
    from services.marketsim.options import build_chain

    m = load_market(MarketConfig(n_tickers=600, history_sessions=400, today=AS_OF), tmp_path)
    stocks = np.flatnonzero(np.isin(m.ref["type"], ["CS", "ADRC"]) & (m.ref["market"] == "stocks"))
    proposed = illiquid = 0
    for i in stocks[:150]:
        c = build_chain(m, int(i))
        if c is None:
            continue
        chain = Chain(
            c.expiration, c.strike, c.is_call, c.bid, c.ask, (c.bid + c.ask) / 2, c.open_interest, c.iv, c.delta
        )
        closes = m.adjusted(m.today_index)["close"][-260:, i]
        answer = option_ideas(str(m.tickers[i]), "long", 10, chain, c.spot, m.today, realized_vol_history(closes))
        check_identities(answer, c.spot)
        proposed += bool(answer.ideas)
        illiquid += answer.reason is not None and "illiquid" in answer.reason
    assert proposed > 10 and illiquid > 0


def test_fetcher_chain_feeds_the_ideas(tmp_path: Path) -> None:
    """The wiring path without HTTP: a simulator page, the fetcher's decoder, then the ideas."""
    from services.fetcher.options import decode_chain
    from services.marketsim.market import MarketConfig, load_market
    from services.marketsim.options import OptionsApi

    m = load_market(MarketConfig(n_tickers=600, history_sessions=400, today=AS_OF), tmp_path)
    api = OptionsApi(m)
    ok = np.isin(m.ref["type"], ["CS", "ADRC"]) & (m.ref["market"] == "stocks") & np.isfinite(m.close[m.today_index])
    i = int(np.argmax(np.where(ok, np.nan_to_num(m.ref["market_cap"]), -1.0)))
    symbol = str(m.tickers[i])
    chain = decode_chain(symbol, [api.snapshot(symbol, {"limit": "250", "expiration_date.lte": "2027-01-31"}, "")])
    closes = m.adjusted(m.today_index)["close"][-260:, i]
    answer = option_ideas(symbol, "long", 10, chain, chain.spot, m.today, realized_vol_history(closes))
    assert answer.ideas and answer.expiry is not None
    check_identities(answer, chain.spot)
