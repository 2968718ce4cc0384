"""Polygon REST responses from a :class:`Market`, in Polygon's JSON shapes, as pre-serialised bytes.

Domain only: no HTTP framework here. Each builder returns the JSON body of a successful answer
*without* ``request_id`` (the server adds a fresh one per request) or raises :class:`ApiError`
with Polygon's status and error body. Grouped-daily bodies are cached per session in a bounded
LRU, so a repeated day is a dictionary lookup.

Timestamps: grouped daily ``t`` is the end of the session (16:00 New York, 13:00 on half days),
per-ticker ``t`` its start (00:00 New York), both in milliseconds UTC, as Polygon sends them.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import numpy as np
import orjson
import pandas as pd

from services.common.redis_client import ByteLRU
from services.marketsim.jsonrows import label_bytes, rows_json
from services.marketsim.market import NY, Market

AGGS_DEFAULT_LIMIT = 5_000
AGGS_MAX_LIMIT = 50_000
TICKERS_DEFAULT_LIMIT = 100
TICKERS_MAX_LIMIT = 1_000
SPLITS_DEFAULT_LIMIT = 10
SPLITS_MAX_LIMIT = 1_000
_BAR_KEYS = (("v", "volume"), ("vw", "vwap"), ("o", "open"), ("c", "close"), ("h", "high"), ("l", "low"))
_DAY_MS = 86_400_000
GroupedKey = tuple[int, bool, bool, int]  # session index, adjusted, include_otc, today index (adjusted only)


class ApiError(Exception):
    """An answer other than 200: Polygon's status code and body (without request_id)."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body


def bad_request(message: str) -> ApiError:
    return ApiError(400, {"status": "ERROR", "error": message})


def _encode_cursor(state: Mapping[str, Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(dict(state))).decode().rstrip("=")


def _decode_cursor(cursor: str) -> dict[str, Any]:
    try:
        state = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, orjson.JSONDecodeError):
        raise bad_request("Invalid cursor.") from None
    if not isinstance(state, dict):
        raise bad_request("Invalid cursor.")
    return state


def _page_state(params: Mapping[str, str], default_limit: int, max_limit: int) -> tuple[dict[str, str], int, int]:
    """(query state, offset, limit) of a cursor-paginated reference request; the cursor holds the
    first page's query and the offset, explicit parameters override it."""
    state = dict(params)
    offset = 0
    if params.get("cursor"):
        decoded = _decode_cursor(params["cursor"])
        offset = int(decoded.pop("offset", 0))
        state = {**{k: str(v) for k, v in decoded.items()}, **{k: v for k, v in params.items() if k != "cursor"}}
    limit = _int_param(state, "limit", default_limit)
    if limit > max_limit or limit < 1:
        raise bad_request(f"Limit must be between 1 and {max_limit}.")
    state["limit"] = str(limit)
    return state, offset, limit


def _next_page_url(endpoint: str, state: Mapping[str, str], offset: int) -> str:
    """Absolute next_url carrying the query and offset in ``cursor`` (the client adds its own auth)."""
    cursor: dict[str, Any] = {k: v for k, v in state.items() if k not in ("apiKey", "cursor")}
    cursor["offset"] = offset
    return f"{endpoint}?{urlencode({'cursor': _encode_cursor(cursor)})}"


def _bool_param(params: Mapping[str, str], name: str, default: bool) -> bool:
    value = params.get(name)
    if value is None or value == "":
        return default
    if value.lower() in ("true", "1"):
        return True
    if value.lower() in ("false", "0"):
        return False
    raise bad_request(f"Invalid value for '{name}': must be true or false.")


def _int_param(params: Mapping[str, str], name: str, default: int) -> int:
    value = params.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise bad_request(f"Invalid value for '{name}': must be an integer.") from None


def _parse_date(value: str, name: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise bad_request(f"Could not parse '{name}' as a date (YYYY-MM-DD): {value!r}.") from None


def _ny_midnight_ms(day: dt.date) -> int:
    return int(pd.Timestamp(day).tz_localize(NY).value // 1_000_000)


def _bound_ms(value: str, name: str, end: bool) -> int:
    """A from/to path segment (date or ms timestamp) as a ms bound on session start times."""
    if value.isdigit():
        return int(value)
    day = _parse_date(value, name)
    return _ny_midnight_ms(day) + (_DAY_MS - 1 if end else 0)


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else float(value)


class PolygonApi:
    """Answers the Polygon REST subset from one market."""

    def __init__(self, market: Market, cache_bytes: int = 512 << 20) -> None:
        self.market = market
        self.cache = ByteLRU(cache_bytes)
        self.warmed = 0
        self.labels = label_bytes(market.tickers)
        self.today_changed()

    def today_changed(self) -> None:
        """Recompute what depends on "today": the tickers listed by then (adjusted bodies key on today)."""
        self._listed = np.flatnonzero(self.market.ref["list_index"] <= self.market.today_index)

    def _ticker_record(self, i: int, stamp: str) -> dict[str, Any]:
        """One /v3/reference/tickers result (built per page: at most 1,000 a request)."""
        ref = self.market.ref
        record: dict[str, Any] = {
            "ticker": str(self.market.tickers[i]),
            "name": str(ref["name"][i]),
            "market": str(ref["market"][i]),
            "locale": "us",
            "primary_exchange": str(ref["exchange"][i]),
            "type": str(ref["type"][i]),
            "active": bool(ref["active"][i]),
            "currency_name": "usd",
            "composite_figi": str(ref["composite_figi"][i]),
            "last_updated_utc": stamp,
        }
        if ref["type"][i] != "ETF":
            record["cik"] = str(ref["cik"][i])
        if not ref["active"][i]:
            record["delisted_utc"] = f"{self.market.session_date(int(ref['delist_index'][i])).isoformat()}T00:00:00Z"
        return record

    # -- grouped daily ---------------------------------------------------------------------------
    def grouped_daily(self, date: str, params: Mapping[str, str], results_null: bool = False) -> bytes:
        """The grouped-daily body for ``date``, built (and cached) here when it is not cached yet."""
        found = self.grouped_lookup(date, params, results_null)
        return found if isinstance(found, bytes) else self.build_and_cache(found)

    def grouped_lookup(self, date: str, params: Mapping[str, str], results_null: bool = False) -> bytes | GroupedKey:
        """The body when the answer is empty or cached, else the key to pass to :meth:`build_and_cache`."""
        day = _parse_date(date, "date")
        adjusted = _bool_param(params, "adjusted", True)
        include_otc = _bool_param(params, "include_otc", False)
        m = self.market
        index = m.session_index(day)
        if index is None or index > m.today_index:
            return self._empty_grouped(adjusted, results_null)
        key: GroupedKey = (index, adjusted, include_otc, m.today_index if adjusted else -1)
        body = self.cache.get(key)
        return body if body is not None else key

    def build_and_cache(self, key: GroupedKey) -> bytes:
        """Build one grouped-daily body (releases the GIL for most of it) and keep it in the LRU."""
        body = self.build_grouped(key[0], key[1], key[2])
        self.cache.set(key, body)
        return body

    def warm(self, sessions: int, include_otc: bool = True) -> None:
        """Build the unadjusted days of the last ``sessions`` sessions, newest first (a start-up thread)."""
        today = self.market.today_index
        for index in range(today, max(today - sessions, -1), -1):
            key: GroupedKey = (index, False, include_otc, -1)
            if self.cache.get(key) is None:
                self.build_and_cache(key)
            self.warmed += 1

    @staticmethod
    def _empty_grouped(adjusted: bool, results_null: bool) -> bytes:
        body: dict[str, Any] = {"queryCount": 0, "resultsCount": 0, "adjusted": adjusted}
        if results_null:
            body["results"] = None
        body["status"] = "OK"
        return orjson.dumps(body)

    def grouped_rows(self, index: int, adjusted: bool, include_otc: bool) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Ticker indices of one grouped-daily answer (with the session's duplicate) and their bar columns."""
        m = self.market
        traded = np.isfinite(m.close[index])
        if not include_otc:
            traded &= m.ref["market"] != "otc"
        rows = np.flatnonzero(traded)
        dup = int(m.duplicates[index])
        if dup >= 0 and traded[dup]:
            rows = np.insert(rows, int(np.searchsorted(rows, dup)) + 1, dup)
        columns = {name: getattr(m, name)[index, rows] for _, name in _BAR_KEYS}
        if adjusted:
            factor = self._session_factor(index)[rows]
            for _, name in _BAR_KEYS:
                columns[name] = columns[name] * factor if name == "volume" else columns[name] / factor
        columns["trades"] = m.trades[index, rows]
        return rows, columns

    def _session_factor(self, index: int) -> np.ndarray:
        """Per-ticker divisor adjusting session ``index`` for splits known today."""
        m = self.market
        known = m.splits[(m.splits["session_index"] > index) & (m.splits["session_index"] <= m.today_index)]
        factor = np.ones(len(m.tickers))
        np.multiply.at(factor, known["ticker_index"], known["split_to"] / known["split_from"])
        return factor

    def build_grouped(self, index: int, adjusted: bool, include_otc: bool) -> bytes:
        rows, columns = self.grouped_rows(index, adjusted, include_otc)
        matrix, lengths = self.labels
        table = [*((key, columns[name]) for key, name in _BAR_KEYS), ("n", columns["trades"])]
        end = b',"t":%d' % int(self.market.session_end_ms[index])  # the same for every row of the day
        otc = self.market.ref["market"][rows] == "otc"
        parts = []
        for group, tail in ((~otc, end), (otc, end + b',"otc":true')):
            if group.any():
                picked = rows[group]
                parts.append(
                    rows_json(
                        [(key, values[group]) for key, values in table], ("T", matrix[picked], lengths[picked]), tail
                    )
                )
        count = len(rows)
        head = b'{"queryCount":%d,"resultsCount":%d,"adjusted":%s,"results":[' % (
            count,
            count,
            b"true" if adjusted else b"false",
        )
        return b"".join((head, b",".join(parts), b'],"status":"OK"}'))

    # -- per-ticker aggregates -------------------------------------------------------------------
    def aggs(
        self,
        ticker: str,
        multiplier: str,
        timespan: str,
        start: str,
        end: str,
        params: Mapping[str, str],
        base_url: str,
        results_null: bool = False,
    ) -> bytes:
        state = dict(params)
        if params.get("cursor"):
            state = {**_decode_cursor(params["cursor"]), **{k: v for k, v in params.items() if k != "cursor"}}
            state = {k: str(v) for k, v in state.items()}
        if timespan != "day" or multiplier != "1":
            raise bad_request(f"Unsupported aggregate window {multiplier}/{timespan}: only 1/day is served.")
        adjusted = _bool_param(state, "adjusted", True)
        sort = state.get("sort", "asc") or "asc"
        if sort not in ("asc", "desc"):
            raise bad_request("Invalid value for 'sort': must be asc or desc.")
        limit = _int_param(state, "limit", AGGS_DEFAULT_LIMIT)
        if limit < 1:
            raise bad_request("Invalid value for 'limit': must be a positive integer.")
        limit = min(limit, AGGS_MAX_LIMIT)
        lo, hi = _bound_ms(start, "from", end=False), _bound_ms(end, "to", end=True)
        m = self.market
        i = m.ticker_index(ticker)
        body: dict[str, Any] = {"ticker": ticker, "queryCount": 0, "resultsCount": 0, "adjusted": adjusted}
        window = np.zeros(0, dtype=np.int64)
        if i is not None:
            starts = m.session_start_ms[: m.today_index + 1]
            window = np.flatnonzero((starts >= lo) & (starts <= hi))
            window = window[np.isfinite(m.close[window, i])]
        if sort == "desc":
            window = window[::-1]
        page, rest = window[:limit], window[limit:]
        if len(page) == 0:
            if results_null:
                body["results"] = None
            body.update(status="OK", count=0)
            return orjson.dumps(body)
        assert i is not None
        factor = self._ticker_factor(i)[page] if adjusted else np.ones(len(page))
        columns = [
            (key, getattr(m, name)[page, i] * factor if name == "volume" else getattr(m, name)[page, i] / factor)
            for key, name in _BAR_KEYS
        ]
        columns += [("t", m.session_start_ms[page].astype(np.float64)), ("n", m.trades[page, i])]
        body.update(
            queryCount=len(window),
            resultsCount=len(page),
            results=orjson.Fragment(b"[" + rows_json(columns) + b"]"),
            status="OK",
            count=len(page),
        )
        if len(rest):
            nxt = int(m.session_start_ms[rest[0]])
            cursor = _encode_cursor({"adjusted": str(adjusted).lower(), "sort": sort, "limit": limit})
            path_from, path_to = (nxt, end) if sort == "asc" else (start, nxt)
            body["next_url"] = (
                f"{base_url}/v2/aggs/ticker/{ticker}/range/{multiplier}/{timespan}/"
                f"{path_from}/{path_to}?cursor={cursor}"
            )
        return orjson.dumps(body)

    def _ticker_factor(self, i: int) -> np.ndarray:
        """Per-session divisor adjusting ticker ``i`` for splits known today."""
        m = self.market
        own = m.splits[(m.splits["ticker_index"] == i) & (m.splits["session_index"] <= m.today_index)]
        factor = np.ones(len(m.sessions))
        for split in own:
            factor[: int(split["session_index"])] *= split["split_to"] / split["split_from"]
        return factor

    # -- reference: tickers ----------------------------------------------------------------------
    def tickers(self, params: Mapping[str, str], base_url: str) -> bytes:
        state, offset, limit = _page_state(params, TICKERS_DEFAULT_LIMIT, TICKERS_MAX_LIMIT)
        order = state.get("order", "asc") or "asc"
        if order not in ("asc", "desc"):
            raise bad_request("Invalid value for 'order': must be asc or desc.")
        m = self.market
        keep = self._listed
        active = _bool_param(state, "active", True)
        keep = keep[m.ref["active"][keep] == active]
        if state.get("market"):
            keep = keep[m.ref["market"][keep] == state["market"]]
        if state.get("type"):
            keep = keep[m.ref["type"][keep] == state["type"]]
        if state.get("exchange"):
            keep = keep[m.ref["exchange"][keep] == state["exchange"]]
        if state.get("ticker"):
            keep = keep[m.tickers[keep] == state["ticker"]]
        if order == "desc":
            keep = keep[::-1]
        page = keep[offset : offset + limit]
        stamp = f"{m.today.isoformat()}T00:00:00Z"
        body: dict[str, Any] = {
            "results": [self._ticker_record(int(i), stamp) for i in page],
            "status": "OK",
            "count": len(page),
        }
        if offset + limit < len(keep):
            body["next_url"] = _next_page_url(f"{base_url}/v3/reference/tickers", state, offset + limit)
        return orjson.dumps(body)

    # -- reference: ticker details ---------------------------------------------------------------
    def ticker_details(self, ticker: str, params: Mapping[str, str]) -> bytes:
        m = self.market
        i = m.ticker_index(ticker)
        as_of = m.today_index
        if params.get("date"):
            day = _parse_date(params["date"], "date")
            as_of = min(int(np.searchsorted(m.sessions, np.datetime64(day, "D"), side="right")) - 1, m.today_index)
        if i is None or as_of < 0 or m.ref["list_index"][i] > as_of:
            raise ApiError(404, {"status": "NOT_FOUND", "message": "Ticker not found."})
        delist = int(m.ref["delist_index"][i])
        active = delist < 0 or delist > as_of
        kind = str(m.ref["type"][i])
        results: dict[str, Any] = {
            "ticker": ticker,
            "name": str(m.ref["name"][i]),
            "market": str(m.ref["market"][i]),
            "locale": "us",
            "primary_exchange": str(m.ref["exchange"][i]),
            "type": kind,
            "active": active,
            "currency_name": "usd",
            "composite_figi": str(m.ref["composite_figi"][i]),
            "list_date": str(m.ref["list_date"][i]),
            "round_lot": 100,
        }
        if not active:
            results["delisted_utc"] = f"{m.session_date(delist).isoformat()}T00:00:00Z"
        if kind != "ETF":
            later = m.splits[(m.splits["ticker_index"] == i) & (m.splits["session_index"] > as_of)]
            shares = round(float(m.ref["shares_adjusted"][i] / np.prod(later["split_to"] / later["split_from"])))
            closes = m.close[: as_of + 1, i]
            seen = np.flatnonzero(np.isfinite(closes))
            results["cik"] = str(m.ref["cik"][i])
            results["share_class_shares_outstanding"] = shares
            results["weighted_shares_outstanding"] = shares
            if len(seen):
                results["market_cap"] = round(shares * float(closes[seen[-1]]), 2)
            if m.ref["sic_code"][i] > 0:
                results["sic_code"] = str(int(m.ref["sic_code"][i]))
                results["sic_description"] = str(m.ref["sic_description"][i])
                results["description"] = f"{results['name']} operates in {results['sic_description'].lower()}."
        return orjson.dumps({"results": results, "status": "OK"})

    # -- reference: splits -----------------------------------------------------------------------
    def splits(self, params: Mapping[str, str], base_url: str) -> bytes:
        state, offset, limit = _page_state(params, SPLITS_DEFAULT_LIMIT, SPLITS_MAX_LIMIT)
        m = self.market
        known = m.splits[m.splits["session_index"] <= m.today_index]
        dates = m.sessions[known["session_index"]]
        names = m.tickers[known["ticker_index"]]
        keep = np.ones(len(known), dtype=bool)
        if state.get("ticker"):
            keep &= names == state["ticker"]
        if state.get("reverse_split"):
            reverse = known["split_from"] > known["split_to"]
            keep &= reverse if _bool_param(state, "reverse_split", False) else ~reverse
        for suffix, compare in (
            ("", np.equal),
            (".gte", np.greater_equal),
            (".gt", np.greater),
            (".lte", np.less_equal),
            (".lt", np.less),
        ):
            value = state.get(f"execution_date{suffix}")
            if value:
                keep &= compare(dates, np.datetime64(_parse_date(value, f"execution_date{suffix}"), "D"))
        sort = state.get("sort", "execution_date") or "execution_date"
        if sort not in ("execution_date", "ticker"):
            raise bad_request("Invalid value for 'sort': must be execution_date or ticker.")
        order = state.get("order", "desc" if sort == "execution_date" else "asc") or "asc"
        if order not in ("asc", "desc"):
            raise bad_request("Invalid value for 'order': must be asc or desc.")
        selected = np.flatnonzero(keep)
        primary = dates[selected] if sort == "execution_date" else names[selected]
        secondary = names[selected] if sort == "execution_date" else dates[selected]
        selected = selected[np.lexsort((secondary, primary))]
        if order == "desc":
            selected = selected[::-1]
        page = selected[offset : offset + limit]
        results = [
            {
                "execution_date": str(dates[j]),
                "split_from": _number(known["split_from"][j]),
                "split_to": _number(known["split_to"][j]),
                "ticker": str(names[j]),
                "id": "E" + hashlib.sha1(f"{names[j]}:{dates[j]}".encode()).hexdigest()[:32],
            }
            for j in page
        ]
        body: dict[str, Any] = {"results": results, "status": "OK"}
        if offset + limit < len(selected):
            body["next_url"] = _next_page_url(
                f"{base_url}/v3/reference/splits", {**state, "sort": sort, "order": order}, offset + limit
            )
        return orjson.dumps(body)
