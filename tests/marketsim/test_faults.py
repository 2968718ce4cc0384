"""Every fault knob, set through POST /admin/faults on the running simulator, is seen by a client."""

from __future__ import annotations

import time

import httpx
import orjson
import pytest
from polygon import RESTClient
from polygon.exceptions import BadResponse

from tests.marketsim.conftest import API_KEY, TODAY, RunningSim

GROUPED = f"/v2/aggs/grouped/locale/us/market/stocks/{TODAY}"
HOLIDAY = "/v2/aggs/grouped/locale/us/market/stocks/2026-11-26"


def set_faults(sim: RunningSim, **knobs: object) -> None:
    reply = sim.admin("POST", "/admin/faults", json=knobs)
    assert reply.status_code == 200, reply.text
    for name, value in knobs.items():
        assert reply.json()[name] == float(value)  # type: ignore[arg-type]


def get(sim: RunningSim, path: str = GROUPED) -> httpx.Response:
    return httpx.get(f"{sim.url}{path}", params={"apiKey": API_KEY, "adjusted": "false"}, timeout=30)


def injected(sim: RunningSim) -> dict[str, int]:
    return dict(sim.admin("GET", "/admin/stats").json()["faults"])


def test_latency_and_jitter_delay_the_answer(clean_sim: RunningSim) -> None:
    set_faults(clean_sim, latency_ms=300, jitter_ms=100)
    started = time.monotonic()
    assert get(clean_sim).status_code == 200
    assert time.monotonic() - started >= 0.3


@pytest.mark.parametrize(("retry_after", "header"), [(True, "1"), (3, "3"), (False, None)])
def test_429_with_and_without_retry_after(clean_sim: RunningSim, retry_after: object, header: str | None) -> None:
    set_faults(clean_sim, rate_429=1.0, retry_after=retry_after)
    reply = get(clean_sim)
    assert reply.status_code == 429
    assert reply.headers.get("retry-after") == header
    body = reply.json()
    assert body["status"] == "ERROR" and body["request_id"]
    assert body["error"].startswith("You've exceeded the maximum requests per minute")
    with pytest.raises(Exception, match=r"429|retries"):
        RESTClient(api_key=API_KEY, base=clean_sim.url, retries=0).get_grouped_daily_aggs(TODAY)
    assert injected(clean_sim)["429"] == 2


def test_5xx(clean_sim: RunningSim) -> None:
    set_faults(clean_sim, rate_5xx=1.0)
    statuses = {get(clean_sim).status_code for _ in range(12)}
    assert statuses <= {500, 502, 503, 504} and len(statuses) > 1
    assert sum(v for k, v in injected(clean_sim).items() if k.startswith("5")) == 12


def test_malformed_body(clean_sim: RunningSim) -> None:
    set_faults(clean_sim, rate_malformed=1.0)
    reply = get(clean_sim)
    assert reply.status_code == 200
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(reply.content)
    assert injected(clean_sim) == {"malformed": 1}


def test_truncated_body(clean_sim: RunningSim) -> None:
    clean = get(clean_sim).content
    set_faults(clean_sim, rate_truncated=1.0)
    reply = get(clean_sim)
    assert reply.status_code == 200 and int(reply.headers["content-length"]) == len(reply.content)
    assert 0 < len(reply.content) < len(clean)
    assert clean.endswith(reply.content[reply.content.index(b'"queryCount"') :]) is False
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(reply.content)


def test_results_null_on_empty_answers(clean_sim: RunningSim) -> None:
    assert "results" not in get(clean_sim, HOLIDAY).json()
    set_faults(clean_sim, results_null=True)
    body = get(clean_sim, HOLIDAY).json()
    assert "results" in body and body["results"] is None and body["resultsCount"] == 0
    assert len(get(clean_sim).json()["results"]) > 100  # trading days keep their rows


def test_drip_sends_the_body_slowly_in_pieces(clean_sim: RunningSim) -> None:
    set_faults(clean_sim, drip_seconds=1.0)
    pieces = 0
    started = time.monotonic()
    with httpx.stream("GET", f"{clean_sim.url}{GROUPED}", params={"apiKey": API_KEY}, timeout=30) as reply:
        assert reply.status_code == 200
        body = b""
        for chunk in reply.iter_raw():
            pieces += 1
            body += chunk
    assert time.monotonic() - started >= 0.9
    assert pieces > 5 and orjson.loads(body)["status"] == "OK"
    assert injected(clean_sim) == {"drip": 1}


@pytest.mark.parametrize(
    ("status", "field", "text"), [(401, "error", "Unknown API Key"), (403, "status", "NOT_AUTHORIZED")]
)
def test_auth_fail_refuses_a_good_key(clean_sim: RunningSim, status: int, field: str, text: str) -> None:
    set_faults(clean_sim, auth_fail=True, auth_fail_status=status)
    reply = get(clean_sim)
    assert reply.status_code == status and reply.json()[field] == text
    with pytest.raises(BadResponse):
        RESTClient(api_key=API_KEY, base=clean_sim.url, retries=0).get_grouped_daily_aggs(TODAY)


def test_partial_rates_mix_clean_and_faulty_answers(clean_sim: RunningSim) -> None:
    set_faults(clean_sim, rate_5xx=0.5)
    statuses = [get(clean_sim).status_code for _ in range(40)]
    assert 5 < statuses.count(200) < 35


def test_bad_knobs_are_refused(clean_sim: RunningSim) -> None:
    assert clean_sim.admin("POST", "/admin/faults", json={"rate_teapot": 1}).status_code == 400
    assert clean_sim.admin("POST", "/admin/faults", json={"rate_429": 2}).status_code == 400
    assert clean_sim.admin("POST", "/admin/faults", json={"latency_ms": "slow"}).status_code == 400
    assert clean_sim.admin("GET", "/admin/faults").json()["rate_429"] == 0.0


def test_reset_restores_clean_answers(clean_sim: RunningSim) -> None:
    set_faults(clean_sim, rate_5xx=1.0)
    assert get(clean_sim).status_code >= 500
    clean_sim.admin("POST", "/admin/reset")
    assert get(clean_sim).status_code == 200
    assert clean_sim.admin("GET", "/admin/stats").json()["requests"] == {"grouped": 1}
