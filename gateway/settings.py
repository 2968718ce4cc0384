"""Gateway settings (environment only; see services/common/settings.py for the shared ones).

``TECHNIC_API_KEYS`` is a comma-separated list of keys accepted in the ``X-API-Key`` header of the
HTTP API. The default, ``technic-dev-key``, exists so that a local cluster works out of the box;
every deployment sets its own keys.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from services.common.settings import CommonSettings

DEV_API_KEY = "technic-dev-key"


class GatewaySettings(CommonSettings):
    """Ports, backend targets, auth, limits, deadlines and scan defaults of the gateway."""

    gateway_port: int = 50051
    gateway_http_port: int = 8080
    # Gateway processes serving these two ports on this host (supervisord's numprocs); above one,
    # each binds them with SO_REUSEPORT.
    gateway_processes: int = Field(default=1, ge=1)
    # The processes beyond the first that supervisord starts (its numprocs); when set, it must agree.
    gateway_peers: int | None = None
    # The HTTP API faces the app, so it listens on every interface unless told otherwise.
    gateway_http_host: str = "0.0.0.0"
    fetcher_target: str = "127.0.0.1:50052"
    ranker_target: str = "127.0.0.1:50053"
    compute_target: str = "ipv4:127.0.0.1:50061,127.0.0.1:50062,127.0.0.1:50063,127.0.0.1:50064"
    api_keys: str = DEV_API_KEY
    # Request bodies above this many bytes are refused with 413.
    gateway_max_body_bytes: int = 1024 * 1024
    # Requests per second per API key on the HTTP API (token bucket, ``burst`` deep); 0 switches it off.
    # Above it: 429 with Retry-After. /health and /version are not limited.
    gateway_rate_limit: float = 50.0
    gateway_rate_burst: int = 100
    # Requests without a key (the released app sends none): served only when this is on. Each
    # client address gets its own, tighter bucket; a scan that had to run costs
    # ``gateway_anonymous_scan_cost`` tokens, a cached answer one.
    http_anonymous: bool = False
    gateway_anonymous_rate_limit: float = 2.0
    gateway_anonymous_rate_burst: int = 30
    gateway_anonymous_scan_cost: float = 10.0
    # Client addresses tracked at once for anonymous limits (least recently seen dropped first).
    gateway_anonymous_clients: int = 10_000
    # The header a trusted reverse proxy sets to the client's address (e.g. X-Forwarded-For);
    # empty: the peer address of the connection, whatever the headers say.
    http_trusted_proxy_header: str = ""
    # Comma-separated origins allowed by CORS (a Flutter web build); empty: no CORS headers.
    http_cors_origins: str = ""
    # Optional LLM phrasing of the copilot's grounded answers (OpenAI-compatible chat API).
    copilot_llm_url: str = ""
    copilot_llm_model: str = ""
    copilot_llm_api_key: str = ""
    copilot_llm_timeout_seconds: float = 8.0

    # Deadlines per call, seconds. Universe and snapshot may fetch from the market on a cold start.
    gateway_universe_deadline: float = 120.0
    gateway_snapshot_deadline: float = 120.0
    gateway_prefetch_deadline: float = 600.0
    gateway_score_deadline: float = 30.0
    gateway_rank_deadline: float = 600.0
    gateway_explain_deadline: float = 15.0
    gateway_results_deadline: float = 10.0
    gateway_bars_deadline: float = 15.0
    gateway_health_deadline: float = 1.0

    # Scan defaults (ScanOptions fields left unset).
    gateway_max_symbols: int = 6000
    gateway_min_price: float = 5.0
    gateway_min_dollar_volume: float = 5_000_000.0
    gateway_snapshot_window: int = 20
    gateway_page_limit: int = 100
    # Rows of a result that get feature contributions from Compute.Explain.
    gateway_explain_top: int = 25
    gateway_explain_top_k: int = 5

    # Pipeline shape: symbols per panel chunk, chunks scored at once, attempts per chunk.
    gateway_chunk_size: int = 500
    gateway_inflight_chunks: int = 8
    gateway_score_attempts: int = 3
    # Idle keep-alive of HTTP connections. Longer than clients' own idle expiry (httpx, OkHttp and
    # Dart's HttpClient drop idle connections after 5-15 s), so the server never closes a connection
    # at the moment a client reuses it (the client would see the request fail with no response).
    gateway_http_keep_alive_seconds: float = 75.0
    # How long a scan keeps asking a fetcher that went away (restarting) for the rest of its symbols.
    gateway_fetch_retry_seconds: float = 30.0
    # How long the latest as-of session and universe are trusted without asking the fetcher.
    gateway_as_of_ttl_seconds: float = 5.0
    gateway_universe_ttl_seconds: float = 300.0
    # Finished results kept in process (by fingerprint and page) and asynchronous scans kept.
    gateway_result_cache_entries: int = 64
    gateway_scan_jobs: int = 64
    # Megabytes of serialized answers of repeated Scan / GetScan requests kept in process (each kind;
    # a 100-row page is ~175 KB). Two of these count against the gateway's 512 MiB limit. Symbol
    # pages (~10 KB for 90 days) have a cache of this bound too, which they fill only with many tickers.
    gateway_page_cache_mb: int = 64

    @model_validator(mode="after")
    def _peers_agree(self) -> GatewaySettings:
        if self.gateway_peers is not None and self.gateway_peers != self.gateway_processes - 1:
            raise ValueError(
                f"TECHNIC_GATEWAY_PEERS={self.gateway_peers} must be TECHNIC_GATEWAY_PROCESSES - 1"
                f" ({self.gateway_processes - 1}): both say how many gateway processes share the ports"
            )
        return self

    @property
    def cors_origin_list(self) -> list[str]:
        """The origins CORS allows, blanks dropped."""
        return [o.strip() for o in self.http_cors_origins.split(",") if o.strip()]

    @property
    def api_key_list(self) -> list[str]:
        """The accepted API keys, blanks dropped."""
        return [key.strip() for key in self.api_keys.split(",") if key.strip()]
