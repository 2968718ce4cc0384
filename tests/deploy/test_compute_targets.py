"""The compute target works as an ``ipv4:`` address list and as a DNS name (the Kubernetes headless
Service form): replicas on 127.0.0.2-4 behind one name, resolved by a DNS server the test runs (the
``dns://<server>/<name>`` authority form), and every replica gets work through round_robin."""

from __future__ import annotations

import socket
from collections import Counter
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from dnslib import QTYPE, RR, A
from dnslib.server import BaseResolver, DNSServer

from services.common.channels import make_channel
from services.common.codec import encode_block
from services.marketsim.market import load_market
from technic.v1 import common_pb2, compute_pb2, compute_pb2_grpc
from tests.compute.conftest import SMALL, panel_of
from tests.support import RedisServer, ServiceProcess, free_port, start_service, wait_grpc_serving

NAME = "compute.technic.test"
ADDRESSES = ("127.0.0.2", "127.0.0.3", "127.0.0.4")
FIELDS = ("open", "high", "low", "close", "volume")


class ReplicaResolver(BaseResolver):
    """Answers A queries for NAME with every replica address; nothing else."""

    def resolve(self, request: Any, handler: Any) -> Any:
        reply = request.reply()
        if request.q.qtype == QTYPE.A and str(request.q.qname).rstrip(".") == NAME:
            for address in ADDRESSES:
                reply.add_answer(RR(request.q.qname, QTYPE.A, rdata=A(address), ttl=1))
        return reply


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def replicas(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """Three compute processes, one per loopback address, all on the same port."""
    port = free_port()
    logdir = tmp_path_factory.mktemp("replicas")
    procs: list[ServiceProcess] = []
    try:
        for address in ADDRESSES:
            env = {"TECHNIC_GRPC_HOST": address, "TECHNIC_COMPUTE_PORT": str(port), "REDIS_URL": redis_server.url}
            procs.append(start_service("services.compute", port, logdir / address, env))
        for proc, address in zip(procs, ADDRESSES, strict=True):
            wait_grpc_serving(port, proc=proc, timeout=180, host=address)
        yield port
    finally:
        for proc in procs:
            proc.terminate()


@pytest.fixture(scope="module")
def dns_server() -> Iterator[int]:
    port = free_udp_port()
    server = DNSServer(ReplicaResolver(), port=port, address="127.0.0.1")
    server.start_thread()
    yield port
    server.stop()


def score_request() -> compute_pb2.ScoreRequest:
    market = load_market(SMALL)
    tickers = np.arange(40)
    panel = panel_of(market, tickers, lookback=120)
    block = encode_block(panel, rows=[str(t) for t in market.tickers[tickers]], fields=FIELDS)
    chunk = common_pb2.ChunkRef(
        inline_block=block, symbols=list(market.tickers[tickers]), n_sessions=120, fields=FIELDS
    )
    return compute_pb2.ScoreRequest(scan_id="targets", chunk=chunk)


async def replicas_used(target: str, max_calls: int = 60) -> Counter[str]:
    """Replicas that answered, calling one after another until all three did (or max_calls).

    round_robin rotates over the subchannels that are connected, and they connect one by one after
    the first call, so sequential calls see every replica join; concurrent ones would all leave
    before the others are ready.
    """
    request = score_request()
    used: Counter[str] = Counter()
    async with make_channel(target) as channel:
        stub = compute_pb2_grpc.ComputeStub(channel)
        for _ in range(max_calls):
            reply = await stub.Score(request, timeout=30)
            used[reply.replica.split("/", 1)[1]] += 1
            if len(used) == len(ADDRESSES):
                break
    return used


@pytest.mark.integration
async def test_ipv4_list_target_spreads_over_every_replica(replicas: int) -> None:
    used = await replicas_used("ipv4:" + ",".join(f"{a}:{replicas}" for a in ADDRESSES))
    assert set(used) == {f"{a}:{replicas}" for a in ADDRESSES}


@pytest.mark.integration
async def test_dns_name_target_spreads_over_every_replica(replicas: int, dns_server: int) -> None:
    used = await replicas_used(f"dns://127.0.0.1:{dns_server}/{NAME}:{replicas}")
    assert set(used) == {f"{a}:{replicas}" for a in ADDRESSES}
