"""Start the fetcher: ``python -m services.fetcher``."""

from __future__ import annotations

import asyncio

from services.common.grpc_server import GrpcService, Health, serve
from services.common.logs import configure_logging, register_secret
from services.fetcher.gather import warm_kernels
from services.fetcher.service import FetcherService
from services.fetcher.settings import FetcherSettings
from technic.v1 import fetcher_pb2_grpc


async def run(settings: FetcherSettings) -> None:
    health: list[Health] = []

    async def on_redis_state(degraded: bool) -> None:
        if health:
            await health[0].set_dependency("redis", not degraded)

    servicer = FetcherService(settings, on_redis_state=on_redis_state)

    async def warmup(published: Health) -> None:
        health.append(published)
        await asyncio.to_thread(warm_kernels)
        await published.set_dependency("redis", await servicer.redis.ping())
        servicer.start_background()

    await serve(
        settings,
        settings.fetcher_port,
        [GrpcService("technic.v1.Fetcher", servicer, fetcher_pb2_grpc.add_FetcherServicer_to_server)],
        warmup=warmup,
        on_stop=servicer.close,
    )


def main() -> None:
    settings = FetcherSettings()
    register_secret(settings.polygon_api_key)
    configure_logging("fetcher", settings.log_level, settings.log_format)
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()
