"""Start the ranker: ``python -m services.ranker``."""

from __future__ import annotations

import asyncio

from services.common.grpc_server import GrpcService, serve
from services.common.logs import configure_logging
from services.ranker.service import RankerService
from services.ranker.settings import RankerSettings
from technic.v1 import ranker_pb2_grpc


async def run(settings: RankerSettings) -> None:
    servicer = RankerService(settings)
    await serve(settings, settings.ranker_port,
                [GrpcService("technic.v1.Ranker", servicer, ranker_pb2_grpc.add_RankerServicer_to_server)])


def main() -> None:
    settings = RankerSettings()
    configure_logging("ranker", settings.log_level, settings.log_format)
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()
