"""The HTTP load client against a small local server: ghz's report keys, status counts, wire bytes."""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
import pytest

from bench import httpload

BODY = orjson.dumps({"results": [{"ticker": f"T{i}", "value": i * 1.5} for i in range(400)]})


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        sent = self.rfile.read(length) if length else b""
        if self.path != "/v1/scan":
            status, body, extra = 404, b'{"error": "not_found"}', {}
        elif sent and sent != b'{"a": 1}':
            status, body, extra = 422, b'{"error": "invalid_request"}', {}
        elif "gzip" in (self.headers.get("Accept-Encoding") or ""):
            status, body, extra = 200, gzip.compress(BODY), {"Content-Encoding": "gzip"}
        else:
            status, body, extra = 200, BODY, {}
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", "Content-Length": str(len(body)), **extra}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


def run_json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict:
    assert httpload.main([*argv, "-O", "json"]) == 0
    return orjson.loads(capsys.readouterr().out)


def test_report_counts_statuses_and_wire_bytes(server: str, capsys: pytest.CaptureFixture[str]) -> None:
    plain = run_json([f"{server}/v1/scan", "-X", "POST", "-d", '{"a": 1}', "-c", "4", "-n", "20"], capsys)
    assert plain["count"] == 20 and plain["statusCodeDistribution"] == {"200": 20}
    assert plain["bodyBytes"] == len(BODY) and plain["rps"] > 0
    assert [p["percentage"] for p in plain["latencyDistribution"]] == [10, 25, 50, 75, 90, 95, 99]
    assert plain["fastest"] <= plain["latencyDistribution"][2]["latency"] <= plain["slowest"]
    packed = run_json([f"{server}/v1/scan", "--compressed", "-c", "2", "-n", "6"], capsys)
    assert packed["bodyBytes"] == len(gzip.compress(BODY)) < len(BODY) / 3


def test_errors_are_counted_by_status(server: str, capsys: pytest.CaptureFixture[str]) -> None:
    rep = run_json([f"{server}/nowhere", "-c", "2", "-n", "5"], capsys)
    assert rep["statusCodeDistribution"] == {"404": 5}
    assert sum(rep["errorDistribution"].values()) == 5
    rep = run_json([f"{server}/v1/scan", "-X", "POST", "-d", "{}", "-n", "3", "-c", "1"], capsys)
    assert rep["statusCodeDistribution"] == {"422": 3}


def test_summary_names_every_figure(server: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert httpload.main([f"{server}/v1/scan", "-n", "3", "-c", "1"]) == 0
    out = capsys.readouterr().out
    for label in (
        "Count:",
        "Total:",
        "Slowest:",
        "Fastest:",
        "Average:",
        "Requests/sec:",
        "Latency distribution:",
        "Status code distribution:",
        "[200]\t3 responses",
        "Mean body size:",
    ):
        assert label in out


def test_bad_flags_fail_clearly() -> None:
    with pytest.raises(SystemExit):
        httpload.parse_args(["http://127.0.0.1:1/", "-c", "0"])
