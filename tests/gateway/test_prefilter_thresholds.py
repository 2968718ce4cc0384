"""The prefilter at exactly its floors, and the same rule as the training universe on the same market."""

from __future__ import annotations

import datetime as dt
import inspect
from pathlib import Path

import numpy as np
import pytest

from gateway.prefilter import DEFAULT_TYPES, EXCLUDED_EXCHANGES, PrefilterSpec, prefilter
from gateway.settings import GatewaySettings
from services.marketsim.market import Market, MarketConfig, load_market
from technic.v1 import common_pb2

FLOOR_PRICE, FLOOR_DOLLARS = 5.0, 5e6


def run(close: list[float], dollars: list[float]) -> list[str]:
    symbols = [f"S{i}" for i in range(len(close))]
    result = prefilter(
        symbols,
        ["CS"] * len(symbols),
        ["XNYS"] * len(symbols),
        symbols,
        np.array(close),
        np.array(dollars),
        PrefilterSpec(min_price=FLOOR_PRICE, min_dollar_volume=FLOOR_DOLLARS),
    )
    return sorted(result.survivors.tolist())


def test_a_price_at_the_floor_is_kept_and_one_below_is_filtered() -> None:
    below = float(np.nextafter(FLOOR_PRICE, 0.0))
    assert run([FLOOR_PRICE, below, 5.01], [1e9] * 3) == ["S0", "S2"]


def test_a_dollar_volume_at_the_floor_is_kept_and_one_below_is_filtered() -> None:
    below = float(np.nextafter(FLOOR_DOLLARS, 0.0))
    assert run([10.0] * 3, [FLOOR_DOLLARS, below, FLOOR_DOLLARS * 2]) == ["S0", "S2"]


def test_float32_snapshot_values_at_the_floor_are_kept() -> None:
    """The snapshot block may carry float32: 5.0 and 5e6 are exact there too."""
    symbols = ["A", "B"]
    result = prefilter(
        symbols,
        ["CS", "CS"],
        ["XNAS", "XNAS"],
        symbols,
        np.array([5.0, 4.99], np.float32),
        np.array([5e6, 5e6], np.float32),
        PrefilterSpec(min_price=5.0, min_dollar_volume=5e6),
    )
    assert result.survivors.tolist() == ["A"]
    _, buckets, reasons = result.issues()
    assert buckets.tolist() == [common_pb2.BUCKET_FILTERED] and reasons.tolist() == ["prefilter_price"]


def test_zero_floors_switch_the_checks_off() -> None:
    symbols = ["A", "B"]
    result = prefilter(
        symbols,
        ["CS", "CS"],
        ["XNAS", "XNAS"],
        symbols,
        np.array([0.0, 0.01]),
        np.array([0.0, np.nan]),
        PrefilterSpec(),
    )
    assert sorted(result.survivors.tolist()) == ["A", "B"]
    assert result.dollar_volume.tolist() == [0.0, 0.0], "an unknown dollar volume counts as none"


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> Market:
    config = MarketConfig(n_tickers=600, history_sessions=260, today=dt.date(2026, 11, 13))
    return load_market(config, Path(tmp_path_factory.mktemp("prefilter-market")))


def at_the_floors(market: Market, t: int) -> list[int]:
    """Put a few listed common stocks exactly at the floors (and one a cent below) over the last 20 sessions."""
    market.close, market.volume = market.close.copy(), market.volume.copy()
    listed = np.flatnonzero(
        (market.ref["type"] == "CS") & (market.ref["exchange"] != "OTC") & np.isfinite(market.close[t])
    )
    picked = listed[:4].tolist()
    window = slice(t - 19, t + 1)
    for i, (price, volume) in zip(picked, [(5.0, 1e6), (10.0, 5e5), (4.99, 2e6), (5.0, 999_999.0)], strict=True):
        market.close[window, i] = price
        market.volume[window, i] = volume
    return picked


def test_the_gateway_keeps_the_names_the_training_universe_keeps(market: Market) -> None:
    defaults = GatewaySettings()
    training = inspect.signature(Market.prefilter).parameters
    assert defaults.gateway_min_price == training["min_price"].default == FLOOR_PRICE
    assert defaults.gateway_min_dollar_volume == training["min_dollar_volume"].default == FLOOR_DOLLARS
    assert set(training["types"].default) == DEFAULT_TYPES
    # The training universe keeps market "stocks"; the gateway drops exchange OTC: the same names.
    assert set(market.ref["exchange"][market.ref["market"] != "stocks"].tolist()) == EXCLUDED_EXCHANGES
    t = market.today_index
    picked = at_the_floors(market, t)
    trained = set(market.tickers[market.prefilter(as_of_index=t)].tolist())  # the rule train.py applies

    # The snapshot the gateway reads: every name with a close in the session, its 20-session average
    # dollar volume over the sessions it traded.
    close = market.close[t]
    traded = np.isfinite(close)
    dollars = market.close[t - 19 : t + 1] * market.volume[t - 19 : t + 1]
    present = np.isfinite(dollars)
    average = np.where(present, dollars, 0.0).sum(axis=0) / np.maximum(present.sum(axis=0), 1)
    result = prefilter(
        market.tickers,
        market.ref["type"],
        market.ref["exchange"],
        market.tickers[traded],
        close[traded],
        average[traded],
        PrefilterSpec(min_price=defaults.gateway_min_price, min_dollar_volume=defaults.gateway_min_dollar_volume),
    )
    assert set(result.survivors.tolist()) == trained
    at_floor, dollar_floor, cheap, thin = (str(market.tickers[i]) for i in picked)
    assert {at_floor, dollar_floor} <= trained and not {cheap, thin} & trained
    assert 100 < len(trained) < len(market.tickers)
