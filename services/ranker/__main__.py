"""Start the ranker: ``python -m services.ranker``.

It reads no model files: the win-probability calibration arrives with each scan's header.
"""

from __future__ import annotations

import asyncio

from services.common.grpc_server import GrpcService, Health, serve
from services.common.logs import configure_logging
from services.common.redis_client import ResilientRedis
from services.ranker.cache import ScanCache
from services.ranker.core import Ranker
from services.ranker.engine import RankConfig
from services.ranker.service import RankerService
from services.ranker.settings import RankerSettings
from technic.v1 import ranker_pb2_grpc


def build_ranker(settings: RankerSettings, redis: ResilientRedis | None) -> Ranker:
    """The domain ranker from settings."""
    config = RankConfig(
        alpha_weight=settings.alpha_weight,
        liquidity_floor=settings.ranker_liquidity_floor_usd,
        liquidity_damping=settings.ranker_liquidity_damping,
        account_risk=settings.account_risk_usd,
        movers=settings.ranker_movers,
    )
    cache = ScanCache(redis, max_scans=settings.ranker_cache_scans, min_ttl=settings.ranker_min_ttl_seconds)
    return Ranker(config, cache)


async def run(settings: RankerSettings) -> None:
    health: Health | None = None

    async def on_redis_state(degraded: bool) -> None:
        if health is not None:
            await health.set_dependency("redis", not degraded)

    redis = ResilientRedis(settings.redis_url, on_state_change=on_redis_state)
    ranker = build_ranker(settings, redis)

    async def warmup(h: Health) -> None:
        nonlocal health
        health = h
        await h.set_dependency("redis", await redis.ping())

    try:
        await serve(
            settings,
            settings.ranker_port,
            [GrpcService("technic.v1.Ranker", RankerService(ranker), ranker_pb2_grpc.add_RankerServicer_to_server)],
            warmup=warmup,
        )
    finally:
        await ranker.cache.drain()  # the last ranked scans reach Redis before the client closes
        await redis.close()


def main() -> None:
    settings = RankerSettings()
    configure_logging("ranker", settings.log_level, settings.log_format)
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()
