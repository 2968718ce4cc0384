"""Repeated scans answered by the HTTP front from kept bytes: same answers, same access policy,
same errors as the routes; the page cache keeps an answer while the latest session is re-asked;
the gateway's HTTP socket is shared between processes only when asked to."""

from __future__ import annotations

import gzip
import socket
from collections.abc import AsyncIterator, Iterator

import pytest
from fastapi.testclient import TestClient

from gateway.__main__ import http_socket
from gateway.caches import PageCache
from gateway.http_api import create_app, routes
from gateway.http_api.answers import RenderedAnswers
from gateway.orchestrator import Progress
from gateway.settings import GatewaySettings
from technic.v1 import scan_pb2
from tests.gateway.doubles import OrchestratorDouble

KEY = "test-key-1"
AUTH = {"X-API-Key": KEY, "Content-Type": "application/json"}
BODY = b'{"trade_style": "Swing", "limit": 3}'


def app_settings(**extra: object) -> GatewaySettings:
    base: dict[str, object] = {"api_keys": KEY, "http_anonymous": True}
    return GatewaySettings(**(base | extra))  # type: ignore[arg-type]


@pytest.fixture
def double() -> OrchestratorDouble:
    double = OrchestratorDouble()
    double.result.cached = True
    return double


@pytest.fixture
def client(double: OrchestratorDouble) -> Iterator[TestClient]:
    with TestClient(create_app(double, app_settings())) as test_client:
        yield test_client


def answers_of(client: TestClient) -> RenderedAnswers:
    return client.app.state.answers  # type: ignore[attr-defined,no-any-return]


def test_a_repeated_body_is_answered_by_the_front(client: TestClient, double: OrchestratorDouble) -> None:
    answers = answers_of(client)
    first = client.post("/v1/scan", content=BODY, headers=AUTH)
    assert first.status_code == 200 and answers.front_hits == 0 and len(double.scans) == 1
    again = client.post("/v1/scan", content=BODY, headers=AUTH)
    assert again.status_code == 200 and answers.front_hits == 1 and len(double.scans) == 1
    assert again.content == first.content and again.headers["etag"] == first.headers["etag"]
    assert again.headers["content-type"] == "application/json"
    # Another spelling of the same request: found by the routes once, then by the front.
    other = b'{"limit": 3, "trade_style": "short-term swing"}'
    assert client.post("/v1/scan", content=other, headers=AUTH).content == first.content
    assert client.post("/v1/scan", content=other, headers=AUTH).content == first.content
    assert answers.front_hits == 2 and len(double.scans) == 1
    # The query form has its own shape and aliases.
    listed = client.get("/v1/scan?trade_style=Swing&limit=3", headers=AUTH)
    assert client.get("/v1/scan?trade_style=Swing&limit=3", headers=AUTH).content == listed.content
    assert answers.front_hits == 3 and listed.json()["data"]


def test_the_front_keeps_304_and_gzip(client: TestClient) -> None:
    answers = answers_of(client)
    plain = client.post("/v1/scan", content=BODY, headers=AUTH)
    etag = plain.headers["etag"]
    not_modified = client.post("/v1/scan", content=BODY, headers={**AUTH, "If-None-Match": f'W/{etag}, "x"'})
    assert not_modified.status_code == 304 and not not_modified.content and not_modified.headers["etag"] == etag
    with client.stream("POST", "/v1/scan", content=BODY, headers={**AUTH, "Accept-Encoding": "gzip"}) as response:
        zipped = b"".join(response.iter_raw())
        assert response.headers["content-encoding"] == "gzip" and response.headers["vary"] == "Accept-Encoding"
        assert int(response.headers["content-length"]) == len(zipped)
    assert gzip.decompress(zipped) == plain.content and answers.front_hits == 2


def test_the_front_applies_the_access_policy(double: OrchestratorDouble) -> None:
    settings = app_settings(http_anonymous=False, gateway_rate_limit=0.01, gateway_rate_burst=3)
    with TestClient(create_app(double, settings)) as client:
        assert client.post("/v1/scan", content=BODY, headers=AUTH).status_code == 200
        refused = client.post("/v1/scan", content=BODY, headers={"Content-Type": "application/json"})
        assert refused.status_code == 401 and refused.json()["error"] == "unauthorized"
        assert client.post("/v1/scan", content=BODY, headers={**AUTH, "X-API-Key": "wrong"}).status_code == 401
        codes = [client.post("/v1/scan", content=BODY, headers=AUTH).status_code for _ in range(3)]
        assert codes == [200, 200, 429]
        limited = client.post("/v1/scan", content=BODY, headers=AUTH)
        assert limited.json()["error"] == "rate_limited" and int(limited.headers["Retry-After"]) >= 1
        assert answers_of(client).front_hits == 2


def test_refresh_and_other_bodies_never_take_the_front(client: TestClient, double: OrchestratorDouble) -> None:
    refresh = b'{"refresh": true}'
    anonymous = {"Content-Type": "application/json"}
    assert client.post("/v1/scan", content=refresh, headers=anonymous).status_code == 401  # needs a key
    for _ in range(2):
        assert client.post("/v1/scan", content=refresh, headers=AUTH).status_code == 200
    assert len(double.scans) == 2 and answers_of(client).front_hits == 0
    client.post("/v1/scan", content=BODY, headers=AUTH)
    for content_type in ({"Content-Type": "text/plain"}, {}):
        text = client.post("/v1/scan", content=BODY, headers={"X-API-Key": KEY, **content_type})
        assert text.status_code == 422 and answers_of(client).front_hits == 0
    bad = client.post("/v1/scan", content=b'{"trade_style": "Weekly"}', headers=AUTH)
    assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "body.trade_style"


def test_a_new_generation_is_not_served_from_an_alias(client: TestClient, double: OrchestratorDouble) -> None:
    client.post("/v1/scan", content=BODY, headers=AUTH)
    double.generation += 1
    assert client.post("/v1/scan", content=BODY, headers=AUTH).status_code == 200
    assert len(double.scans) == 2 and answers_of(client).front_hits == 0


class Reconfirming(OrchestratorDouble):
    """A double whose scan asks the latest session again, as the orchestrator does when it is unknown."""

    async def scan(
        self, options: scan_pb2.ScanOptions, *, refresh: bool = False, scan_id: str = ""
    ) -> AsyncIterator[Progress | scan_pb2.ScanResult]:
        self.as_of = "2026-11-13"
        async for item in super().scan(options, refresh=refresh, scan_id=scan_id):
            yield item


def test_an_answer_outlives_a_lapse_of_the_latest_session(monkeypatch: pytest.MonkeyPatch) -> None:
    double = Reconfirming()
    double.result.cached = True
    rendered = []
    render = routes.scan_response
    monkeypatch.setattr(routes, "scan_response", lambda result: rendered.append(1) or render(result))
    with TestClient(create_app(double, app_settings())) as client:
        first = client.post("/v1/scan", content=BODY, headers=AUTH)
        double.as_of = ""  # the session's few seconds of trust ran out
        again = client.post("/v1/scan", content=BODY, headers=AUTH)
        assert again.content == first.content and len(double.scans) == 2 and len(rendered) == 1


def test_page_cache_keeps_an_entry_while_the_session_is_unknown() -> None:
    state = {"generation": 0, "as_of": "2026-11-13"}
    cache = PageCache(lambda: state["generation"], lambda: state["as_of"], 1024, ttl=lambda: 60.0)
    cache.put(b"latest", b"a", cache.token(), latest_as_of="2026-11-13")
    state["as_of"] = ""
    assert cache.get(b"latest") is None and len(cache) == 1
    state["as_of"] = "2026-11-13"
    assert cache.get(b"latest") == b"a"
    state["as_of"] = "2026-11-14"
    assert cache.get(b"latest") is None and len(cache) == 0


def test_http_socket_is_shared_only_when_asked() -> None:
    first = http_socket("127.0.0.1", 0, reuse_port=True)
    port = first.getsockname()[1]
    assert first.proto == socket.IPPROTO_TCP and first.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    try:
        second = http_socket("127.0.0.1", port, reuse_port=True)
        second.close()
        with pytest.raises(OSError):
            http_socket("127.0.0.1", port, reuse_port=False).close()
    finally:
        first.close()


def test_gateway_processes_reach_supervisord_and_agree() -> None:
    from gateway.cluster import ClusterSettings, environment

    env = environment(ClusterSettings(gateway_processes=3), {})
    assert (env["TECHNIC_GATEWAY_PROCESSES"], env["TECHNIC_GATEWAY_PEERS"]) == ("3", "2")
    assert environment(ClusterSettings(), {})["TECHNIC_GATEWAY_PEERS"] == "0"
    assert GatewaySettings(gateway_processes=2, gateway_peers=1).gateway_processes == 2
    with pytest.raises(ValueError, match="TECHNIC_GATEWAY_PEERS"):
        GatewaySettings(gateway_processes=2, gateway_peers=0)


def test_a_symbol_page_is_kept_with_its_etag_and_gzip(client: TestClient, double: OrchestratorDouble) -> None:
    answers = answers_of(client)
    first = client.get("/v1/symbol/AAA?days=90", headers=AUTH)
    assert first.status_code == 200 and first.json()["history"][-1]["date"] == "2026-11-13"
    etag = first.headers["etag"]
    assert client.get("/v1/symbol/AAA?days=90", headers=AUTH).content == first.content
    assert answers.front_hits == 1 and double.symbol_pages == [("AAA", 90)]
    # Another spelling of the same page (the default days, lower case): found by the route, not asked again.
    assert client.get("/v1/symbol/aaa", headers=AUTH).headers["etag"] == etag
    assert double.symbol_pages == [("AAA", 90)]
    not_modified = client.get("/v1/symbol/AAA?days=90", headers={**AUTH, "If-None-Match": etag})
    assert not_modified.status_code == 304 and not not_modified.content
    with client.stream("GET", "/v1/symbol/AAA?days=90", headers={**AUTH, "Accept-Encoding": "gzip"}) as response:
        zipped = b"".join(response.iter_raw())
        assert response.headers["content-encoding"] == "gzip" and response.headers["etag"] == etag
    assert gzip.decompress(zipped) == first.content
    # Other days are another page.
    assert client.get("/v1/symbol/AAA?days=30", headers=AUTH).status_code == 200
    assert double.symbol_pages == [("AAA", 90), ("AAA", 30)]


def test_a_symbol_page_follows_the_session_and_the_latest_scan(
    client: TestClient, double: OrchestratorDouble, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = client.get("/v1/symbol/AAA", headers=AUTH)
    double.result.rows[0].tech_rating = 55.0
    double.generation += 1  # a scan finished: the page shows its row
    scanned = client.get("/v1/symbol/AAA", headers={**AUTH, "If-None-Match": first.headers["etag"]})
    assert scanned.status_code == 200 and scanned.json()["tech_rating"] == 55.0
    assert scanned.headers["etag"] != first.headers["etag"] and len(double.symbol_pages) == 2
    rendered = []
    render = routes.symbol_response
    monkeypatch.setattr(routes, "symbol_response", lambda detail: rendered.append(1) or render(detail))
    double.as_of = ""  # the session's trust lapsed: the page asks again, and the same session keeps the body
    again = client.get("/v1/symbol/AAA", headers=AUTH)
    assert again.content == scanned.content and len(double.symbol_pages) == 3 and not rendered
    double.session = double.as_of = "2026-11-16"  # a new session: the page is made again
    moved = client.get("/v1/symbol/AAA", headers={**AUTH, "If-None-Match": scanned.headers["etag"]})
    assert moved.status_code == 200 and moved.json()["history"][-1]["date"] == "2026-11-16"
    assert len(double.symbol_pages) == 4 and rendered == [1]


def test_an_unknown_symbol_is_a_404_and_not_kept(client: TestClient, double: OrchestratorDouble) -> None:
    for _ in range(2):
        missing = client.get("/v1/symbol/ZZZ", headers=AUTH)
        assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    assert double.symbol_pages == [("ZZZ", 90), ("ZZZ", 90)] and answers_of(client).front_hits == 0
