"""Start one compute replica: ``TECHNIC_COMPUTE_PORT=50061 python -m services.compute``."""

from __future__ import annotations

import asyncio
import os

from services.common.grpc_server import GrpcService, serve
from services.common.logs import configure_logging
from services.compute.settings import ComputeSettings
from technic.v1 import compute_pb2_grpc


async def run(settings: ComputeSettings) -> None:
    from services.compute.service import ComputeService

    servicer = ComputeService(settings)
    await serve(
        settings,
        settings.listen_port,
        [GrpcService("technic.v1.Compute", servicer, compute_pb2_grpc.add_ComputeServicer_to_server)],
        warmup=servicer.warmup,
        on_stop=servicer.close,
    )


def main() -> None:
    settings = ComputeSettings()
    # Thread counts must be fixed before numba / xgboost are imported.
    os.environ.setdefault("NUMBA_NUM_THREADS", str(settings.numba_threads))
    os.environ.setdefault("OMP_NUM_THREADS", str(settings.xgboost_threads))
    configure_logging("compute", settings.log_level, settings.log_format)
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()
