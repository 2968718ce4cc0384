"""Every gRPC service starts as a process, answers SERVING through the official health client,
lists its service through reflection, and exits 0 within its grace period on SIGTERM."""

from __future__ import annotations

import time
from pathlib import Path

import grpc
import pytest
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from tests.support import RedisServer, free_port, start_service, wait_grpc_serving

SERVICES = [
    ("services.fetcher", "TECHNIC_FETCHER_PORT", "technic.v1.Fetcher"),
    ("services.ranker", "TECHNIC_RANKER_PORT", "technic.v1.Ranker"),
    ("services.compute", "TECHNIC_COMPUTE_PORT", "technic.v1.Compute"),
]
GRACE_SECONDS = 3.0


def reflected_services(port: int) -> set[str]:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        (reply,) = list(stub.ServerReflectionInfo(iter([request]), timeout=5))
    return {s.name for s in reply.list_services_response.service}


@pytest.mark.integration
@pytest.mark.parametrize(("module", "port_var", "service"), SERVICES, ids=[s[0] for s in SERVICES])
def test_service_serves_health_reflection_and_stops_on_sigterm(
    module: str,
    port_var: str,
    service: str,
    redis_server: RedisServer,
    logdir: Path,
) -> None:
    port = free_port()
    env = {port_var: str(port), "REDIS_URL": redis_server.url, "TECHNIC_GRACE_SECONDS": str(GRACE_SECONDS)}
    proc = start_service(module, port, logdir, env)
    try:
        wait_grpc_serving(port, proc=proc, timeout=180)
        wait_grpc_serving(port, service=service, proc=proc, timeout=5)
        assert {service, "grpc.health.v1.Health"} <= reflected_services(port)
    finally:
        started = time.monotonic()
        code = proc.terminate(timeout=GRACE_SECONDS + 10)
        elapsed = time.monotonic() - started
    assert code == 0, proc.log()[-3000:]
    assert elapsed < GRACE_SECONDS + 10
    assert '"stopped"' in proc.log()
