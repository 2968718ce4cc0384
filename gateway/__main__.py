"""Start the gateway: ``python -m gateway``.

One asyncio process: the grpc.aio Scanner service (through services.common.grpc_server.serve, which
owns SIGTERM/SIGINT) and uvicorn serving the HTTP API on the same event loop. uvicorn is started in
serve()'s warm-up and stopped in its on_stop, with its own signal handling switched off.

``TECHNIC_GATEWAY_PROCESSES`` above one says that several gateway processes share this host's HTTP
and gRPC ports (supervisord starts them): each then binds both with ``SO_REUSEPORT`` and the kernel
spreads connections over them. With one, the ports are bound exclusively, so a second gateway
started by mistake fails at start instead of taking part of the traffic.

What the processes share lives in the ranker and Redis (ranked scans, bars, the universe). Each
process keeps for itself only what is derived from those and checked before use: finished results
and rendered answers (valid for its own generation and the latest session it confirmed; another
process serves the ranker's ranking of the same fingerprint), the latest result it finished (the
row a symbol page shows), the latest session for a few seconds, rate-limit buckets (a client's
connection stays with one process), and the asynchronous scans it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
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


def http_socket(host: str, port: int, reuse_port: bool, backlog: int = 2048) -> socket.socket:
    """The HTTP API's listening socket, shared with the host's other gateway processes when ``reuse_port``."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named, so asyncio sets TCP_NODELAY on every accepted connection: without it a
    # response's headers and body wait on the client's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


async def run(settings: GatewaySettings) -> None:
    orchestrator = Orchestrator(settings)
    app = create_app(orchestrator, settings)
    shared = settings.gateway_processes > 1
    http = EmbeddedServer(
        uvicorn.Config(
            app,
            host=settings.gateway_http_host,
            port=settings.gateway_http_port,
            http="httptools",
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_keep_alive=int(settings.gateway_http_keep_alive_seconds),
            timeout_graceful_shutdown=int(settings.grace_seconds),
        )
    )
    http_task: asyncio.Task[None] | None = None

    async def warmup(_health: Health) -> None:
        nonlocal http_task
        sock = http_socket(settings.gateway_http_host, settings.gateway_http_port, shared)
        http_task = asyncio.create_task(http.serve(sockets=[sock]))
        while not http.started:
            if http_task.done():
                http_task.result()
                raise RuntimeError(f"HTTP server did not start on port {settings.gateway_http_port}")
            await asyncio.sleep(0.02)

    async def on_stop() -> None:
        http.should_exit = True  # uvicorn's graceful stop runs alongside the gRPC server's, not before it
        await app.state.jobs.stop()

    scanner = GrpcService(SERVICE, ScannerService(orchestrator, settings.gateway_page_cache_mb << 20), add_to_server)
    await serve(settings, settings.gateway_port, [scanner], warmup=warmup, on_stop=on_stop, reuse_port=shared)
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
