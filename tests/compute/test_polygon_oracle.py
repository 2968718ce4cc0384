"""A scan's indicators equal TA-Lib's over the bars the official Polygon client reads.

The simulator runs as a real HTTP server. The fetcher's domain (in process, wired as its servicer
wires it, with a real redis-server) builds the float32 panel a scan would score; the official
``polygon`` client reads the same names' daily bars from the same server, and TA-Lib runs over them
as they come out of its JSON. The names have no split in the window, and include ones whose ADX from float32 bars misses
TA-Lib's, the case that was once wrong.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import redis
import talib
from polygon import RESTClient

from services.common.codec import decode_block
from services.compute.features import INDICATORS, as_of_indicators, decimal_prices
from services.fetcher.chunks import PanelReport
from services.fetcher.polygon import PolygonClient
from services.marketsim.market import Market, load_market
from tests.compute.test_indicators import RTOL
from tests.compute.test_tick_grid import talib_as_of
from tests.fetcher.domain import batches_of, domain
from tests.marketsim.conftest import API_KEY, SMALL, TODAY, RunningSim, sim_env, wait_health
from tests.support import RedisServer, free_port, start_service

pytestmark = pytest.mark.integration
LOOKBACK = 260


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSim]:
    port = free_port()
    cache = tmp_path_factory.mktemp("marketsim-cache")
    proc = start_service("services.marketsim", port, tmp_path_factory.mktemp("marketsim-logs"), sim_env(port, cache))
    url = f"http://127.0.0.1:{port}"
    try:
        wait_health(proc, url, timeout=240)
        yield RunningSim(proc, url, load_market(SMALL, cache))
    finally:
        proc.terminate()


def adx_breaks_in_float32(market: Market, i: int, rows: slice) -> bool:
    h, lo, c = (np.ascontiguousarray(getattr(market, f)[rows, i]) for f in ("high", "low", "close"))
    h32, lo32, c32 = (x.astype(np.float32).astype(np.float64) for x in (h, lo, c))
    return not math.isclose(talib.ADX(h, lo, c, 14)[-1], talib.ADX(h32, lo32, c32, 14)[-1], rel_tol=1e-4)


def pick_symbols(market: Market) -> list[str]:
    """Listed names with every bar of the window and no split in it: two that float32 breaks, two
    that it does not, and one under $1."""
    today = market.today_index
    rows = slice(today - LOOKBACK + 1, today + 1)
    split = np.zeros(len(market.tickers), dtype=bool)
    split[market.splits["ticker_index"][market.splits["session_index"] > rows.start]] = True
    ok = np.isfinite(market.close[rows]).all(axis=0) & ~split & (market.ref["market"] != "otc")
    candidates = np.flatnonzero(ok)
    broken = [i for i in candidates if adx_breaks_in_float32(market, i, rows)][:2]
    fine = [i for i in candidates if i not in broken][:2]
    penny = [i for i in candidates if market.close[today, i] < 1.0 and i not in broken][:1]
    assert len(broken) == 2 and len(penny) == 1, "the small market lacks the names this test needs"
    return [str(market.tickers[i]) for i in broken + fine + penny]


async def fetcher_panel(url: str, redis_url: str, symbols: list[str]) -> tuple[np.ndarray, list[str]]:
    """The float32 panel the fetcher's domain writes for ``symbols``, and its sessions."""
    fetcher = domain(redis_url, PolygonClient(url, API_KEY), latest=TODAY.isoformat())
    report = PanelReport()
    client = redis.Redis.from_url(redis_url)
    blocks = []
    async for chunk in fetcher.panels.panels(batches_of(symbols, 100), TODAY.isoformat(), LOOKBACK, 100, report):
        block = decode_block(client.get(chunk.key))
        assert list(block.rows) == symbols[len(blocks) * 100 : len(blocks) * 100 + len(block.rows)]
        blocks.append(block.array)
    client.close()
    await fetcher.close()
    return np.concatenate(blocks), report.sessions


def test_scan_indicators_equal_talib_over_the_polygon_clients_bars(
    sim: RunningSim, redis_server: RedisServer, tmp_path: Path
) -> None:
    redis.Redis.from_url(redis_server.url).flushdb()
    symbols = pick_symbols(sim.market)
    panel, sessions = asyncio.run(fetcher_panel(sim.url, redis_server.url, symbols))
    assert panel.dtype == np.float32 and panel.shape == (len(symbols), LOOKBACK, 5)
    ours = as_of_indicators(panel)
    widened = decimal_prices(panel)
    polygon = RESTClient(api_key=API_KEY, base=sim.url, retries=0)
    for row, ticker in enumerate(symbols):
        aggs = list(polygon.list_aggs(ticker, 1, "day", sessions[0], sessions[-1], adjusted=False, limit=50000))
        assert len(aggs) == LOOKBACK, ticker
        bars = np.array([[a.open, a.high, a.low, a.close, a.volume] for a in aggs], dtype=np.float64)
        # The scan's kernels see exactly the client's prices: the restore undoes float32 rounding.
        np.testing.assert_array_equal(widened[row, :, :4], bars[:, :4], err_msg=ticker)
        expected = talib_as_of(bars)
        for k, name in enumerate(INDICATORS):
            if not np.isnan(expected[name]):
                assert math.isclose(ours[row, k], expected[name], rel_tol=RTOL, abs_tol=1e-9), (ticker, name)
            else:
                assert np.isnan(ours[row, k]), (ticker, name)
