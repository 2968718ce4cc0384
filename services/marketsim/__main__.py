"""Start the market simulator: ``python -m services.marketsim`` (SIGTERM stops it, exit code 0)."""

from __future__ import annotations

import asyncio
import signal
import threading
from types import FrameType

import structlog
import uvicorn

from services.common.logs import configure_logging, register_secret
from services.marketsim.app import Simulator, create_app
from services.marketsim.market import MarketConfig, load_market
from services.marketsim.settings import MarketsimSettings

log = structlog.get_logger(__name__)


def build_simulator(settings: MarketsimSettings) -> Simulator:
    """Load (or generate and cache) the configured market and wrap it for serving."""
    config = MarketConfig(
        seed=settings.marketsim_seed,
        n_tickers=settings.marketsim_n_tickers,
        history_sessions=settings.marketsim_history_sessions,
        future_sessions=settings.marketsim_future_sessions,
        today=settings.marketsim_today,
    )
    market = load_market(config, settings.marketsim_cache_dir)
    sim = Simulator(
        market,
        settings.marketsim_api_key,
        dict(settings.marketsim_faults),
        settings.marketsim_fault_seed,
        settings.marketsim_response_cache_mb << 20,
    )
    # Compile the row writer and serve today's snapshot from memory before /health says ok;
    # older days are built in the background.
    sim.api.grouped_daily(market.today.isoformat(), {"adjusted": "false", "include_otc": "true"})  # as the fetcher asks
    threading.Thread(target=sim.api.warm, args=(settings.marketsim_warm_sessions,), daemon=True).start()
    return sim


async def run(settings: MarketsimSettings) -> None:
    sim = await asyncio.to_thread(build_simulator, settings)
    config = uvicorn.Config(
        create_app(sim),
        host=settings.marketsim_host,
        port=settings.marketsim_port,
        log_config=None,
        access_log=False,
        lifespan="off",
        loop="asyncio",
    )
    log.info(
        "marketsim listening",
        host=settings.marketsim_host,
        port=settings.marketsim_port,
        today=sim.market.today.isoformat(),
        tickers=len(sim.market.tickers),
        faults=sim.faults.as_dict(),
    )
    await uvicorn.Server(config).serve()


def _exit_cleanly(signum: int, frame: FrameType | None) -> None:
    # uvicorn handles SIGTERM while serving and re-raises it once shut down; it lands here.
    raise SystemExit(0)


def main() -> None:
    settings = MarketsimSettings()
    register_secret(settings.marketsim_api_key)
    configure_logging("marketsim", settings.log_level, settings.log_format)
    signal.signal(signal.SIGTERM, _exit_cleanly)
    try:
        asyncio.run(run(settings))
    finally:
        log.info("marketsim stopped")


if __name__ == "__main__":
    main()
