"""Unit tests of the in-process market (services/marketsim/market.py), no HTTP."""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path

import numpy as np
import pytest

from services.marketsim.market import GENERATOR_VERSION, Market, MarketConfig, generate, load_market
from services.marketsim.sic import SIC_CODES

SMALL = MarketConfig(n_tickers=600, history_sessions=400, today=dt.date(2026, 11, 13))


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("marketsim-cache")


@pytest.fixture(scope="module")
def market(cache: Path) -> Market:
    return load_market(SMALL, cache)


def test_deterministic_from_seed_and_today(market: Market) -> None:
    again = generate(SMALL)
    assert np.array_equal(again["tickers"], market.tickers)
    np.testing.assert_array_equal(again["close"], market.close)
    np.testing.assert_array_equal(again["volume"], market.volume)
    other_seed = generate(MarketConfig(seed=8, n_tickers=600, history_sessions=400, today=SMALL.today))
    assert not np.array_equal(np.nan_to_num(other_seed["close"]), np.nan_to_num(market.close))


def test_cache_round_trip(market: Market, cache: Path) -> None:
    folders = list(cache.glob("market-*"))
    assert len(folders) == 1
    reloaded = load_market(SMALL, cache)
    np.testing.assert_array_equal(reloaded.open, market.open)
    assert reloaded.today == dt.date(2026, 11, 13)


def test_axis_and_shapes(market: Market) -> None:
    assert len(market.sessions) == 410
    assert market.today_index == 399
    assert market.sessions[market.today_index] == np.datetime64("2026-11-13")
    assert np.all(np.diff(market.sessions.astype(np.int64)) > 0)
    assert np.all(market.tickers[:-1] < market.tickers[1:])
    for name in ("open", "high", "low", "close", "volume", "vwap", "signal"):
        assert getattr(market, name).shape == (410, 600)
    # grouped t is the session's close: 16:00 New York (21:00 UTC in November)
    close_utc = np.datetime64(int(market.session_end_ms[market.today_index]), "ms")
    assert close_utc == np.datetime64("2026-11-13T21:00")
    assert market.session_start_ms[market.today_index] == np.datetime64("2026-11-13T05:00", "ms").astype(np.int64)


def test_half_day_closes_at_13_new_york(market: Market) -> None:
    index = market.session_index(dt.date(2025, 11, 28))  # the day after Thanksgiving
    assert index is not None
    assert np.datetime64(int(market.session_end_ms[index]), "ms") == np.datetime64("2025-11-28T18:00")


def test_bars_are_consistent(market: Market) -> None:
    traded = np.isfinite(market.close)
    assert np.array_equal(traded, np.isfinite(market.volume))
    h, lo, o, c, vw = (x[traded] for x in (market.high, market.low, market.open, market.close, market.vwap))
    assert np.all(h >= np.maximum(o, c)) and np.all(lo <= np.minimum(o, c)) and np.all(lo > 0)
    assert np.all((vw >= lo) & (vw <= h))
    assert np.all(market.volume[traded] >= 100) and np.all(market.volume[traded] % 1 == 0)
    kinds = set(market.ref["type"].tolist())
    assert {"CS", "ETF", "ADRC", "WARRANT", "PFD"} <= kinds
    assert set(market.ref["market"].tolist()) == {"stocks", "otc"}
    operating = market.ref["sic_code"] > 0
    assert np.isin(market.ref["sic_code"][operating], SIC_CODES).all()
    assert (market.ref["list_index"] > 0).any() and (market.ref["delist_index"] >= 0).any()
    assert (market.duplicates >= 0).any()


def test_spy_tracks_the_market(market: Market) -> None:
    spy = market.ticker_index("SPY")
    assert spy is not None and market.ref["type"][spy] == "ETF"
    assert np.isfinite(market.close[:, spy]).all()
    cs = (market.ref["type"] == "CS") & (market.ref["market"] == "stocks")
    with np.errstate(invalid="ignore", divide="ignore"):
        stock_ret = np.nanmean(np.diff(np.log(market.adjusted(market.today_index)["close"][:, cs]), axis=0), axis=1)
    spy_ret = np.diff(np.log(market.close[:, spy]))[: len(stock_ret)]
    assert np.corrcoef(spy_ret, stock_ret)[0, 1] > 0.8
    assert 0.08 < spy_ret.std() * np.sqrt(252) < 0.35


def test_split_adjustment(market: Market) -> None:
    assert len(market.splits) > 0
    split = market.splits[0]
    i, s = int(split["ticker_index"]), int(split["session_index"])
    ratio = split["split_to"] / split["split_from"]
    before = market.adjusted(s - 1)
    after = market.adjusted(market.today_index)
    np.testing.assert_array_equal(before["close"][:s, i], market.close[:s, i])  # not yet known
    np.testing.assert_allclose(after["close"][:s, i], market.close[:s, i] / ratio)
    np.testing.assert_allclose(after["volume"][:s, i], market.volume[:s, i] * ratio)
    np.testing.assert_array_equal(after["close"][s:, i], market.close[s : market.today_index + 1, i])
    # The adjusted series has no jump of the split's size at the split session.
    prev = after["close"][s - 3 : s, i]
    jump = after["close"][s, i] / prev[np.isfinite(prev)][-1]
    assert abs(np.log(jump)) < abs(np.log(ratio)) / 2


def test_oracle_ic_is_weak_and_positive(market: Market) -> None:
    ic = market.oracle_ic(market.session_date(100), market.today)
    assert 0.02 < ic < 0.1
    assert np.isnan(market.oracle_ic(market.today, market.today))  # no forward window yet


def test_advance_reveals_the_next_session(cache: Path) -> None:
    market = load_market(SMALL, cache)
    first = market.today
    active_before = market.ref["active"].copy()
    market.advance()
    assert market.today_index == 400 and market.today > first
    assert market.today == market.session_date(400)
    assert market.ref["active"].shape == active_before.shape
    market.advance(9)
    with pytest.raises(ValueError, match="future sessions"):
        market.advance()
    market.reset()
    assert market.today == first


def test_default_size_prefilter_keeps_5000_to_6000(tmp_path_factory: pytest.TempPathFactory) -> None:
    big = load_market(MarketConfig(today=dt.date(2026, 11, 13)), tmp_path_factory.mktemp("big"))
    trading = np.isfinite(big.close[big.today_index]).sum()
    assert 10_000 <= trading <= 11_000
    survivors = int(big.prefilter().sum())
    assert 5_000 <= survivors <= 6_000
    etfs = int(big.prefilter(types=("ETF",)).sum())
    assert 100 <= etfs <= 1_000
    assert 0.03 <= big.oracle_ic(big.session_date(300), big.today) <= 0.08


def test_generating_prunes_other_versions_and_unused_markets(tmp_path: Path) -> None:
    stale = tmp_path / "market-0123456789abcdef"
    stale.mkdir()
    (stale / "close.npy").write_bytes(b"old")
    unused = tmp_path / f"market-v{GENERATOR_VERSION}-0000000000000000"
    unused.mkdir()
    (unused / "last_used").touch()
    os.utime(unused / "last_used", (time.time() - 4 * 86_400,) * 2)
    recent = tmp_path / f"market-v{GENERATOR_VERSION}-1111111111111111"
    recent.mkdir()
    (recent / "last_used").touch()
    load_market(MarketConfig(n_tickers=50, history_sessions=300, today=SMALL.today), tmp_path)
    assert not stale.exists() and not unused.exists() and recent.exists()
    assert len(list(tmp_path.glob(f"market-v{GENERATOR_VERSION}-*"))) == 2
