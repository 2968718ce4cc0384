"""The simulator as a real process, driven by the official Polygon client (and httpx for raw shapes)."""

from __future__ import annotations

import datetime as dt
import math
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import numpy as np
import orjson
import pytest
from polygon import RESTClient
from polygon.exceptions import BadResponse

from tests.marketsim.conftest import API_KEY, TODAY, RunningSim, sim_env, wait_health
from tests.support import free_port, start_service

GROUPED = "/v2/aggs/grouped/locale/us/market/stocks/{}"


def client(sim: RunningSim, retries: int = 0) -> RESTClient:
    return RESTClient(api_key=API_KEY, base=sim.url, retries=retries)


def get(sim: RunningSim, path: str, **params: str | int) -> httpx.Response:
    return httpx.get(f"{sim.url}{path}", params={"apiKey": API_KEY, **params}, timeout=30)


def requests(sim: RunningSim, endpoint: str) -> int:
    return int(sim.admin("GET", "/admin/stats").json()["requests"].get(endpoint, 0))


def split_in_history(sim: RunningSim) -> np.void:
    m = sim.market
    known = m.splits[(m.splits["session_index"] > 20) & (m.splits["session_index"] <= m.today_index)]
    assert len(known), "the small market has no split inside its history"
    return known[0]


# -- grouped daily ------------------------------------------------------------------------------


def test_grouped_daily_matches_the_market(clean_sim: RunningSim) -> None:
    m = clean_sim.market
    day = m.session_date(m.today_index - 3)
    index = m.today_index - 3
    bars = client(clean_sim).get_grouped_daily_aggs(day, adjusted=False)
    tickers = [b.ticker for b in bars]
    listed = np.isfinite(m.close[index]) & (m.ref["market"] != "otc")
    assert set(tickers) == set(m.tickers[listed].tolist())
    assert len(tickers) == listed.sum() + (1 if m.duplicates[index] >= 0 and listed[m.duplicates[index]] else 0)
    end_ms = int(m.session_end_ms[index])
    for bar in bars:
        i = m.ticker_index(bar.ticker)
        assert i is not None
        assert bar.timestamp == end_ms
        assert (bar.open, bar.high, bar.low, bar.close) == (
            m.open[index, i],
            m.high[index, i],
            m.low[index, i],
            m.close[index, i],
        )
        assert bar.volume == m.volume[index, i] and bar.vwap == m.vwap[index, i]
        assert bar.transactions == m.trades[index, i]


def test_grouped_daily_duplicate_row_and_otc_flag(clean_sim: RunningSim) -> None:
    m = clean_sim.market
    dup_sessions = np.flatnonzero((m.duplicates >= 0) & (np.arange(len(m.sessions)) <= m.today_index))
    index = next(int(s) for s in dup_sessions if np.isfinite(m.close[s, m.duplicates[s]]))
    raw = get(clean_sim, GROUPED.format(m.session_date(index)), adjusted="false", include_otc="true").json()
    names = [row["T"] for row in raw["results"]]
    assert names.count(str(m.tickers[m.duplicates[index]])) == 2
    assert raw["resultsCount"] == raw["queryCount"] == len(names)
    otc = {row["T"] for row in raw["results"] if row.get("otc") is True}
    assert otc and otc == set(m.tickers[(m.ref["market"] == "otc") & np.isfinite(m.close[index])].tolist())


@pytest.mark.parametrize("day", ["2026-11-14", "2026-11-26", "2026-12-01", "1999-01-04"])
def test_grouped_daily_without_a_session_has_no_results(clean_sim: RunningSim, day: str) -> None:
    """A weekend, Thanksgiving, a date after today and one before the history: 200, no results key."""
    reply = get(clean_sim, GROUPED.format(day), adjusted="false")
    assert reply.status_code == 200
    body = reply.json()
    assert "results" not in body
    assert body["status"] == "OK" and body["resultsCount"] == 0 and body["queryCount"] == 0
    assert body["adjusted"] is False and body["request_id"]
    assert client(clean_sim).get_grouped_daily_aggs(day) == []


def test_grouped_half_day_ends_at_13_new_york(clean_sim: RunningSim) -> None:
    bars = client(clean_sim).get_grouped_daily_aggs("2025-11-28", adjusted=False)
    assert bars
    closes = {dt.datetime.fromtimestamp(b.timestamp / 1000, dt.UTC) for b in bars}
    assert closes == {dt.datetime(2025, 11, 28, 18, 0, tzinfo=dt.UTC)}


# -- per-ticker aggregates ----------------------------------------------------------------------


def test_per_ticker_pages_follow_next_url_and_match_grouped(clean_sim: RunningSim) -> None:
    m = clean_sim.market
    i = int(np.flatnonzero((m.ref["type"] == "CS") & np.isfinite(m.close).all(0))[0])
    ticker = str(m.tickers[i])
    start = m.session_date(m.today_index - 119)
    aggs = list(client(clean_sim).list_aggs(ticker, 1, "day", start, TODAY, adjusted=False, limit=50))
    assert len(aggs) == 120
    assert requests(clean_sim, "aggs") == 3  # 50 + 50 + 20
    sessions = range(m.today_index - 119, m.today_index + 1)
    assert [a.timestamp for a in aggs] == [int(m.session_start_ms[s]) for s in sessions]
    assert [a.close for a in aggs] == m.close[m.today_index - 119 : m.today_index + 1, i].tolist()
    day = m.session_date(m.today_index - 10)
    grouped = {b.ticker: b for b in client(clean_sim).get_grouped_daily_aggs(day, adjusted=False)}[ticker]
    bar = aggs[-11]
    assert (bar.open, bar.high, bar.low, bar.close, bar.volume, bar.vwap, bar.transactions) == (
        grouped.open,
        grouped.high,
        grouped.low,
        grouped.close,
        grouped.volume,
        grouped.vwap,
        grouped.transactions,
    )
    # session start is 00:00 New York
    start_ny = dt.datetime.fromtimestamp(bar.timestamp / 1000, dt.UTC).astimezone(ZoneInfo("America/New_York"))
    assert (start_ny.date(), start_ny.hour, start_ny.minute) == (day, 0, 0)


def test_per_ticker_descending_with_ms_bounds(clean_sim: RunningSim) -> None:
    m = clean_sim.market
    spy = m.ticker_index("SPY")
    assert spy is not None
    lo, hi = int(m.session_start_ms[m.today_index - 29]), int(m.session_start_ms[m.today_index])
    aggs = list(client(clean_sim).list_aggs("SPY", 1, "day", lo, hi, adjusted=True, sort="desc", limit=7))
    assert [a.timestamp for a in aggs] == [
        int(m.session_start_ms[s]) for s in range(m.today_index, m.today_index - 30, -1)
    ]
    assert requests(clean_sim, "aggs") == 5


def test_adjusted_is_unadjusted_over_split_ratio(clean_sim: RunningSim) -> None:
    m = clean_sim.market
    split = split_in_history(clean_sim)
    i, s = int(split["ticker_index"]), int(split["session_index"])
    ratio = split["split_to"] / split["split_from"]
    ticker = str(m.tickers[i])
    start, end = m.session_date(s - 10), m.session_date(min(s + 5, m.today_index))
    raw = client(clean_sim).get_aggs(ticker, 1, "day", start, end, adjusted=False)
    adj = client(clean_sim).get_aggs(ticker, 1, "day", start, end, adjusted=True)
    assert [a.timestamp for a in raw] == [a.timestamp for a in adj] and raw
    split_ms = int(m.session_start_ms[s])
    for r, a in zip(raw, adj, strict=True):
        factor = ratio if r.timestamp < split_ms else 1.0
        assert a.close == pytest.approx(r.close / factor, rel=1e-6, abs=6e-5)
        assert a.open == pytest.approx(r.open / factor, rel=1e-6, abs=6e-5)
        assert a.volume == pytest.approx(r.volume * factor, rel=1e-6, abs=1e-3)
    # The splits endpoint reports it, and grouped daily adjusted=true agrees with the per-ticker bars.
    listed = list(client(clean_sim).list_splits(ticker=ticker))
    assert [(x.execution_date, x.split_from, x.split_to) for x in listed] == [
        (str(m.session_date(s)), split["split_from"], split["split_to"])
    ]
    before = m.session_date(s - 1)
    grouped = {b.ticker: b for b in client(clean_sim).get_grouped_daily_aggs(before, adjusted=True)}
    assert grouped[ticker].close == pytest.approx(m.close[s - 1, i] / ratio, rel=1e-6, abs=6e-5)


def test_unsupported_timespan_is_400(clean_sim: RunningSim) -> None:
    reply = get(clean_sim, "/v2/aggs/ticker/SPY/range/5/minute/2026-11-01/2026-11-13")
    assert reply.status_code == 400
    body = reply.json()
    assert body["status"] == "ERROR" and "1/day" in body["error"] and body["request_id"]
    with pytest.raises(BadResponse, match="ERROR"):
        client(clean_sim).get_aggs("SPY", 1, "hour", "2026-11-01", "2026-11-13")


# -- reference ------------------------------------------------------------------------------------


def test_reference_tickers_paginate(clean_sim: RunningSim) -> None:
    m = clean_sim.market
    listed = list(client(clean_sim).list_tickers(market="stocks", type="CS", active=True, limit=100))
    expected = (m.ref["market"] == "stocks") & (m.ref["type"] == "CS") & m.ref["active"]
    assert [t.ticker for t in listed] == m.tickers[expected].tolist()
    assert requests(clean_sim, "tickers") == math.ceil(expected.sum() / 100)
    first = listed[0]
    assert first.locale == "us" and first.currency_name == "usd" and first.active is True and first.cik
    delisted = list(client(clean_sim).list_tickers(active=False, limit=1000))
    assert delisted and all(not t.active and t.delisted_utc for t in delisted)
    assert get(clean_sim, "/v3/reference/tickers", limit=1001).status_code == 400


def test_next_url_works_with_query_or_bearer_auth(clean_sim: RunningSim) -> None:
    page = get(clean_sim, "/v3/reference/tickers", limit=5).json()
    assert page["next_url"].startswith(clean_sim.url)
    by_query = httpx.get(f"{page['next_url']}&apiKey={API_KEY}").json()
    by_bearer = httpx.get(page["next_url"], headers={"Authorization": f"Bearer {API_KEY}"}).json()
    assert [r["ticker"] for r in by_query["results"]] == [r["ticker"] for r in by_bearer["results"]]
    assert by_query["results"][0]["ticker"] > page["results"][-1]["ticker"]


def test_ticker_details(clean_sim: RunningSim) -> None:
    m = clean_sim.market
    i = int(np.flatnonzero((m.ref["type"] == "CS") & (m.ref["sic_code"] > 0) & m.ref["active"])[0])
    details = client(clean_sim).get_ticker_details(str(m.tickers[i]))
    assert details.ticker == m.tickers[i] and details.name == m.ref["name"][i]
    assert details.sic_code == str(m.ref["sic_code"][i]) and details.sic_description == m.ref["sic_description"][i]
    assert details.market_cap == pytest.approx(m.ref["market_cap"][i], rel=1e-9)
    assert details.share_class_shares_outstanding == m.ref["shares"][i]
    assert details.type == "CS" and details.locale == "us" and details.active is True
    spy = client(clean_sim).get_ticker_details("SPY")
    assert spy.type == "ETF" and spy.market_cap is None
    reply = get(clean_sim, "/v3/reference/tickers/NOPE")
    assert reply.status_code == 404
    assert reply.json()["status"] == "NOT_FOUND" and reply.json()["message"] == "Ticker not found."


def test_ticker_details_as_of_a_date(clean_sim: RunningSim) -> None:
    m = clean_sim.market
    ipo = int(np.flatnonzero((m.ref["list_index"] > 10) & (m.ref["list_index"] <= m.today_index))[0])
    before = m.session_date(int(m.ref["list_index"][ipo]) - 1)
    on = m.session_date(int(m.ref["list_index"][ipo]))
    reply = get(clean_sim, f"/v3/reference/tickers/{m.tickers[ipo]}", date=before.isoformat())
    assert reply.status_code == 404
    assert get(clean_sim, f"/v3/reference/tickers/{m.tickers[ipo]}", date=on.isoformat()).json()["results"]["active"]
    split = split_in_history(clean_sim)
    i, s = int(split["ticker_index"]), int(split["session_index"])
    ticker = str(m.tickers[i])
    old = client(clean_sim).get_ticker_details(ticker, date=m.session_date(s - 1).isoformat())
    new = client(clean_sim).get_ticker_details(ticker, date=m.session_date(s).isoformat())
    ratio = split["split_to"] / split["split_from"]
    assert new.share_class_shares_outstanding == pytest.approx(old.share_class_shares_outstanding * ratio, rel=1e-6)


def test_splits_paginate_and_match(clean_sim: RunningSim) -> None:
    m = clean_sim.market
    known = m.splits[m.splits["session_index"] <= m.today_index]
    listed = list(client(clean_sim).list_splits(limit=2, order="asc", sort="execution_date"))
    assert len(listed) == len(known)
    assert [x.execution_date for x in listed] == sorted(str(m.session_date(s)) for s in known["session_index"])
    assert requests(clean_sim, "splits") == math.ceil(len(known) / 2)
    assert {(x.ticker, x.split_from, x.split_to) for x in listed} == {
        (str(m.tickers[k["ticker_index"]]), k["split_from"], k["split_to"]) for k in known
    }


# -- auth -------------------------------------------------------------------------------------------


def test_missing_and_wrong_keys(clean_sim: RunningSim) -> None:
    path = f"{clean_sim.url}{GROUPED.format(TODAY)}"
    missing = httpx.get(path)
    assert missing.status_code == 401
    assert missing.json()["error"] == "API Key was not provided" and missing.json()["status"] == "ERROR"
    wrong = httpx.get(path, params={"apiKey": "nope"})
    assert wrong.status_code == 401 and wrong.json()["error"] == "Unknown API Key"
    assert httpx.get(path, headers={"Authorization": "Bearer nope"}).status_code == 401
    assert httpx.get(path, headers={"Authorization": f"Bearer {API_KEY}"}).status_code == 200
    with pytest.raises(BadResponse, match="Unknown API Key"):
        RESTClient(api_key="nope", base=clean_sim.url, retries=0).get_grouped_daily_aggs(TODAY)


# -- admin: advance, oracle, stats -------------------------------------------------------------------


def test_advance_reveals_the_next_session(clean_sim: RunningSim) -> None:
    m = clean_sim.market
    nxt = m.session_date(m.today_index + 1)
    assert client(clean_sim).get_grouped_daily_aggs(nxt, adjusted=False) == []
    moved = clean_sim.admin("POST", "/admin/advance").json()
    assert moved["today"] == nxt.isoformat()
    assert clean_sim.admin("GET", "/health").json()["today"] == nxt.isoformat()
    bars = client(clean_sim).get_grouped_daily_aggs(nxt, adjusted=False)
    expected = np.isfinite(m.close[m.today_index + 1]) & (m.ref["market"] != "otc")
    assert {b.ticker for b in bars} == set(m.tickers[expected].tolist())
    assert clean_sim.admin("POST", "/admin/advance", json={"sessions": 100}).status_code == 409
    clean_sim.admin("POST", "/admin/reset")
    assert clean_sim.admin("GET", "/health").json()["today"] == TODAY.isoformat()


def test_oracle_ic_endpoint_matches_in_process(clean_sim: RunningSim) -> None:
    m = clean_sim.market
    start = m.session_date(100)
    body = clean_sim.admin(
        "GET", "/admin/oracle_ic", params={"start": str(start), "end": str(TODAY), "horizon": 5}
    ).json()
    assert body["ic"] == pytest.approx(m.oracle_ic(start, TODAY, 5), abs=1e-12)
    assert body["ic"] > 0


def test_stats_count_requests_per_endpoint(clean_sim: RunningSim) -> None:
    get(clean_sim, GROUPED.format(TODAY))
    get(clean_sim, GROUPED.format(TODAY))
    get(clean_sim, "/v3/reference/tickers/SPY")
    get(clean_sim, "/v9/nothing")
    stats = clean_sim.admin("GET", "/admin/stats").json()
    assert stats["requests"] == {"grouped": 2, "ticker_details": 1, "not_found": 1}
    assert stats["total"] == 4 and stats["statuses"] == {"200": 3, "404": 1}


def test_initial_fault_knobs_from_settings_and_sigterm_exits_zero(
    sim_cache: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    port = free_port()
    env = sim_env(port, sim_cache, TECHNIC_MARKETSIM_FAULTS='{"rate_429": 1, "retry_after": false}')
    proc = start_service("services.marketsim", port, tmp_path_factory.mktemp("sigterm"), env)
    url = f"http://127.0.0.1:{port}"
    try:
        health = wait_health(proc, url)
        assert health["status"] == "ok" and health["today"] == TODAY.isoformat()
        for _ in range(2):  # the settings' knobs are also what /admin/reset returns to
            reply = httpx.get(f"{url}{GROUPED.format(TODAY)}", params={"apiKey": API_KEY})
            assert reply.status_code == 429 and "retry-after" not in reply.headers
            assert httpx.post(f"{url}/admin/reset").json()["faults"]["rate_429"] == 1.0
    finally:
        assert proc.terminate() == 0, proc.log()[-2000:]
    log = proc.log()
    assert "marketsim stopped" in log and API_KEY not in log


def test_body_is_valid_json_with_fresh_request_ids(clean_sim: RunningSim) -> None:
    a = orjson.loads(get(clean_sim, GROUPED.format(TODAY)).content)
    b = orjson.loads(get(clean_sim, GROUPED.format(TODAY)).content)
    assert a["request_id"] != b["request_id"]
    assert a["results"] == b["results"] and a["status"] == "OK"


def test_warm_up_and_concurrent_requests_for_a_cold_day(clean_sim: RunningSim) -> None:
    deadline = time.monotonic() + 120
    while clean_sim.admin("GET", "/health").json()["warmed"] < 260:
        assert time.monotonic() < deadline, "the background warm-up did not finish"
        time.sleep(0.1)
    assert clean_sim.admin("GET", "/admin/stats").json()["cached_bytes"] > 0
    m = clean_sim.market
    cold = m.session_date(10)  # older than the warmed days, and adjusted: built on first request
    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda _: get(clean_sim, GROUPED.format(cold), adjusted="true"), range(8)))
    assert {r.status_code for r in replies} == {200}
    results = [orjson.loads(r.content)["results"] for r in replies]
    assert all(rows == results[0] for rows in results) and len(results[0]) > 100
