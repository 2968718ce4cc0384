"""Option ideas for one ranked name: a long call or put, a vertical debit spread, a cash-secured put.

Pure domain code: it reads a chain as columns (any object with the attributes of
:class:`ChainColumns`, such as the fetcher's decoded chain) and returns frozen records. Prices are
per share at the quote midpoint; a contract covers ``MULTIPLIER`` shares.

* Expiry: the first listed expiry on or after the horizon (``horizon_sessions`` trading sessions,
  counted as calendar days at 7/5 per session), so the trade has the style's holding period to work.
* Long call (bullish) or long put (bearish): the liquid contract of that expiry nearest 0.5 delta.
* Vertical debit spread: buy near 0.5 delta, sell near 0.3 delta on the same side and expiry.
* Cash-secured put (bullish only): sell near 0.3 delta when the IV rank (today's at-the-money IV
  placed in the range of the name's realized volatility over the last year) is at least
  ``min_iv_rank``: premium is sold only when it is rich.

A contract is liquid when its open interest reaches the floor and its bid-ask spread, as a share
of the midpoint, stays under the cap. An idea is built only from liquid contracts; when none can be
built the answer carries the reason for each kind, and an illiquid or empty chain yields no idea.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np

MULTIPLIER = 100
SESSION_DAYS = 7.0 / 5.0
# Holding horizons in sessions suggested for the four trade styles (by display name).
STYLE_HORIZONS: dict[str, int] = {"Day": 2, "Short-term swing": 10, "Medium-term swing": 30, "Position": 90}
Side = Literal["long", "short"]


class ChainColumns(Protocol):
    """The columns an idea reads: one row per contract."""

    expiration: np.ndarray  # datetime64[D]
    strike: np.ndarray
    is_call: np.ndarray  # bool
    bid: np.ndarray
    ask: np.ndarray
    mid: np.ndarray
    open_interest: np.ndarray
    iv: np.ndarray
    delta: np.ndarray


@dataclass(frozen=True)
class IdeaRules:
    """Liquidity floors and targets; the defaults suit listed US equity options."""

    min_open_interest: float = 100.0
    max_spread_pct: float = 0.10  # (ask - bid) / mid
    min_mid: float = 0.05
    long_delta: float = 0.50
    short_delta: float = 0.30
    delta_tolerance: float = 0.15  # a leg must lie this close to its target delta
    min_iv_rank: float = 30.0
    min_history: int = 60  # realized-volatility observations needed for an IV rank


@dataclass(frozen=True)
class Leg:
    """One contract of an idea: ``action`` buy or sell, price at the midpoint (per share)."""

    action: Literal["buy", "sell"]
    contract_type: Literal["call", "put"]
    strike: float
    expiry: dt.date
    price: float
    delta: float
    iv: float
    open_interest: float
    spread_pct: float


@dataclass(frozen=True)
class Liquidity:
    """The liquidity checks of an idea's legs: the thinnest open interest and the widest spread."""

    ok: bool
    min_open_interest: float
    max_spread_pct: float
    open_interest_floor: float
    spread_cap: float


@dataclass(frozen=True)
class OptionIdea:
    """One proposed trade. Money figures are per share (times ``MULTIPLIER`` per contract).

    ``net_debit`` is positive when the trade pays premium and negative when it collects it
    (``net_credit`` is its opposite). ``max_profit`` is None when unbounded. ``defined_risk`` means
    the most the trade can lose is the premium paid. ``prob_itm`` is the probability, read from
    the (first bought or sold) leg's delta, that this leg expires in the money.
    """

    id: str
    label: str
    side: Side
    type: Literal["long_call", "long_put", "call_debit_spread", "put_debit_spread", "cash_secured_put"]
    defined_risk: bool
    description: str
    expiry: dt.date
    strikes: tuple[float, ...]
    legs: tuple[Leg, ...]
    net_debit: float
    max_profit: float | None
    max_loss: float
    breakeven: float
    prob_itm: float
    liquidity: Liquidity

    @property
    def net_credit(self) -> float:
        return -self.net_debit


@dataclass(frozen=True)
class OptionIdeas:
    """The ideas for one name, and why each kind that is missing was skipped (kind -> reason).

    ``reason`` is set when there is no idea at all. ``iv_rank`` (0-100) and ``atm_iv`` are None
    when they could not be measured.
    """

    symbol: str
    side: Side
    horizon_sessions: int
    expiry: dt.date | None
    atm_iv: float | None
    iv_rank: float | None
    ideas: tuple[OptionIdea, ...]
    skipped: dict[str, str]
    reason: str | None


def realized_vol_history(closes: np.ndarray, window: int = 21) -> np.ndarray:
    """Annualised rolling ``window``-session realized volatility of split-adjusted ``closes`` (vectorised).

    One value per session from the ``window``-th return on; NaN closes are skipped in the returns.
    """
    closes = np.asarray(closes, dtype=np.float64)
    closes = closes[np.isfinite(closes) & (closes > 0)]
    if len(closes) <= window:
        return np.zeros(0)
    r = np.diff(np.log(closes))
    c1 = np.concatenate(([0.0], np.cumsum(r)))
    c2 = np.concatenate(([0.0], np.cumsum(r * r)))
    s1 = c1[window:] - c1[:-window]
    s2 = c2[window:] - c2[:-window]
    var = np.maximum((s2 - s1 * s1 / window) / (window - 1), 0.0)
    return np.sqrt(var * 252.0)


def iv_rank(atm_iv: float, vol_history: np.ndarray) -> float:
    """Where ``atm_iv`` lies in the range of ``vol_history`` (0 at its low, 100 at its high), clipped."""
    lo, hi = float(np.min(vol_history)), float(np.max(vol_history))
    if hi <= lo:
        return 50.0
    return float(np.clip((atm_iv - lo) / (hi - lo) * 100.0, 0.0, 100.0))


def pick_expiry(expirations: np.ndarray, as_of: dt.date, horizon_sessions: int) -> dt.date | None:
    """The first expiry on or after the horizon date; None when the chain lists none that late."""
    target = np.datetime64(as_of + dt.timedelta(days=math.ceil(horizon_sessions * SESSION_DAYS)), "D")
    later = np.unique(expirations[expirations >= target])
    return later[0].astype(object) if len(later) else None


def _spread_pct(bid: np.ndarray, ask: np.ndarray, mid: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(mid > 0, (ask - bid) / mid, np.inf)


def _liquid(chain: ChainColumns, rows: np.ndarray, rules: IdeaRules) -> np.ndarray:
    """Mask over ``rows``: quoted, priced, greeks present, open interest and spread within limits."""
    mid, bid, ask = chain.mid[rows], chain.bid[rows], chain.ask[rows]
    oi = np.nan_to_num(chain.open_interest[rows], nan=0.0)
    spread = _spread_pct(bid, ask, mid)
    finite = np.isfinite(mid) & np.isfinite(bid) & np.isfinite(ask) & np.isfinite(chain.delta[rows])
    return finite & (mid >= rules.min_mid) & (oi >= rules.min_open_interest) & (spread <= rules.max_spread_pct)


def _leg(chain: ChainColumns, j: int, action: Literal["buy", "sell"], expiry: dt.date) -> Leg:
    mid = float(chain.mid[j])
    return Leg(
        action=action,
        contract_type="call" if bool(chain.is_call[j]) else "put",
        strike=float(chain.strike[j]),
        expiry=expiry,
        price=mid,
        delta=float(chain.delta[j]),
        iv=float(chain.iv[j]),
        open_interest=float(chain.open_interest[j]),
        spread_pct=float((chain.ask[j] - chain.bid[j]) / mid),
    )


def _nearest(chain: ChainColumns, rows: np.ndarray, target: float, tolerance: float) -> int | None:
    """The row of ``rows`` whose |delta| is nearest ``target`` (within ``tolerance``), else None."""
    if not len(rows):
        return None
    gap = np.abs(np.abs(chain.delta[rows]) - target)
    best = int(np.argmin(gap))
    return int(rows[best]) if gap[best] <= tolerance else None


def _liquidity(legs: tuple[Leg, ...], rules: IdeaRules) -> Liquidity:
    oi = min(leg.open_interest for leg in legs)
    spread = max(leg.spread_pct for leg in legs)
    ok = oi >= rules.min_open_interest and spread <= rules.max_spread_pct
    return Liquidity(ok, oi, spread, rules.min_open_interest, rules.max_spread_pct)


def _money(x: float) -> float:
    return round(x, 4)


def _strike_text(k: float) -> str:
    return f"{k:g}"


def option_ideas(
    symbol: str,
    side: Side,
    horizon_sessions: int,
    chain: ChainColumns,
    spot: float,
    as_of: dt.date,
    vol_history: np.ndarray | None = None,
    rules: IdeaRules | None = None,
) -> OptionIdeas:
    """Ideas for ``symbol`` on ``as_of`` given its chain, spot and realized-volatility history.

    ``side`` is the name's direction (long: bullish, short: bearish); ``vol_history`` is the series
    :func:`realized_vol_history` gives over about a year (None skips the cash-secured put).
    """
    rules = rules or IdeaRules()
    skipped: dict[str, str] = {}

    def answer(
        expiry: dt.date | None,
        atm: float | None,
        rank: float | None,
        ideas: list[OptionIdea],
        reason: str | None = None,
    ) -> OptionIdeas:
        if not ideas and reason is None:
            reason = "; ".join(f"{k}: {v}" for k, v in skipped.items()) or "no idea fits"
        return OptionIdeas(symbol, side, horizon_sessions, expiry, atm, rank, tuple(ideas), dict(skipped), reason)

    n = len(chain.strike)
    if n == 0:
        return answer(None, None, None, [], "no listed options")
    if not (np.isfinite(spot) and spot > 0):
        return answer(None, None, None, [], "no price for the underlying")
    expiry = pick_expiry(chain.expiration, as_of, horizon_sessions)
    if expiry is None:
        return answer(None, None, None, [], f"no expiry {horizon_sessions} sessions or more away")
    at_expiry = np.flatnonzero(chain.expiration == np.datetime64(expiry, "D"))
    liquid = at_expiry[_liquid(chain, at_expiry, rules)]
    if not len(liquid):
        oi = np.nan_to_num(chain.open_interest[at_expiry], nan=0.0)
        return answer(
            expiry,
            None,
            None,
            [],
            f"illiquid chain at {expiry}: no contract with open interest >= {rules.min_open_interest:g} "
            f"and spread <= {rules.max_spread_pct:.0%} of mid (largest open interest {oi.max(initial=0):g})",
        )

    # At-the-money IV: mean of the call and put IVs at the strike nearest the spot.
    strikes = chain.strike[at_expiry]
    near = at_expiry[strikes == strikes[np.argmin(np.abs(strikes - spot))]]
    ivs = chain.iv[near][np.isfinite(chain.iv[near])]
    atm = float(ivs.mean()) if len(ivs) else None
    rank: float | None = None
    history = None if vol_history is None else np.asarray(vol_history, dtype=np.float64)
    if history is not None:
        history = history[np.isfinite(history)]
    if atm is not None and history is not None and len(history) >= rules.min_history:
        rank = iv_rank(atm, history)

    bullish = side == "long"
    same_side = liquid[chain.is_call[liquid] == bullish]
    kind = "call" if bullish else "put"
    ideas: list[OptionIdea] = []
    exp_text = f"{expiry:%d %b %Y}"

    # Long call / long put near 0.5 delta.
    long_j = _nearest(chain, same_side, rules.long_delta, rules.delta_tolerance)
    single = f"long_{kind}"
    if long_j is None:
        skipped[single] = f"no liquid {kind} near {rules.long_delta:.2f} delta at {expiry}"
    else:
        leg = _leg(chain, long_j, "buy", expiry)
        debit = leg.price
        breakeven = leg.strike + debit if bullish else leg.strike - debit
        legs: tuple[Leg, ...] = (leg,)
        ideas.append(
            OptionIdea(
                id=f"{symbol}-{single}-{expiry:%Y%m%d}-{_strike_text(leg.strike)}",
                label=f"Long {_strike_text(leg.strike)} {kind} {exp_text}",
                side=side,
                type="long_call" if bullish else "long_put",
                defined_risk=True,
                description=(
                    f"Buy the {_strike_text(leg.strike)} {kind} expiring {expiry} for {debit:.2f}; "
                    f"profits {'above' if bullish else 'below'} {breakeven:.2f} at expiry, risks the premium."
                ),
                expiry=expiry,
                strikes=(leg.strike,),
                legs=legs,
                net_debit=_money(debit),
                max_profit=None if bullish else _money(leg.strike - debit),
                max_loss=_money(debit),
                breakeven=_money(breakeven),
                prob_itm=float(np.clip(abs(leg.delta), 0.0, 1.0)),
                liquidity=_liquidity(legs, rules),
            )
        )

    # Vertical debit spread: buy near 0.5 delta, sell near 0.3 delta further out of the money.
    spread_kind = f"{kind}_debit_spread"
    if long_j is None:
        skipped[spread_kind] = skipped[single]
    else:
        k_long = float(chain.strike[long_j])
        further = (
            same_side[chain.strike[same_side] > k_long] if bullish else same_side[chain.strike[same_side] < k_long]
        )
        short_j = _nearest(chain, further, rules.short_delta, rules.delta_tolerance)
        if short_j is None:
            skipped[spread_kind] = f"no liquid {kind} near {rules.short_delta:.2f} delta beyond {k_long:g}"
        else:
            buy, sell = _leg(chain, long_j, "buy", expiry), _leg(chain, short_j, "sell", expiry)
            debit = buy.price - sell.price
            width = abs(sell.strike - buy.strike)
            if not 0.0 < debit < width:
                skipped[spread_kind] = f"quotes give a debit of {debit:.2f} for a width of {width:g}"
            else:
                breakeven = buy.strike + debit if bullish else buy.strike - debit
                legs = (buy, sell)
                ideas.append(
                    OptionIdea(
                        id=f"{symbol}-{spread_kind}-{expiry:%Y%m%d}-{_strike_text(buy.strike)}-{_strike_text(sell.strike)}",
                        label=f"{_strike_text(buy.strike)}/{_strike_text(sell.strike)} {kind} debit spread {exp_text}",
                        side=side,
                        type="call_debit_spread" if bullish else "put_debit_spread",
                        defined_risk=True,
                        description=(
                            f"Buy the {_strike_text(buy.strike)} {kind} and sell the {_strike_text(sell.strike)} "
                            f"{kind} expiring {expiry} for a net {debit:.2f}; earns up to {width - debit:.2f} if the "
                            f"stock is {'above' if bullish else 'below'} {_strike_text(sell.strike)} at expiry."
                        ),
                        expiry=expiry,
                        strikes=(buy.strike, sell.strike),
                        legs=legs,
                        net_debit=_money(debit),
                        max_profit=_money(width - debit),
                        max_loss=_money(debit),
                        breakeven=_money(breakeven),
                        prob_itm=float(np.clip(abs(buy.delta), 0.0, 1.0)),
                        liquidity=_liquidity(legs, rules),
                    )
                )

    # Cash-secured put: bullish names only, when premium is rich.
    if not bullish:
        skipped["cash_secured_put"] = "bearish name"
    elif rank is None:
        skipped["cash_secured_put"] = (
            "no IV rank: at-the-money IV missing"
            if atm is None
            else f"no IV rank: fewer than {rules.min_history} realized-volatility observations"
        )
    elif rank < rules.min_iv_rank:
        skipped["cash_secured_put"] = f"IV rank {rank:.0f} below {rules.min_iv_rank:.0f}: premium too cheap to sell"
    else:
        puts = liquid[~chain.is_call[liquid] & (chain.strike[liquid] < spot)]
        put_j = _nearest(chain, puts, rules.short_delta, rules.delta_tolerance)
        if put_j is None:
            skipped["cash_secured_put"] = f"no liquid put near {rules.short_delta:.2f} delta below the spot"
        else:
            leg = _leg(chain, put_j, "sell", expiry)
            credit = leg.price
            legs = (leg,)
            ideas.append(
                OptionIdea(
                    id=f"{symbol}-cash_secured_put-{expiry:%Y%m%d}-{_strike_text(leg.strike)}",
                    label=f"Cash-secured {_strike_text(leg.strike)} put {exp_text}",
                    side=side,
                    type="cash_secured_put",
                    defined_risk=False,
                    description=(
                        f"Sell the {_strike_text(leg.strike)} put expiring {expiry} for {credit:.2f} with "
                        f"{leg.strike * MULTIPLIER:,.0f} in cash per contract set aside; keeps the premium above "
                        f"{_strike_text(leg.strike)}, buys the stock at an effective {leg.strike - credit:.2f} below "
                        f"(IV rank {rank:.0f})."
                    ),
                    expiry=expiry,
                    strikes=(leg.strike,),
                    legs=legs,
                    net_debit=_money(-credit),
                    max_profit=_money(credit),
                    max_loss=_money(leg.strike - credit),
                    breakeven=_money(leg.strike - credit),
                    prob_itm=float(np.clip(abs(leg.delta), 0.0, 1.0)),
                    liquidity=_liquidity(legs, rules),
                )
            )
    return answer(expiry, atm, rank, ideas)
