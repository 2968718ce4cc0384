"""Settings shared by every service, read from environment variables only.

Each service declares one subclass in its own package. Every field has a default that runs the
cluster locally; names map to ``TECHNIC_<FIELD>`` plus the unprefixed ``REDIS_URL``,
``POLYGON_API_KEY`` and ``POLYGON_BASE_URL`` that deployments conventionally set.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class CommonSettings(BaseSettings):
    """What every process reads: logging, Redis, gRPC binding and shutdown grace."""

    model_config = SettingsConfigDict(env_prefix="TECHNIC_", extra="ignore", populate_by_name=True)

    redis_url: str = Field(
        default="redis://127.0.0.1:6379/0",
        validation_alias=AliasChoices("REDIS_URL", "TECHNIC_REDIS_URL"),
    )
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["auto", "json", "console"] = "auto"
    # Internal gRPC ports bind to loopback unless told otherwise (Kubernetes sets 0.0.0.0).
    grpc_host: str = "127.0.0.1"
    grace_seconds: float = 5.0
    max_message_mb: int = 256
    run_dir: Path = PROJECT_ROOT / ".run"
    # Optional TLS for gRPC: server certificate and key (PEM files). Empty: plaintext.
    tls_cert_file: str = ""
    tls_key_file: str = ""
    tls_ca_file: str = ""
