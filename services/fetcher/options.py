"""Option chain snapshots (``/v3/snapshot/options/{underlying}``) decoded into columnar arrays.

One row per contract, one numpy array per field, so the option-idea code selects strikes and
expiries with masks instead of looping over contract objects. Missing numbers (a contract with no
quote, no greeks or no trade yet, as Polygon sends for illiquid contracts) are NaN, never dropped
rows: the caller decides what an unquoted contract means.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import aiohttp
import msgspec
import numpy as np

from services.fetcher.pages import get_pages

CHAIN_PAGE_LIMIT = 250


class _Details(msgspec.Struct):
    contract_type: str | None = None
    exercise_style: str | None = None
    expiration_date: str | None = None
    shares_per_contract: float | None = None
    strike_price: float | None = None
    ticker: str | None = None


class _Greeks(msgspec.Struct):
    delta: float | None = None
    gamma: float | None = None
    theta: float | None = None
    vega: float | None = None


class _Quote(msgspec.Struct):
    ask: float | None = None
    ask_size: float | None = None
    bid: float | None = None
    bid_size: float | None = None
    midpoint: float | None = None


class _Trade(msgspec.Struct):
    price: float | None = None
    size: float | None = None


class _Day(msgspec.Struct):
    close: float | None = None
    volume: float | None = None
    previous_close: float | None = None


class _Underlying(msgspec.Struct):
    price: float | None = None
    ticker: str | None = None


class _Contract(msgspec.Struct):
    details: _Details | None = None
    greeks: _Greeks | None = None
    implied_volatility: float | None = None
    open_interest: float | None = None
    last_quote: _Quote | None = None
    last_trade: _Trade | None = None
    day: _Day | None = None
    underlying_asset: _Underlying | None = None
    fmv: float | None = None


class ChainPage(msgspec.Struct):
    """One decoded page of a chain snapshot."""

    results: list[_Contract] | None = None
    next_url: str | None = None
    status: str | None = None


_PAGE_DECODER = msgspec.json.Decoder(ChainPage)


def decode_chain_page(body: bytes) -> ChainPage:
    """Decode one chain snapshot body (raises ``msgspec.DecodeError`` on a malformed one)."""
    return _PAGE_DECODER.decode(body)


@dataclass(frozen=True)
class OptionChain:
    """One underlying's contracts as columns (length ``n`` each; floats NaN where Polygon sent nothing).

    ``spot`` is the underlying price the snapshot carries (NaN when absent). ``mid`` is the quote's
    midpoint, or (bid + ask) / 2 when only the sides came; ``last`` is the last trade's price.
    """

    underlying: str
    spot: float
    ticker: np.ndarray  # str (object)
    expiration: np.ndarray  # datetime64[D]
    strike: np.ndarray
    is_call: np.ndarray  # bool
    shares_per_contract: np.ndarray
    bid: np.ndarray
    ask: np.ndarray
    mid: np.ndarray
    bid_size: np.ndarray
    ask_size: np.ndarray
    last: np.ndarray
    volume: np.ndarray
    open_interest: np.ndarray
    iv: np.ndarray
    delta: np.ndarray
    gamma: np.ndarray
    theta: np.ndarray
    vega: np.ndarray
    fmv: np.ndarray

    def __len__(self) -> int:
        return len(self.strike)

    def take(self, rows: np.ndarray) -> OptionChain:
        """The chain restricted to ``rows`` (indices or a boolean mask)."""
        values: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            values[f.name] = value[rows] if isinstance(value, np.ndarray) else value
        return OptionChain(**values)


def _num(value: float | None) -> float:
    return float("nan") if value is None else float(value)


def chain_from_contracts(underlying: str, contracts: Sequence[_Contract]) -> OptionChain:
    """Columns from decoded contracts; contracts without a type, strike or expiry are left out."""
    rows = [
        c
        for c in contracts
        if c.details is not None
        and c.details.contract_type in ("call", "put")
        and c.details.strike_price is not None
        and c.details.expiration_date
    ]
    n = len(rows)
    empty_quote, empty_greeks, empty_trade, empty_day = _Quote(), _Greeks(), _Trade(), _Day()
    quotes = [c.last_quote or empty_quote for c in rows]
    greeks = [c.greeks or empty_greeks for c in rows]
    trades = [c.last_trade or empty_trade for c in rows]
    days = [c.day or empty_day for c in rows]

    def column(values: Sequence[float | None]) -> np.ndarray:
        return np.fromiter((_num(v) for v in values), dtype=np.float64, count=n)

    bid = column([q.bid for q in quotes])
    ask = column([q.ask for q in quotes])
    mid = column([q.midpoint for q in quotes])
    mid = np.where(np.isfinite(mid), mid, (bid + ask) / 2.0)
    spot = float("nan")
    for c in rows:
        if c.underlying_asset is not None and c.underlying_asset.price is not None:
            spot = float(c.underlying_asset.price)
            break
    details = [c.details for c in rows if c.details is not None]
    return OptionChain(
        underlying=underlying,
        spot=spot,
        ticker=np.array([d.ticker or "" for d in details], dtype=object),
        expiration=np.array([d.expiration_date for d in details], dtype="datetime64[D]"),
        strike=column([d.strike_price for d in details]),
        is_call=np.array([d.contract_type == "call" for d in details], dtype=bool),
        shares_per_contract=column([d.shares_per_contract or 100.0 for d in details]),
        bid=bid,
        ask=ask,
        mid=mid,
        bid_size=column([q.bid_size for q in quotes]),
        ask_size=column([q.ask_size for q in quotes]),
        last=column([t.price for t in trades]),
        volume=column([d.volume for d in days]),
        open_interest=column([c.open_interest for c in rows]),
        iv=column([c.implied_volatility for c in rows]),
        delta=column([g.delta for g in greeks]),
        gamma=column([g.gamma for g in greeks]),
        theta=column([g.theta for g in greeks]),
        vega=column([g.vega for g in greeks]),
        fmv=column([c.fmv for c in rows]),
    )


def decode_chain(underlying: str, bodies: Sequence[bytes]) -> OptionChain:
    """One chain from the bodies of all its pages."""
    pages = [decode_chain_page(b) for b in bodies]
    return chain_from_contracts(underlying, [c for p in pages for c in (p.results or ())])


async def fetch_chain(
    session: aiohttp.ClientSession,
    base_url: str,
    api_key: str,
    underlying: str,
    params: dict[str, Any] | None = None,
) -> OptionChain:
    """Every contract of ``underlying``'s chain snapshot (pages of 250), as columns.

    ``params`` narrows the request with Polygon's filters (``expiration_date.lte``, ``contract_type``...).
    """
    query: dict[str, Any] = {"limit": CHAIN_PAGE_LIMIT, **(params or {})}
    pages = await get_pages(
        session,
        base_url,
        api_key,
        f"/v3/snapshot/options/{underlying}",
        query,
        decode_chain_page,
        lambda page: page.next_url,
    )
    return chain_from_contracts(underlying, [c for p in pages for c in (p.results or ())])
