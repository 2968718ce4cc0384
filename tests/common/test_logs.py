"""Log lines never carry a secret: keys, bearer tokens, apiKey query values, registered literals."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import orjson
import pytest
import structlog

from services.common.logs import configure_logging, redact_text, register_secret


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    yield
    logging.getLogger().handlers.clear()


def json_lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]


def test_secret_keys_are_masked(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("test", "info", "json")
    log = structlog.get_logger("t")
    log.info(
        "calling polygon",
        apiKey="pk_live_123456",
        headers={"Authorization": "Bearer abcdef123", "X-API-Key": "client-key-9"},
    )
    (line,) = json_lines(capsys)
    text = orjson.dumps(line).decode()
    assert "pk_live_123456" not in text and "abcdef123" not in text and "client-key-9" not in text
    assert line["apiKey"] == "***"
    assert line["headers"] == {"Authorization": "***", "X-API-Key": "***"}


def test_secrets_inside_strings_and_registered_literals_are_masked(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("test", "info", "json")
    register_secret("s3cr3t-polygon-key")
    log = structlog.get_logger("t")
    log.warning(
        "GET https://api.polygon.io/v2/aggs?apiKey=abc123&adjusted=false failed",
        error="upstream said s3cr3t-polygon-key is invalid",
        auth="Authorization: Bearer tok-42",
    )
    logging.getLogger("httpx").warning("retrying with Bearer tok-43 and key s3cr3t-polygon-key")
    text = "\n".join(orjson.dumps(line).decode() for line in json_lines(capsys))
    for secret in ("abc123", "s3cr3t-polygon-key", "tok-42", "tok-43"):
        assert secret not in text
    assert "apiKey=***" in text and "adjusted=false" in text


def test_redact_text_keeps_ordinary_text() -> None:
    assert redact_text("scanned 5000 symbols in 2.1 s") == "scanned 5000 symbols in 2.1 s"
    assert redact_text("x-api-key: abc") == "x-api-key: ***"
