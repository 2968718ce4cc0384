"""structlog set-up: JSON lines when not on a terminal, pretty when on one, secrets redacted.

Every line passes through :func:`redact`, which masks the values of secret-looking keys
(``apiKey``, ``Authorization``, ``X-API-Key``, ...), secret-looking fragments inside strings
(``apiKey=...`` in URLs, ``Bearer ...``), and any literal registered with :func:`register_secret`
(the Polygon key and the API keys, registered at start-up). Standard-library loggers (uvicorn,
aiohttp, httpx) are routed through the same chain.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import orjson
import structlog

MASK = "***"
_SECRET_KEY = re.compile(
    r"^(api[_-]?key|apikey|authorization|x[_-]api[_-]key|polygon_api_key|"
    r"api_keys|token|password|secret)$",
    re.IGNORECASE,
)
_SECRET_FRAGMENTS = (
    re.compile(r"(?i)(apiKey=)[^&\s\"']+"),
    re.compile(r"(?i)(Bearer\s+)[^\s\"',}]+"),
    re.compile(r"(?i)(x-api-key[\"']?\s*[:=]\s*[\"']?)[^\s\"',}]+"),
    re.compile(r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?)(?!Bearer)[^\s\"',}]+"),
)
_literal_secrets: set[str] = set()


def register_secret(value: str | None) -> None:
    """Mask this exact value wherever it appears in a log line (ignored when shorter than 4)."""
    if value and len(value) >= 4:
        _literal_secrets.add(value)


def redact_text(text: str) -> str:
    """Mask secret fragments and registered secrets inside one string."""
    for pattern in _SECRET_FRAGMENTS:
        text = pattern.sub(lambda m: m.group(1) + MASK, text)
    for secret in _literal_secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def _redact_value(key: str | None, value: Any) -> Any:
    if key is not None and _SECRET_KEY.match(key):
        return MASK
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, MutableMapping | dict):
        return {k: _redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_value(None, v) for v in value]
    return value


def redact(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: mask secrets in every key and value of the event."""
    for key in list(event_dict):
        event_dict[key] = _redact_value(key, event_dict[key])
    return event_dict


def _json_dumps(obj: Any, **_: Any) -> str:
    return orjson.dumps(obj, default=str).decode()


def configure_logging(service: str, level: str = "info", fmt: str = "auto") -> structlog.stdlib.BoundLogger:
    """Configure structlog and the standard library for one process; returns its logger."""
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        redact,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer(serializer=_json_dumps)
        if use_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.ExtraAdder(), *shared],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiohttp", "httpx", "httpcore", "uvicorn.access", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    structlog.contextvars.bind_contextvars(service=service)
    return structlog.stdlib.get_logger(service)
