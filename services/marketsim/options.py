"""Option chain snapshots of the simulated underlyings, priced by Black-Scholes on a smile surface.

For an underlying on "today" the chain lists weekly expiries (the next five Fridays, for large names
and ETFs) and monthly ones (third Fridays up to a year out), each with strikes on the usual
increments around the spot. Implied volatility is a surface anchored on the underlying's realized
volatility: a term structure from the last month's volatility towards the last year's, times a
smile with a put skew. Prices and greeks come from the same Black-Scholes formula (continuous
dividend yield of the company, or 0, and a flat risk-free rate), so they agree exactly; contracts
are labelled American as listed equity options are, but carry no early-exercise premium.
Liquidity falls with distance from the money, with time to expiry and with company size: small
names get wide spreads and thin open interest, the smallest none at all (an empty chain).

Everything is deterministic from the seed, the symbol and the session.
"""

from __future__ import annotations

import datetime as dt
import math
import threading
import zlib
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import orjson

from services.marketsim.fundamentals import dividend_yield
from services.marketsim.market import Market, xnys
from services.marketsim.polygon import _next_page_url, _page_state, _parse_date, bad_request

RISK_FREE_RATE = 0.04
CHAIN_DEFAULT_LIMIT = 10
CHAIN_MAX_LIMIT = 250
CHAIN_TYPES = ("CS", "ADRC", "ETF")
MIN_CHAIN_PRICE = 3.0
MIN_CHAIN_CAP = 3.0e8  # smaller companies list no options
WEEKLY_CAP = 2.0e10  # weeklies for companies at least this large (and for every ETF)
MAX_STRIKES = 31  # per expiry and side
VOL_FLOOR, VOL_CAP = 0.08, 2.5
_SORTS = ("ticker", "expiration_date", "strike_price")
_erf = np.frompyfunc(math.erf, 1, 1)
_SQRT2 = math.sqrt(2.0)


def norm_cdf(x: np.ndarray) -> np.ndarray:
    """Standard normal CDF, elementwise (float64)."""
    values = np.asarray(_erf(np.asarray(x, dtype=np.float64) / _SQRT2), dtype=np.float64)
    return 0.5 * (1.0 + values)


def norm_pdf(x: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * np.square(x)) / math.sqrt(2.0 * math.pi)


def black_scholes(
    spot: float | np.ndarray,
    strike: np.ndarray,
    years: np.ndarray,
    rate: float,
    dividend: float,
    vol: np.ndarray,
    is_call: np.ndarray,
) -> dict[str, np.ndarray]:
    """European price and greeks (delta, gamma, theta per calendar day, vega per vol point), vectorised."""
    s = np.asarray(spot, dtype=np.float64)
    root = vol * np.sqrt(years)
    d1 = (np.log(s / strike) + (rate - dividend + 0.5 * vol**2) * years) / root
    d2 = d1 - root
    disc_q, disc_r = np.exp(-dividend * years), np.exp(-rate * years)
    sign = np.where(is_call, 1.0, -1.0)
    nd1, nd2 = norm_cdf(sign * d1), norm_cdf(sign * d2)
    price = sign * (s * disc_q * nd1 - strike * disc_r * nd2)
    pdf = norm_pdf(d1)
    delta = sign * disc_q * nd1
    gamma = disc_q * pdf / (s * root)
    theta_year = -s * disc_q * pdf * vol / (2.0 * np.sqrt(years)) + sign * (
        dividend * s * disc_q * nd1 - rate * strike * disc_r * nd2
    )
    return {
        "price": price,
        "delta": delta,
        "gamma": gamma,
        "theta": theta_year / 365.0,
        "vega": s * disc_q * pdf * np.sqrt(years) / 100.0,
    }


@dataclass(frozen=True)
class Chain:
    """One underlying's contracts on one session, one row per contract in ticker order."""

    underlying: str
    session_index: int
    spot: float
    previous_spot: float
    dividend: float
    expiration: np.ndarray  # datetime64[D]
    strike: np.ndarray
    is_call: np.ndarray
    years: np.ndarray
    iv: np.ndarray
    fmv: np.ndarray
    delta: np.ndarray
    gamma: np.ndarray
    theta: np.ndarray
    vega: np.ndarray
    bid: np.ndarray
    ask: np.ndarray
    bid_size: np.ndarray
    ask_size: np.ndarray
    open_interest: np.ndarray
    volume: np.ndarray
    previous_close: np.ndarray
    trade_price: np.ndarray
    trade_size: np.ndarray


def realized_vol(m: Market, i: int, end_index: int, window: int) -> float:
    """Annualised volatility of split-adjusted daily log returns over ``window`` sessions to ``end_index``."""
    start = max(0, end_index - window)
    closes = m.close[start : end_index + 1, i].astype(np.float64)
    own = m.splits[(m.splits["ticker_index"] == i) & (m.splits["session_index"] <= end_index)]
    for split in own:
        at = int(split["session_index"]) - start
        if at > 0:
            closes[:at] /= split["split_to"] / split["split_from"]
    logs = np.log(closes[np.isfinite(closes)])
    if len(logs) < 10:
        return float("nan")
    return float(np.std(np.diff(logs), ddof=1) * math.sqrt(252.0))


@lru_cache(maxsize=1)
def _calendar_sessions() -> np.ndarray:
    return xnys().sessions.to_numpy().astype("datetime64[D]")


def expiries(as_of: dt.date, weeklies: bool) -> np.ndarray:
    """Expiration dates after ``as_of``: five weekly Fridays (optional) and monthly third Fridays up to
    a year; a Friday that is no session expires on the session before it."""
    fridays: list[dt.date] = []
    day = as_of + dt.timedelta(days=(4 - as_of.weekday()) % 7 or 7)
    if weeklies:
        fridays += [day + dt.timedelta(weeks=k) for k in range(5)]
    year, month = as_of.year, as_of.month
    for _ in range(14):
        first = dt.date(year, month, 1)
        third = first + dt.timedelta(days=(4 - first.weekday()) % 7 + 14)
        if as_of < third <= as_of + dt.timedelta(days=366):
            fridays.append(third)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    sessions = _calendar_sessions()
    days = np.array(sorted(set(fridays)), dtype="datetime64[D]")
    days = sessions[np.searchsorted(sessions, days, side="right") - 1]
    return np.unique(days[days > np.datetime64(as_of, "D")])


def strike_step(spot: float) -> float:
    """The listing increment of strikes around ``spot``."""
    for limit, step in ((5.0, 0.5), (25.0, 1.0), (100.0, 2.5), (250.0, 5.0), (1000.0, 10.0)):
        if spot < limit:
            return step
    return 50.0


def strike_grid(spot: float, vol: float, years: float) -> np.ndarray:
    """Strikes on the listing increment covering about +-2.5 standard deviations (at least +-10 %)."""
    width = max(0.10, 2.5 * vol * math.sqrt(years))
    step = strike_step(spot)
    lo, hi = spot * math.exp(-width), spot * math.exp(width)
    while (hi - lo) / step > 2 * MAX_STRIKES:
        step *= 2.0
    strikes = np.arange(math.ceil(lo / step), math.floor(hi / step) + 1) * step
    return strikes[strikes > 0]


def iv_surface(atm_short: float, atm_long: float, years: np.ndarray, log_moneyness: np.ndarray) -> np.ndarray:
    """Implied volatility: a term structure between two ATM levels times a skewed smile."""
    atm = atm_long + (atm_short - atm_long) * np.exp(-years / 0.25)
    x = np.clip(log_moneyness / (atm * np.sqrt(np.maximum(years, 1.0 / 52.0))), -3.0, 3.0)
    smile = 1.0 - 0.10 * x + 0.06 * x**2
    return np.clip(atm * smile, VOL_FLOOR, VOL_CAP)


def option_ticker(underlying: str, expiration: str, is_call: bool, strike: float) -> str:
    """OCC-style symbol with Polygon's prefix from an ISO expiration date: ``O:AAPL261218C00150000``."""
    day = expiration[2:4] + expiration[5:7] + expiration[8:10]
    return f"O:{underlying}{day}{'C' if is_call else 'P'}{round(strike * 1000):08d}"


def build_chain(m: Market, i: int, session_index: int | None = None) -> Chain | None:
    """The chain of ticker ``i`` on a session (today by default); None when it lists no options."""
    t = m.today_index if session_index is None else session_index
    kind, market = str(m.ref["type"][i]), str(m.ref["market"][i])
    spot = float(m.close[t, i])
    if kind not in CHAIN_TYPES or market != "stocks" or not np.isfinite(spot) or spot < MIN_CHAIN_PRICE:
        return None
    cap = spot * float(m.ref["shares_adjusted"][i]) if kind == "ETF" else float(m.ref["market_cap"][i])
    if kind == "ETF":
        cap = max(cap, 5.0e9) if m.tickers[i] != "SPY" else 1.0e12
    if not np.isfinite(cap) or cap < MIN_CHAIN_CAP:
        return None
    rv_short, rv_long = realized_vol(m, i, t, 21), realized_vol(m, i, t, 252)
    if not (np.isfinite(rv_short) and np.isfinite(rv_long)):
        return None
    code = zlib.crc32(f"{m.tickers[i]}:options".encode())
    rng = np.random.default_rng([m.config.seed, code, t])
    premium = 1.08 + 0.05 * rng.standard_normal()
    atm_short = float(np.clip(rv_short * premium, VOL_FLOOR, VOL_CAP))
    atm_long = float(np.clip(rv_long * 1.05, VOL_FLOOR, VOL_CAP))
    prev = np.isfinite(m.close[:t, i])
    previous_spot = float(m.close[:t, i][prev][-1]) if prev.any() else spot
    as_of = m.session_date(t)
    dates = expiries(as_of, weeklies=cap >= WEEKLY_CAP or kind == "ETF")
    years_each = np.maximum((dates - np.datetime64(as_of, "D")).astype(np.float64), 1.0) / 365.0
    grids = [strike_grid(spot, atm_long, float(y)) for y in years_each]
    counts = np.array([len(g) for g in grids])
    strike = np.repeat(np.concatenate(grids), 2)
    expiration = np.repeat(np.repeat(dates, counts), 2)
    years = np.repeat(np.repeat(years_each, counts), 2)
    is_call = np.tile([True, False], int(counts.sum()))
    q = dividend_yield(m, i)
    forward = spot * np.exp((RISK_FREE_RATE - q) * years)
    iv = iv_surface(atm_short, atm_long, years, np.log(strike / forward))
    bs = black_scholes(spot, strike, years, RISK_FREE_RATE, q, iv, is_call)
    fmv = np.maximum(bs["price"], 0.0)
    previous = np.maximum(
        black_scholes(previous_spot, strike, years + 1.0 / 365.0, RISK_FREE_RATE, q, iv, is_call)["price"], 0.0
    )

    # Liquidity: size sets the level, distance from the money and time to expiry thin it out.
    size = float(np.clip(np.log10(cap) - 9.0, -0.6, 3.0))
    moneyness = np.abs(np.log(strike / spot)) / (atm_long * np.sqrt(np.maximum(years, 1.0 / 52.0)))
    noise = np.exp(0.4 * rng.standard_normal(len(strike)))
    open_interest = np.floor(150.0 * 10.0 ** (1.1 * size) * np.exp(-0.6 * moneyness**2) * np.exp(-years / 0.6) * noise)
    open_interest = np.where(open_interest < 5.0, 0.0, open_interest)
    spread_pct = 0.05 * 10.0 ** (-0.5 * size) * (1.0 + 0.6 * moneyness) * (1.0 + 0.5 * years)
    tick = np.where(fmv < 3.0, 0.01, 0.05)
    half = np.maximum(0.5 * spread_pct * fmv, tick / 2.0)
    bid = np.maximum(np.floor((fmv - half) / tick) * tick, 0.0)
    ask = np.maximum(np.ceil((fmv + half) / tick) * tick, tick)
    bid, ask = np.round(bid, 2), np.round(ask, 2)
    depth = np.maximum(np.round(np.sqrt(open_interest + 1.0) * 2.0 * rng.uniform(0.5, 1.5, len(strike))), 1.0)
    volume = np.floor(open_interest * 0.08 * rng.exponential(1.0, len(strike)))
    trade_price = np.round(np.clip(fmv + (ask - bid) * rng.uniform(-0.4, 0.4, len(strike)), bid, ask), 2)
    # Ticker order: the symbols share the underlying, then sort by date, call before put, strike.
    order = np.lexsort((strike, ~is_call, expiration))
    return Chain(
        underlying=str(m.tickers[i]),
        session_index=t,
        spot=spot,
        previous_spot=previous_spot,
        dividend=q,
        expiration=expiration[order],
        strike=strike[order],
        is_call=is_call[order],
        years=years[order],
        iv=iv[order],
        fmv=fmv[order],
        delta=bs["delta"][order],
        gamma=bs["gamma"][order],
        theta=bs["theta"][order],
        vega=bs["vega"][order],
        bid=bid[order],
        ask=ask[order],
        bid_size=depth[order],
        ask_size=np.maximum(np.round(depth[order] * rng.uniform(0.6, 1.4, len(strike))), 1.0),
        open_interest=open_interest[order],
        volume=volume[order],
        previous_close=np.round(previous[order], 2),
        trade_price=trade_price[order],
        trade_size=np.maximum(np.round(rng.exponential(5.0, len(strike))), 1.0),
    )


def _compare(values: np.ndarray, state: Mapping[str, str], name: str, parse: Any) -> np.ndarray:
    keep = np.ones(len(values), dtype=bool)
    for suffix, compare in (
        ("", np.equal),
        (".gte", np.greater_equal),
        (".gt", np.greater),
        (".lte", np.less_equal),
        (".lt", np.less),
    ):
        raw = state.get(f"{name}{suffix}")
        if raw:
            keep &= compare(values, parse(raw, f"{name}{suffix}"))
    return keep


def _date_value(raw: str, name: str) -> np.datetime64:
    return np.datetime64(_parse_date(raw, name), "D")


def _float_value(raw: str, name: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise bad_request(f"Invalid value for '{name}': must be a number.") from None


class OptionsApi:
    """Answers ``/v3/snapshot/options/{underlying}`` from one market (chains cached per session)."""

    def __init__(self, market: Market, cache_size: int = 256) -> None:
        self.market = market
        self._cache: OrderedDict[tuple[int, int], Chain | None] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()  # pages are built on worker threads

    def chain(self, i: int) -> Chain | None:
        """Ticker ``i``'s chain on today, from a small LRU keyed on (ticker, today)."""
        key = (i, self.market.today_index)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        chain = build_chain(self.market, i)
        with self._lock:
            self._cache[key] = chain
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return chain

    def snapshot(self, underlying: str, params: Mapping[str, str], base_url: str) -> bytes:
        state, offset, limit = _page_state(params, CHAIN_DEFAULT_LIMIT, CHAIN_MAX_LIMIT)
        sort = state.get("sort") or "ticker"
        if sort not in _SORTS:
            raise bad_request(f"Invalid value for 'sort': must be one of {', '.join(_SORTS)}.")
        order = state.get("order") or "asc"
        if order not in ("asc", "desc"):
            raise bad_request("Invalid value for 'order': must be asc or desc.")
        contract_type = state.get("contract_type") or ""
        if contract_type not in ("", "call", "put"):
            raise bad_request("Invalid value for 'contract_type': must be call or put.")
        m = self.market
        i = m.ticker_index(underlying)
        chain = self.chain(i) if i is not None else None
        if chain is None:
            return orjson.dumps({"results": [], "status": "OK"})
        keep = _compare(chain.expiration, state, "expiration_date", _date_value)
        keep &= _compare(chain.strike, state, "strike_price", _float_value)
        if contract_type:
            keep &= chain.is_call == (contract_type == "call")
        rows = np.flatnonzero(keep)
        if sort != "ticker":
            primary = chain.expiration[rows] if sort == "expiration_date" else chain.strike[rows]
            rows = rows[np.lexsort((rows, primary))]
        if order == "desc":
            rows = rows[::-1]
        page = rows[offset : offset + limit]
        stamp_ns = int(m.session_end_ms[chain.session_index]) * 1_000_000
        body: dict[str, Any] = {"results": self._results(chain, page, stamp_ns), "status": "OK"}
        if offset + limit < len(rows):
            body["next_url"] = _next_page_url(
                f"{base_url}/v3/snapshot/options/{underlying}", {**state, "sort": sort, "order": order}, offset + limit
            )
        return orjson.dumps(body)

    @staticmethod
    def _results(c: Chain, page: np.ndarray, stamp_ns: int) -> list[dict[str, Any]]:
        """Snapshot results of rows ``page``: columns are rounded and converted once, then zipped."""
        bid, ask = c.bid[page], c.ask[page]
        mid = np.round((bid + ask) / 2.0, 4)
        call = c.is_call[page]
        strike = c.strike[page]
        break_even = np.round(np.where(call, strike + mid, strike - mid), 4)
        prev = c.previous_close[page]
        close = c.trade_price[page]
        spread = ask - bid
        with np.errstate(divide="ignore", invalid="ignore"):
            change_pct = np.where(prev > 0, np.round((close / prev - 1.0) * 100.0, 4), 0.0)
        cols = {
            "bid": bid,
            "ask": ask,
            "mid": mid,
            "call": call,
            "strike": strike,
            "break_even": break_even,
            "to_break_even": np.round(break_even - c.spot, 4),
            "expiration": np.datetime_as_string(c.expiration[page]),
            "fmv": np.round(c.fmv[page], 4),
            "delta": np.round(c.delta[page], 6),
            "gamma": np.round(c.gamma[page], 6),
            "theta": np.round(c.theta[page], 6),
            "vega": np.round(c.vega[page], 6),
            "iv": np.round(c.iv[page], 6),
            "bid_size": c.bid_size[page].astype(np.int64),
            "ask_size": c.ask_size[page].astype(np.int64),
            "oi": c.open_interest[page].astype(np.int64),
            "volume": c.volume[page].astype(np.int64),
            "prev": prev,
            "close": close,
            "change": np.round(close - prev, 4),
            "change_pct": change_pct,
            "high": np.round(np.maximum(close, prev) + 0.5 * spread, 2),
            "low": np.round(np.maximum(np.minimum(close, prev) - 0.5 * spread, 0.01), 2),
            "open": np.round(np.maximum(prev, 0.01), 2),
            "vwap": np.round((close + prev) / 2.0, 4),
            "trade_size": c.trade_size[page].astype(np.int64),
        }
        lists = {name: values.tolist() for name, values in cols.items()}
        underlying, spot = c.underlying, c.spot
        out: list[dict[str, Any]] = []
        names = tuple(lists)
        for values in zip(*lists.values(), strict=True):
            row = dict(zip(names, values, strict=True))
            is_call = row["call"]
            strike_value = row["strike"]
            expiration = row["expiration"]
            result: dict[str, Any] = {
                "break_even_price": row["break_even"],
                "day": {},
                "details": {
                    "contract_type": "call" if is_call else "put",
                    "exercise_style": "american",
                    "expiration_date": expiration,
                    "shares_per_contract": 100,
                    "strike_price": int(strike_value) if strike_value.is_integer() else strike_value,
                    "ticker": option_ticker(underlying, expiration, is_call, strike_value),
                },
                "fmv": row["fmv"],
                "greeks": {"delta": row["delta"], "gamma": row["gamma"], "theta": row["theta"], "vega": row["vega"]},
                "implied_volatility": row["iv"],
                "last_quote": {
                    "ask": row["ask"],
                    "ask_size": row["ask_size"],
                    "bid": row["bid"],
                    "bid_size": row["bid_size"],
                    "last_updated": stamp_ns,
                    "midpoint": row["mid"],
                    "timeframe": "DELAYED",
                },
                "open_interest": row["oi"],
                "underlying_asset": {
                    "change_to_break_even": row["to_break_even"],
                    "last_updated": stamp_ns,
                    "price": spot,
                    "ticker": underlying,
                    "timeframe": "DELAYED",
                },
            }
            if row["volume"] > 0:
                result["day"] = {
                    "change": row["change"],
                    "change_percent": row["change_pct"],
                    "close": row["close"],
                    "high": row["high"],
                    "last_updated": stamp_ns,
                    "low": row["low"],
                    "open": row["open"],
                    "previous_close": row["prev"],
                    "volume": row["volume"],
                    "vwap": row["vwap"],
                }
                result["last_trade"] = {
                    "conditions": [209],
                    "exchange": 316,
                    "price": row["close"],
                    "sip_timestamp": stamp_ns - 60_000_000_000,
                    "size": row["trade_size"],
                    "timeframe": "DELAYED",
                }
            out.append(result)
        return out
