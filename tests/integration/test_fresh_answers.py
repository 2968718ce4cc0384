"""Kept answers over the real cluster: a new session is never answered with the old body.

The app's scan (``POST /v1/scan`` as its scanner screen sends it, and ``GET /v1/scan`` as its list
calls do), the symbol page and gRPC ``Scan`` are asked until their answers are kept, the simulator
moves on one session, and every one of them is asked again, also with the old ETag in
If-None-Match: each answers 200 with the new session, never the old body and never 304. The
cluster is this module's own (its simulator moves forward for good), with the latest session
trusted for one second in the fetcher and in the gateway. Last, with compute and then the ranker
stopped, a scan gets a JSON 503 naming what failed, and leaves no answer behind.
"""

from __future__ import annotations

import gzip
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import httpx
import orjson
import pytest

from technic.v1 import scan_pb2, scanner_pb2, scanner_pb2_grpc
from tests.integration.conftest import API_KEY, Cluster, running_cluster
from tests.support import collect_scan

pytestmark = pytest.mark.integration

TRUST_SECONDS = 1.0
# The app's scanner screen (its Swing preset) and the list call of its results tab.
APP_SCAN = {
    "max_symbols": 6000,
    "trade_style": "Swing",
    "min_tech_rating": 0.0,
    "lookback_days": 90,
    "options_mode": "stock_only",
}
APP_LIST = {"trade_style": "Short-term swing", "min_tech_rating": "0", "lookback_days": "90", "max_symbols": "6000"}
SYMBOL_DAYS = 30
IDENTITY = {"Accept-Encoding": "identity"}
GZIP = {"Accept-Encoding": "gzip"}


@pytest.fixture(scope="module")
def fresh_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    trust = str(TRUST_SECONDS)
    with running_cluster(
        tmp_path_factory,
        compute_replicas=1,
        fetcher_env={"TECHNIC_FETCHER_LATEST_TTL": trust},
        gateway_env={"TECHNIC_GATEWAY_AS_OF_TTL_SECONDS": trust},
    ) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def client(fresh_cluster: Cluster) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fresh_cluster.http, headers={"X-API-Key": API_KEY}, timeout=300.0) as http:
        yield http


@dataclass(frozen=True)
class Answer:
    status_code: int
    headers: httpx.Headers
    content: bytes  # as sent: gzip bytes when the answer is compressed


def raw(client: httpx.Client, method: str, url: str, headers: dict[str, str], **kwargs: Any) -> Answer:
    """One request, its body read as sent (not decompressed)."""
    with client.stream(method, url, headers=headers, **kwargs) as response:
        return Answer(response.status_code, response.headers, b"".join(response.iter_raw()))


def kept(client: httpx.Client, method: str, url: str, **kwargs: Any) -> Answer:
    """Ask until two answers in a row are the same bytes: the answer is kept (the first of a session
    may be the scan that ran, which is not kept)."""
    previous = raw(client, method, url, IDENTITY, **kwargs)
    for _ in range(5):
        again = raw(client, method, url, IDENTITY, **kwargs)
        assert again.status_code == 200, again.text[:400]
        if again.content == previous.content and again.headers["etag"] == previous.headers["etag"]:
            return again
        previous = again
    raise AssertionError(f"{method} {url} never answered the same bytes twice")


def same_as_gzip(client: httpx.Client, method: str, url: str, identity: Answer, **kwargs: Any) -> None:
    """The gzip answer is the identity answer compressed, under the same ETag."""
    zipped = raw(client, method, url, GZIP, **kwargs)
    assert zipped.status_code == 200 and zipped.headers.get("content-encoding") == "gzip"
    assert zipped.headers["etag"] == identity.headers["etag"]
    assert gzip.decompress(zipped.content) == identity.content


def last_bar(body: dict[str, Any]) -> str:
    return str(body["history"][-1]["date"])


def grpc_scan(target: str) -> scan_pb2.ScanResult:
    options = scan_pb2.ScanOptions(trade_style=scan_pb2.TRADE_STYLE_SHORT_TERM_SWING, lookback_days=90, limit=100)
    with grpc.insecure_channel(target) as channel:
        stub = scanner_pb2_grpc.ScannerStub(channel)
        _, result = collect_scan(stub.Scan(scanner_pb2.ScanRequest(options=options), timeout=300))
    return result


def test_a_new_session_is_never_answered_with_the_old_body(fresh_cluster: Cluster, client: httpx.Client) -> None:
    post = kept(client, "POST", "/v1/scan", json=APP_SCAN)
    same_as_gzip(client, "POST", "/v1/scan", post, json=APP_SCAN)
    listed = kept(client, "GET", "/v1/scan", params=APP_LIST)
    same_as_gzip(client, "GET", "/v1/scan", listed, params=APP_LIST)
    old_as_of = orjson.loads(post.content)["as_of"]
    assert old_as_of and orjson.loads(listed.content)["as_of"] == old_as_of
    ticker = orjson.loads(post.content)["results"][0]["ticker"]
    symbol_url = f"/v1/symbol/{ticker}"
    page = kept(client, "GET", symbol_url, params={"days": SYMBOL_DAYS})
    assert last_bar(orjson.loads(page.content)) == old_as_of
    assert grpc_scan(fresh_cluster.target).as_of == old_as_of
    assert grpc_scan(fresh_cluster.target).cached

    with httpx.Client(base_url=f"http://127.0.0.1:{fresh_cluster.processes['marketsim'].port}") as sim:
        sim.post("/admin/advance", json={"sessions": 1}).raise_for_status()
    # Past the fetcher's trust in the latest session, then the gateway's.
    time.sleep(2 * TRUST_SECONDS + 0.5)

    for old, method, url, kwargs in (
        (post, "POST", "/v1/scan", {"json": APP_SCAN}),
        (listed, "GET", "/v1/scan", {"params": APP_LIST}),
        (page, "GET", symbol_url, {"params": {"days": SYMBOL_DAYS}}),
    ):
        for headers in (
            {**IDENTITY, "If-None-Match": old.headers["etag"]},
            {**GZIP, "If-None-Match": old.headers["etag"]},
            IDENTITY,
        ):
            answer = raw(client, method, url, headers, **kwargs)
            assert answer.status_code == 200, (url, headers, answer.status_code, answer.content[:400])
            assert answer.headers["etag"] != old.headers["etag"], (url, headers)
            body = gzip.decompress(answer.content) if answer.headers.get("content-encoding") else answer.content
            assert body != old.content
            decoded = orjson.loads(body)
            if url == symbol_url:
                assert last_bar(decoded) > old_as_of, (url, headers, last_bar(decoded))
            else:
                assert decoded["as_of"] > old_as_of, (url, headers, decoded["as_of"])
        new = kept(client, method, url, **kwargs)
        same_as_gzip(client, method, url, new, **kwargs)
    assert grpc_scan(fresh_cluster.target).as_of > old_as_of


def unavailable(response: httpx.Response, detail: str) -> None:
    assert response.status_code == 503, (response.status_code, response.text[:400])
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"] == "backend_unavailable" and detail in response.json()["detail"]


def test_a_scan_with_the_backends_down_is_a_json_503(fresh_cluster: Cluster, client: httpx.Client) -> None:
    kept_before = kept(client, "POST", "/v1/scan", json=APP_SCAN)
    fresh_cluster.processes["compute-0"].terminate()
    unavailable(client.post("/v1/scan", json={**APP_SCAN, "refresh": True}), "compute failed: no replica scored")
    # The failed scan left nothing behind: the kept answer is still the one served.
    assert raw(client, "POST", "/v1/scan", IDENTITY, json=APP_SCAN).content == kept_before.content
    fresh_cluster.processes["ranker"].terminate()
    unavailable(client.post("/v1/scan", json={**APP_SCAN, "trade_style": "Position"}), "failed")
