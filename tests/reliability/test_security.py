"""Security: API keys (401, constant time, rate limit), loopback binding, gRPC over TLS, no secret in any log.

This module runs last in the folder: its final test reads every log the cluster wrote during the run.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hmac
import ipaddress
import os
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import psutil
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fastapi.testclient import TestClient
from grpc_health.v1 import health_pb2, health_pb2_grpc

import gateway.http_api
import gateway.http_api.auth
from gateway.orchestrator import Orchestrator
from gateway.ratelimit import RateLimiter
from gateway.settings import GatewaySettings
from services.common.channels import make_sync_channel
from services.common.settings import CommonSettings
from technic.v1 import ranker_pb2, ranker_pb2_grpc, scan_pb2
from tests.gateway.doubles import OrchestratorDouble
from tests.reliability.conftest import (
    API_KEYS,
    POLYGON_KEY,
    SupervisedCluster,
    run_scan,
    secrets_in_logs,
)
from tests.support import RedisServer, free_port, start_service

SECRETS = [*API_KEYS, POLYGON_KEY]


# ---- API keys ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers", [{}, {"X-API-Key": "wrong-key"}, {"X-API-Key": API_KEYS[0][:-1]}, {"X-API-Key": ""}]
)
def test_missing_or_wrong_key_is_401(cluster: SupervisedCluster, headers: dict[str, str]) -> None:
    for method, path in (
        ("POST", "/v1/scan"),
        ("GET", "/v1/universe_stats"),
        ("GET", "/v1/symbol/AAPL"),
        ("POST", "/v1/scans"),
        ("GET", "/v1/scans/abc"),
    ):
        response = httpx.request(method, f"{cluster.http}{path}", json={}, headers=headers, timeout=30)
        assert response.status_code == 401, (path, response.text)
        assert response.json()["error"] == "unauthorized"
        assert not any(s in response.text for s in SECRETS)


def test_keys_are_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every configured key goes through hmac.compare_digest, whichever one matches (or none)."""
    compared: list[tuple[bytes, bytes]] = []
    original = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return original(a, b)

    monkeypatch.setattr(gateway.http_api.auth.hmac, "compare_digest", spy)
    keys = ["first-key-1234", "second-key-5678", "third-key-9012"]
    app = gateway.http_api.create_app(OrchestratorDouble(), GatewaySettings(api_keys=",".join(keys)))
    with TestClient(app) as client:
        for given, status in ((keys[0], 200), (keys[2], 200), ("nope", 401)):
            compared.clear()
            assert client.get("/v1/universe_stats", headers={"X-API-Key": given}).status_code == status
            assert sorted(b for _, b in compared) == sorted(k.encode() for k in keys)
            assert {a for a, _ in compared} == {given.encode()}


# ---- rate limit ----------------------------------------------------------------------------------


def test_token_bucket_allows_the_burst_then_refills() -> None:
    now = [100.0]
    limiter = RateLimiter(rate=2.0, burst=3, clock=lambda: now[0])
    assert [limiter.acquire(b"a") for _ in range(3)] == [0, 0, 0]
    assert limiter.acquire(b"a") == 1  # empty: one token comes back in 0.5 s, said as whole seconds
    assert limiter.acquire(b"b") == 0, "each key has its own bucket"
    now[0] += 0.5
    assert limiter.acquire(b"a") == 0
    assert limiter.acquire(b"a") == 1
    now[0] += 60
    assert [limiter.acquire(b"a") for _ in range(4)] == [0, 0, 0, 1], "refill stops at the burst"
    slow = RateLimiter(rate=0.1, burst=1, clock=lambda: now[0])
    assert slow.acquire(b"a") == 0 and slow.acquire(b"a") == 10
    off = RateLimiter(rate=0.0, burst=1)
    assert all(off.acquire(b"a") == 0 for _ in range(1000))


def test_rate_limit_per_key_answers_429_with_retry_after(cluster: SupervisedCluster) -> None:
    settings = GatewaySettings(_env_file=None)
    limited, other = API_KEYS[2], API_KEYS[3]
    requests = 4 * settings.gateway_rate_burst

    async def burst() -> tuple[list[httpx.Response], httpx.Response]:
        async with httpx.AsyncClient(
            base_url=cluster.http, timeout=60, limits=httpx.Limits(max_connections=100)
        ) as client:
            answers = await asyncio.gather(
                *(client.get("/v1/universe_stats", headers={"X-API-Key": limited}) for _ in range(requests))
            )
            unaffected = await client.get("/v1/universe_stats", headers={"X-API-Key": other})
            return list(answers), unaffected

    answers, unaffected = asyncio.run(burst())
    statuses = {r.status_code for r in answers}
    assert statuses <= {200, 429}, statuses
    refused = [r for r in answers if r.status_code == 429]
    assert refused and sum(r.status_code == 200 for r in answers) >= settings.gateway_rate_burst
    for response in refused:
        assert int(response.headers["Retry-After"]) >= 1
        assert response.json()["error"] == "rate_limited" and limited not in response.text
    assert unaffected.status_code == 200, "another key has its own bucket"
    time.sleep(int(refused[-1].headers["Retry-After"]))
    assert httpx.get(f"{cluster.http}/v1/universe_stats", headers={"X-API-Key": limited}, timeout=30).status_code == 200
    assert httpx.get(f"{cluster.http}/health", timeout=30).status_code == 200, "health is never limited"


# ---- binding ---------------------------------------------------------------------------------------


def test_internal_grpc_ports_bind_loopback_by_default(cluster: SupervisedCluster, monkeypatch) -> None:
    for name in [n for n in os.environ if n.startswith("TECHNIC_")]:
        monkeypatch.delenv(name)
    assert CommonSettings(_env_file=None).grpc_host == "127.0.0.1"
    assert "TECHNIC_GRPC_HOST" not in cluster.env
    ports = {
        "fetcher": cluster.port("TECHNIC_FETCHER_PORT"),
        "ranker": cluster.port("TECHNIC_RANKER_PORT"),
        "gateway": cluster.port("TECHNIC_GATEWAY_PORT"),
    }
    ports.update({f"compute:compute-{i + 1}": p for i, p in enumerate(cluster.compute_ports)})
    for name, port in ports.items():
        listening = [
            c.laddr
            for c in psutil.Process(cluster.pid(name)).net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN and c.laddr.port == port
        ]
        assert listening, f"{name} does not listen on {port}"
        addresses = [ipaddress.ip_address(a.ip) for a in listening]
        # An IPv6 socket bound to ::ffff:127.0.0.1 is the IPv4 loopback.
        assert all((getattr(a, "ipv4_mapped", None) or a).is_loopback for a in addresses), (name, listening)


# ---- TLS -------------------------------------------------------------------------------------------


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(
    subject: str, key: ec.EllipticCurvePrivateKey, issuer: str, issuer_key: ec.EllipticCurvePrivateKey, ca: bool
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _write(path: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> tuple[str, str]:
    cert_file, key_file = path.with_suffix(".crt"), path.with_suffix(".key")
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return str(cert_file), str(key_file)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A throwaway CA with one server/client certificate (mutual TLS), and a stranger's certificate."""
    folder = tmp_path_factory.mktemp("pki")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("technic test CA", ca_key, "technic test CA", ca_key, ca=True)
    (folder / "ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    key = ec.generate_private_key(ec.SECP256R1())
    cert, key_file = _write(folder / "service", _certificate("technic", key, "technic test CA", ca_key, ca=False), key)
    other_key = ec.generate_private_key(ec.SECP256R1())
    stranger, stranger_key = _write(
        folder / "stranger", _certificate("stranger", other_key, "stranger", other_key, ca=False), other_key
    )
    return {
        "ca": str(folder / "ca.crt"),
        "cert": cert,
        "key": key_file,
        "stranger_cert": stranger,
        "stranger_key": stranger_key,
    }


def _health(target: str, settings: CommonSettings | None) -> str:
    channel = make_sync_channel(target, settings) if settings else grpc.insecure_channel(target)
    with channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=3)
        except grpc.RpcError as exc:
            return exc.code().name
    return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


@pytest.fixture(scope="module")
def tls_ranker(
    pki: dict[str, str], redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, CommonSettings]]:
    port = free_port()
    tls = {"TECHNIC_TLS_CERT_FILE": pki["cert"], "TECHNIC_TLS_KEY_FILE": pki["key"], "TECHNIC_TLS_CA_FILE": pki["ca"]}
    proc = start_service(
        "services.ranker",
        port,
        tmp_path_factory.mktemp("tls-logs"),
        {"REDIS_URL": redis_server.url, "TECHNIC_RANKER_PORT": str(port), **tls},
    )
    settings = CommonSettings(_env_file=None, tls_cert_file=pki["cert"], tls_key_file=pki["key"], tls_ca_file=pki["ca"])
    target = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while _health(target, settings) != "SERVING":
            assert proc.process.poll() is None and time.monotonic() < deadline, proc.log()[-3000:]
            time.sleep(0.2)
        yield target, settings
    finally:
        assert proc.terminate() == 0


def test_grpc_over_tls_with_certificates_from_settings(tls_ranker, pki: dict[str, str]) -> None:
    target, settings = tls_ranker
    assert _health(target, settings) == "SERVING"
    with make_sync_channel(target, settings) as channel:
        with pytest.raises(grpc.RpcError) as missing:
            ranker_pb2_grpc.RankerStub(channel).GetResults(
                ranker_pb2.GetResultsRequest(fingerprint="f" * 32), timeout=10
            )
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND, "a real answer over TLS"
    assert _health(target, None) == "UNAVAILABLE", "plaintext is refused"
    no_client_cert = CommonSettings(_env_file=None, tls_ca_file=pki["ca"])
    assert _health(target, no_client_cert) == "UNAVAILABLE", "a client without a certificate is refused"
    stranger = CommonSettings(
        _env_file=None, tls_ca_file=pki["ca"], tls_cert_file=pki["stranger_cert"], tls_key_file=pki["stranger_key"]
    )
    assert _health(target, stranger) == "UNAVAILABLE", "a certificate from another CA is refused"


async def test_gateway_channels_use_tls_from_settings(tls_ranker, pki: dict[str, str]) -> None:
    """The orchestrator reaches its backends through make_channel, so the same settings give it TLS."""
    target, _ = tls_ranker
    orchestrator = Orchestrator(
        GatewaySettings(
            _env_file=None,
            ranker_target=target,
            fetcher_target=target,
            compute_target=target,
            tls_cert_file=pki["cert"],
            tls_key_file=pki["key"],
            tls_ca_file=pki["ca"],
        )
    )
    try:
        health = await orchestrator.health()
    finally:
        await orchestrator.close()
    assert health["ranker"]["status"] == "SERVING", health
    plain = Orchestrator(
        GatewaySettings(_env_file=None, ranker_target=target, fetcher_target=target, compute_target=target)
    )
    try:
        assert (await plain.health())["ranker"]["status"] == "UNREACHABLE"
    finally:
        await plain.close()


# ---- secrets ---------------------------------------------------------------------------------------


def test_polygon_key_refused_by_the_source_is_not_echoed(cluster: SupervisedCluster) -> None:
    """The market refusing the key makes the fetcher log and answer an error: neither carries the key."""
    run_scan(cluster.target, scan_pb2.ScanOptions(limit=5), refresh=False)  # the sessions are in Redis
    client = cluster.redis()
    newest = sorted(client.keys("technic:raw:session:*"), reverse=True)[:1]
    client.delete(*newest)
    cluster.restart("fetcher", cluster.port("TECHNIC_FETCHER_PORT"))
    cluster.set_faults(auth_fail=1.0)
    try:
        with pytest.raises(grpc.RpcError) as refused:
            run_scan(cluster.target, scan_pb2.ScanOptions(trade_style=scan_pb2.TRADE_STYLE_DAY, limit=5))
    finally:
        cluster.reset_faults()
    assert refused.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNAUTHENTICATED), refused.value
    assert POLYGON_KEY not in (refused.value.details() or "")
    response = httpx.post(
        f"{cluster.http}/v1/scan",
        json={"trade_style": "Day", "limit": 5},
        headers={"X-API-Key": API_KEYS[4]},
        timeout=120,
    )
    assert not any(s in response.text for s in SECRETS)


def test_no_secret_in_any_log_line(cluster: SupervisedCluster) -> None:
    """Every log the cluster wrote so far (each process, supervisord) is free of the Polygon and API keys."""
    logs = sorted(p.name for p in cluster.run_dir.rglob("*.log"))
    assert {"gateway.log", "fetcher.log", "marketsim.log", "ranker.log", "supervisord.log"} <= set(logs), logs
    assert secrets_in_logs(cluster.run_dir, SECRETS) == {}
