"""Start the gateway: ``python -m gateway``.

One asyncio process: the grpc.aio Scanner service (through services.common.grpc_server.serve, which
owns SIGTERM/SIGINT) and uvicorn serving the HTTP API on the same event loop. uvicorn is started in
serve()'s warm-up and stopped in its on_stop, with its own signal handling switched off.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import uvicorn

from gateway.grpc_api import SERVICE, ScannerService, add_to_server
from gateway.http_api import create_app
from gateway.orchestrator import Orchestrator
from gateway.settings import GatewaySettings
from services.common.grpc_server import GrpcService, Health, serve
from services.common.logs import configure_logging, register_secret


class EmbeddedServer(uvicorn.Server):
    """uvicorn without its own signal handlers: the gRPC side's serve() decides when to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def run(settings: GatewaySettings) -> None:
    orchestrator = Orchestrator(settings)
    app = create_app(orchestrator, settings)
    http = EmbeddedServer(uvicorn.Config(app, host=settings.gateway_http_host, port=settings.gateway_http_port,
                                         log_config=None, access_log=False, lifespan="off",
                                         timeout_keep_alive=int(settings.gateway_http_keep_alive_seconds),
                                         timeout_graceful_shutdown=int(settings.grace_seconds)))
    http_task: asyncio.Task[None] | None = None

    async def warmup(_health: Health) -> None:
        nonlocal http_task
        http_task = asyncio.create_task(http.serve())
        while not http.started:
            if http_task.done():
                http_task.result()
                raise RuntimeError(f"HTTP server did not start on port {settings.gateway_http_port}")
            await asyncio.sleep(0.02)

    async def on_stop() -> None:
        http.should_exit = True  # uvicorn's graceful stop runs alongside the gRPC server's, not before it
        await app.state.jobs.stop()

    scanner = GrpcService(SERVICE, ScannerService(orchestrator, settings.gateway_page_cache_mb << 20), add_to_server)
    await serve(settings, settings.gateway_port, [scanner], warmup=warmup, on_stop=on_stop)
    # The backends close last: in-flight calls of either API keep them for the whole grace period.
    if http_task is not None:
        await http_task
    await orchestrator.close()


def main() -> None:
    settings = GatewaySettings()
    for key in settings.api_key_list:
        register_secret(key)
    configure_logging("gateway", settings.log_level, settings.log_format)
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()
