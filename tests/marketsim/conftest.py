"""A running simulator process (small market, free port) shared by the HTTP tests of this folder."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from services.marketsim.market import Market, MarketConfig, load_market
from tests.support import ServiceProcess, free_port, start_service

API_KEY = "test-key-123"
TODAY = dt.date(2026, 11, 13)
SMALL = MarketConfig(n_tickers=600, history_sessions=400, today=TODAY)


@dataclass
class RunningSim:
    process: ServiceProcess
    url: str
    market: Market  # the same market, loaded in-process from the same cache

    def admin(self, method: str, path: str, **kwargs: object) -> httpx.Response:
        return httpx.request(method, f"{self.url}{path}", timeout=30, **kwargs)  # type: ignore[arg-type]


def sim_env(port: int, cache: Path, **extra: str) -> dict[str, str]:
    return {
        "TECHNIC_MARKETSIM_PORT": str(port),
        "TECHNIC_MARKETSIM_API_KEY": API_KEY,
        "TECHNIC_MARKETSIM_N_TICKERS": str(SMALL.n_tickers),
        "TECHNIC_MARKETSIM_HISTORY_SESSIONS": str(SMALL.history_sessions),
        "TECHNIC_MARKETSIM_TODAY": TODAY.isoformat(),
        "TECHNIC_MARKETSIM_CACHE_DIR": str(cache),
        **extra,
    }


def wait_health(proc: ServiceProcess, url: str, timeout: float = 120.0) -> dict[str, object]:
    """Poll GET /health until it answers ok (fails early when the process dies)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.process.poll() is not None:
            raise RuntimeError(f"marketsim exited with {proc.process.returncode}:\n{proc.log()[-4000:]}")
        try:
            reply = httpx.get(f"{url}/health", timeout=1.0)
            if reply.status_code == 200:
                return dict(reply.json())
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"marketsim not healthy after {timeout} s\n{proc.log()[-4000:]}")


@pytest.fixture(scope="session")
def sim_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("marketsim-http-cache")


@pytest.fixture(scope="session")
def sim(sim_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSim]:
    port = free_port()
    proc = start_service(
        "services.marketsim", port, tmp_path_factory.mktemp("marketsim-logs"), sim_env(port, sim_cache)
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_health(proc, url)
        yield RunningSim(proc, url, load_market(SMALL, sim_cache))
    finally:
        proc.terminate()


@pytest.fixture
def clean_sim(sim: RunningSim) -> Iterator[RunningSim]:
    """The shared simulator with knobs, today and statistics back at their initial values."""
    assert sim.admin("POST", "/admin/reset").status_code == 200
    yield sim
    sim.admin("POST", "/admin/reset")
