"""MarketsimSettings read from the environment."""

from __future__ import annotations

import datetime as dt
import os

import pytest

from services.marketsim.settings import MarketsimSettings


def test_defaults_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [k for k in os.environ if k.startswith("TECHNIC_MARKETSIM_")]:
        monkeypatch.delenv(name)
    defaults = MarketsimSettings()
    assert (defaults.marketsim_port, defaults.marketsim_host, defaults.marketsim_api_key) == (
        8900,
        "127.0.0.1",
        "technic-simulator",
    )
    monkeypatch.setenv("TECHNIC_MARKETSIM_TODAY", "2026-11-13")
    monkeypatch.setenv("TECHNIC_MARKETSIM_FAULTS", '{"latency_ms": 50, "retry_after": false}')
    monkeypatch.setenv("TECHNIC_MARKETSIM_N_TICKERS", "600")
    settings = MarketsimSettings()
    assert settings.marketsim_today == dt.date(2026, 11, 13) and settings.marketsim_n_tickers == 600
    assert settings.marketsim_faults == {"latency_ms": 50, "retry_after": False}
    monkeypatch.setenv("TECHNIC_MARKETSIM_TODAY", "")
    assert MarketsimSettings().marketsim_today is None
