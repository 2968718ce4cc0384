"""gRPC client channels: keepalive, message-size limits, retries on UNAVAILABLE, load balancing.

A target with several addresses (``ipv4:127.0.0.1:50061,127.0.0.1:50062``) or a DNS name
(``dns:///compute.technic.svc:50061``, a Kubernetes headless Service) gets ``round_robin`` so that
every replica behind it shares the work; a single address keeps ``pick_first``.
"""

from __future__ import annotations

from pathlib import Path

import grpc
import orjson

from services.common.settings import CommonSettings

RETRY_POLICY = {
    "maxAttempts": 4,
    "initialBackoff": "0.05s",
    "maxBackoff": "1s",
    "backoffMultiplier": 2,
    "retryableStatusCodes": ["UNAVAILABLE"],
}


def is_balanced_target(target: str) -> bool:
    """True for targets that name several backends (an address list or a DNS name)."""
    scheme = target.split(":", 1)[0]
    return (scheme in ("ipv4", "ipv6") and "," in target) or target.startswith("dns:")


def service_config(target: str, retries: bool = True) -> str:
    """The JSON service config for ``target``: retries on UNAVAILABLE unless the caller retries itself
    (one retry layer per hop), round_robin for balanced targets."""
    config: dict[str, object] = {"methodConfig": [{"name": [{}], "retryPolicy": RETRY_POLICY}]} if retries else {}
    if is_balanced_target(target):
        config["loadBalancingConfig"] = [{"round_robin": {}}]
    return orjson.dumps(config).decode()


def channel_options(target: str, max_message_mb: int = 256, retries: bool = True) -> list[tuple[str, object]]:
    limit = max_message_mb * 1024 * 1024
    return [
        ("grpc.max_send_message_length", limit),
        ("grpc.max_receive_message_length", limit),
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.enable_retries", int(retries)),
        ("grpc.service_config", service_config(target, retries)),
        # Pick up replicas added or restarted behind a DNS name without waiting for a failure.
        ("grpc.dns_min_time_between_resolutions_ms", 1_000),
        ("grpc.initial_reconnect_backoff_ms", 100),
        ("grpc.max_reconnect_backoff_ms", 1_000),
    ]


def client_credentials(settings: CommonSettings) -> grpc.ChannelCredentials | None:
    """TLS credentials for a client when a CA is configured, else None (plaintext).

    The process's own certificate and key, when configured, go along as the client certificate:
    a server with a CA configured requires one (mutual TLS).
    """
    if not settings.tls_ca_file:
        return None
    cert = Path(settings.tls_cert_file).read_bytes() if settings.tls_cert_file else None
    key = Path(settings.tls_key_file).read_bytes() if settings.tls_key_file else None
    return grpc.ssl_channel_credentials(
        root_certificates=Path(settings.tls_ca_file).read_bytes(),
        private_key=key if cert else None,
        certificate_chain=cert if key else None,
    )


def make_channel(target: str, settings: CommonSettings | None = None, retries: bool = True) -> grpc.aio.Channel:
    """An asyncio channel to ``target`` with the cluster's options (TLS when a CA is configured);
    ``retries=False`` for callers that retry on their own."""
    settings = settings or CommonSettings()
    options = channel_options(target, settings.max_message_mb, retries)
    credentials = client_credentials(settings)
    if credentials is not None:
        return grpc.aio.secure_channel(target, credentials, options=options)
    return grpc.aio.insecure_channel(target, options=options)


def make_sync_channel(target: str, settings: CommonSettings | None = None) -> grpc.Channel:
    """A blocking channel to ``target`` with the same options and TLS (command-line tools)."""
    settings = settings or CommonSettings()
    options = channel_options(target, settings.max_message_mb)
    credentials = client_credentials(settings)
    if credentials is not None:
        return grpc.secure_channel(target, credentials, options=options)
    return grpc.insecure_channel(target, options=options)
