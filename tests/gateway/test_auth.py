"""The API-key check: exactly the configured keys pass, as a function and through the HTTP API."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gateway.http_api import create_app
from gateway.http_api.auth import key_matches, matching_key
from gateway.settings import GatewaySettings
from tests.gateway.doubles import OrchestratorDouble

KEYS = ("k3y-Alpha-0123456789", "second.KEY_value~42", "z")
ENCODED = [k.encode() for k in KEYS]
# Characters that look like ASCII ones (Cyrillic, Greek, fullwidth, dotless i, ligature, zero-width).
LOOK_ALIKES = {
    "a": "\u0430",
    "e": "\u0435",
    "o": "\u043e",
    "p": "\u0440",
    "c": "\u0441",
    "x": "\u0445",
    "y": "\u0443",
    "A": "\u0391",
    "K": "\u039a",
    "E": "\u0395",
    "i": "\u0131",
    "k": "\u03ba",
    "0": "\uff10",
    "1": "\uff11",
    "-": "\u2010",
    ".": "\u2024",
    "_": "\uff3f",
    "z": "\u0290",
}
key_text = st.text(st.characters(min_codepoint=33, max_codepoint=126, exclude_characters=","), min_size=1, max_size=24)


def near_misses(key: str) -> st.SearchStrategy[str]:
    """Strings close to ``key`` that are not it: cut, extended, re-cased, padded, look-alike, empty."""
    extra = st.text(min_size=1, max_size=4)
    cuts = st.integers(0, len(key) - 1).map(lambda n: key[:n])
    tails = st.integers(1, len(key)).map(lambda n: key[n:])
    swap = st.sampled_from([i for i, c in enumerate(key) if c.swapcase() != c] or [None]).map(
        lambda i: key if i is None else key[:i] + key[i].swapcase() + key[i + 1 :]
    )
    alike = st.sampled_from([i for i, c in enumerate(key) if c in LOOK_ALIKES] or [None]).map(
        lambda i: key if i is None else key[:i] + LOOK_ALIKES[key[i]] + key[i + 1 :]
    )
    padded = st.tuples(st.sampled_from(["", " ", "\t", "\u00a0"]), st.sampled_from(["", " ", "\t", "\u3000"])).map(
        lambda pad: pad[0] + key + pad[1]
    )
    return st.one_of(
        cuts,
        tails,
        extra.map(lambda s: key + s),
        extra.map(lambda s: s + key),
        swap,
        alike,
        padded,
        st.just(key.upper()),
        st.just(key.lower()),
        st.just(""),
    )


refused = st.sampled_from(KEYS).flatmap(near_misses).filter(lambda s: s not in KEYS) | st.text(max_size=30).filter(
    lambda s: s not in KEYS
)


@settings(max_examples=300, deadline=None)
@given(keys=st.lists(key_text, min_size=1, max_size=4, unique=True), sent=st.none() | st.text(max_size=30))
def test_a_string_matches_only_when_it_is_a_key(keys: list[str], sent: str | None) -> None:
    encoded = [k.encode() for k in keys]
    assert key_matches(sent, encoded) == (sent in keys)
    for key in keys:
        assert matching_key(key, encoded) == key.encode() and key_matches(key, encoded)


def test_missing_and_empty_headers_never_match_even_an_empty_key() -> None:
    assert matching_key(None, [b"", b"a"]) is None
    assert matching_key("", [b"", b"a"]) is None
    assert matching_key("\u20ac", [b"\xe2\x82\xac"]) is None, "not a header value: no Latin-1 bytes"
    for sent in (None, "", "\u20ac"):  # nothing sent matches no key, whatever the key
        assert matching_key(sent, [b"XXXX", b"X", b"?"]) is None


def test_a_header_is_compared_as_the_bytes_sent() -> None:
    """Header values arrive decoded as Latin-1: a UTF-8 key sent as UTF-8 bytes matches."""
    key = "cl\u00e9-\u20ac".encode()
    assert matching_key(key.decode("latin-1"), [b"other", key]) == key
    assert matching_key("cl\u00e9-\u20ac", [key]) is None


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    app = create_app(OrchestratorDouble(), GatewaySettings(api_keys=", ".join(KEYS), gateway_rate_limit=0))
    with TestClient(app) as test_client:
        yield test_client


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sent=refused)
@example(sent=KEYS[0] + "\x00")
@example(sent=KEYS[0].replace("A", "\u0391"))
@example(sent=" " + KEYS[1])
def test_the_http_api_refuses_anything_but_a_key(client: TestClient, sent: str) -> None:
    response = client.get("/v1/universe_stats", headers={"X-API-Key": sent.encode()})
    assert response.status_code == 401, sent
    assert response.json()["error"] == "unauthorized"


@pytest.mark.parametrize("key", KEYS)
def test_the_http_api_accepts_each_key(client: TestClient, key: str) -> None:
    assert client.get("/v1/universe_stats", headers={"X-API-Key": key}).status_code == 200
    assert client.post("/v1/scan", json={}, headers={"X-API-Key": key}).status_code == 200


def test_a_key_configured_with_spaces_around_it_is_the_key_without_them(client: TestClient) -> None:
    """TECHNIC_API_KEYS is split on commas and each key stripped (the fixture writes ', ')."""
    assert client.get("/v1/universe_stats", headers={"X-API-Key": KEYS[1]}).status_code == 200
    assert client.get("/v1/universe_stats", headers={"X-API-Key": " " + KEYS[1]}).status_code == 401
