"""A small simulated market and models trained on it, shared by the compute tests."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from services.compute import train
from services.marketsim.market import Market, MarketConfig, load_market

SMALL = MarketConfig(n_tickers=600, history_sessions=400, today=dt.date(2026, 11, 13))
# Training needs enough names per date for a t-stat over test dates to mean something: with ~300
# names a date the sampling noise of a daily rank IC alone is ~0.06, the size of the signal.
TRAINING = MarketConfig(n_tickers=1500, history_sessions=500, today=dt.date(2026, 11, 13))


@pytest.fixture(scope="session")
def small_market() -> Market:
    return load_market(SMALL)


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, dict[str, Any]]]:
    """(model folder, metadata per model) from training on the small market."""
    out = tmp_path_factory.mktemp("models")
    config = train.TrainConfig(market=TRAINING, date_step=1, n_estimators=50, threads=1)
    return out, train.train_all(config, out)


def panel_of(market: Market, tickers: np.ndarray, lookback: int = 260) -> np.ndarray:
    """A contract-1 panel (symbols, sessions, 5) float32 as of the market's today."""
    adj = market.adjusted(market.today_index)
    rows = slice(market.today_index - lookback + 1, market.today_index + 1)
    stacked = np.stack([adj[f][rows][:, tickers] for f in ("open", "high", "low", "close", "volume")], axis=2)
    return np.ascontiguousarray(stacked.transpose(1, 0, 2), dtype=np.float32)
