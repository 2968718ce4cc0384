"""The one way every service serves gRPC: grpc.aio, health, reflection, graceful stop.

Start-up: bind, start, run ``warmup`` (compile kernels, load models, ...), then report SERVING.
Shutdown on SIGTERM or SIGINT: health turns NOT_SERVING at once (load balancers stop sending),
``on_stop`` runs, in-flight calls get ``grace`` seconds, and the process returns normally (exit 0).
"""

from __future__ import annotations

import asyncio
import gc
import signal
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import structlog
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection

from services.common.settings import CommonSettings

log = structlog.get_logger(__name__)
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
# Health of a dependency is published under this service name ("technic.redis"): NOT_SERVING there
# means the process runs degraded without it, while the overall "" status stays SERVING.
DEPENDENCY_PREFIX = "technic."


@dataclass(frozen=True)
class GrpcService:
    """One servicer to host: its full name (``technic.v1.Fetcher``) and generated add function."""

    name: str
    servicer: Any
    add_to_server: Callable[[Any, grpc.aio.Server], None]


class Health:
    """Publishes this process's health, overall and per dependency."""

    def __init__(self, servicer: HealthServicer, services: Sequence[str]) -> None:
        self.servicer = servicer
        self.services = list(services)

    async def set_serving(self, serving: bool) -> None:
        status = SERVING if serving else NOT_SERVING
        for name in ("", *self.services):
            await self.servicer.set(name, status)

    async def set_dependency(self, name: str, available: bool) -> None:
        await self.servicer.set(DEPENDENCY_PREFIX + name, SERVING if available else NOT_SERVING)


def server_options(settings: CommonSettings, reuse_port: bool = False) -> list[tuple[str, Any]]:
    """Server channel options; ``reuse_port`` lets several processes of one service share its port."""
    limit = settings.max_message_mb * 1024 * 1024
    return [
        ("grpc.max_send_message_length", limit),
        ("grpc.max_receive_message_length", limit),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_recv_ping_interval_without_data_ms", 5_000),
        ("grpc.http2.max_ping_strikes", 0),
        ("grpc.so_reuseport", 1 if reuse_port else 0),
    ]


def server_credentials(settings: CommonSettings) -> grpc.ServerCredentials | None:
    """TLS credentials when a certificate and key are configured, else None (plaintext)."""
    if not (settings.tls_cert_file and settings.tls_key_file):
        return None
    cert = Path(settings.tls_cert_file).read_bytes()
    key = Path(settings.tls_key_file).read_bytes()
    ca = Path(settings.tls_ca_file).read_bytes() if settings.tls_ca_file else None
    return grpc.ssl_server_credentials([(key, cert)], root_certificates=ca, require_client_auth=ca is not None)


async def serve(
    settings: CommonSettings,
    port: int,
    services: Sequence[GrpcService],
    *,
    warmup: Callable[[Health], Awaitable[None]] | None = None,
    on_stop: Callable[[], Awaitable[None]] | None = None,
    stop_event: asyncio.Event | None = None,
    reuse_port: bool = False,
) -> None:
    """Serve ``services`` on ``settings.grpc_host:port`` until SIGTERM/SIGINT (or ``stop_event``);
    ``reuse_port`` when other processes of the service serve the same port."""
    server = grpc.aio.server(options=server_options(settings, reuse_port))
    names = [s.name for s in services]
    health = Health(HealthServicer(), names)
    health_pb2_grpc.add_HealthServicer_to_server(health.servicer, server)
    for service in services:
        service.add_to_server(service.servicer, server)
    reflection.enable_server_reflection(
        [*names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME], server
    )
    address = f"{settings.grpc_host}:{port}"
    credentials = server_credentials(settings)
    bound = server.add_secure_port(address, credentials) if credentials else server.add_insecure_port(address)
    if bound == 0:
        raise RuntimeError(f"could not bind gRPC port {address}")
    await health.set_serving(False)
    await server.start()
    log.info("grpc listening", address=address, services=names, tls=credentials is not None)

    stop = stop_event or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    if warmup is not None:
        await warmup(health)
    # What start-up left alive (modules, compiled kernels, models, reference data) stays for the life
    # of the process: out of the collector's sight, a full collection walks only what requests made.
    gc.collect()
    gc.freeze()
    await health.set_serving(True)
    log.info("serving", address=address)

    await stop.wait()
    log.info("stopping", grace_seconds=settings.grace_seconds)
    await health.servicer.enter_graceful_shutdown()
    if on_stop is not None:
        await on_stop()
    await server.stop(settings.grace_seconds)
    log.info("stopped")
