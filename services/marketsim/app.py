"""The simulator's ASGI app: Polygon routes (auth, fault injection, request statistics) and admin routes.

Polygon routes answer with bytes built by :class:`~services.marketsim.polygon.PolygonApi` (bars and
reference data), :class:`~services.marketsim.options.OptionsApi` (option chain snapshots) and
:class:`~services.marketsim.fundamentals.FundamentalsApi` (financials, dividends); this
module only adds what every answer shares: the API key check (``apiKey`` query parameter or
``Authorization: Bearer``), a fresh ``request_id``, injected faults, and per-endpoint counts.
Admin routes (no key; the simulator binds to loopback) steer tests and benchmarks:

* ``GET|POST /admin/faults``: read or set fault knobs (JSON object, see faults.py).
* ``POST /admin/advance``: "today" moves forward one session (``{"sessions": n}`` for more).
* ``POST /admin/reset``: initial knobs, today and statistics (cached days stay valid: they key on today).
* ``GET /admin/stats``: request counts per endpoint, status and injected fault.
* ``GET /admin/oracle_ic?start=&end=&horizon=``: the planted signal's oracle IC.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
import structlog
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from services.marketsim.faults import Decision, FaultDice, FaultError, Faults
from services.marketsim.fundamentals import FundamentalsApi
from services.marketsim.market import Market
from services.marketsim.options import OptionsApi
from services.marketsim.polygon import ApiError, GroupedKey, PolygonApi

log = structlog.get_logger(__name__)

JSON = "application/json"
DRIP_PIECES = 20
_ERRORS = {
    429: "You've exceeded the maximum requests per minute, please wait or upgrade your subscription to continue.",
    500: "Internal server error.",
    502: "Bad gateway.",
    503: "Service temporarily unavailable.",
    504: "Gateway timeout.",
}
_NOT_AUTHORIZED = "You are not entitled to this data. Please upgrade your plan at https://polygon.io/pricing"

Handler = Callable[[Request, Decision], Awaitable[bytes]]


def _json(payload: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type=JSON)


def _with_request_id(payload: bytes, request_id: str) -> bytes:
    """Prepend ``"request_id"`` to a JSON object body without re-serialising it."""
    return b'{"request_id":"' + request_id.encode() + (b'",' if len(payload) > 2 else b'"') + payload[1:]


class Simulator:
    """State shared by the routes: the market, its Polygon answers, fault knobs and statistics."""

    def __init__(
        self, market: Market, api_key: str, initial_faults: dict[str, Any], fault_seed: int, cache_bytes: int
    ) -> None:
        self.market = market
        self.api = PolygonApi(market, cache_bytes)
        self.options = OptionsApi(market)
        self.fundamentals = FundamentalsApi(market)
        self.api_key = api_key
        self.initial_faults = dict(initial_faults)
        self.fault_seed = fault_seed
        self.faults = Faults()
        self.faults.update(self.initial_faults)
        self.dice = FaultDice(self.faults, fault_seed)
        self.requests: Counter[str] = Counter()
        self.statuses: Counter[str] = Counter()
        self.injected: Counter[str] = Counter()

    def reset(self) -> None:
        self.faults = Faults()
        self.faults.update(self.initial_faults)
        self.dice = FaultDice(self.faults, self.fault_seed)
        self.requests.clear()
        self.statuses.clear()
        self.injected.clear()
        self.market.reset()
        self.api.today_changed()

    # -- auth ------------------------------------------------------------------------------------
    def auth_error(self, request: Request) -> ApiError | None:
        key = request.query_params.get("apiKey")
        header = request.headers.get("authorization", "")
        if not key and header[:7].lower() == "bearer ":
            key = header[7:].strip()
        if not key:
            return ApiError(401, {"status": "ERROR", "error": "API Key was not provided"})
        if key != self.api_key:
            return ApiError(401, {"status": "ERROR", "error": "Unknown API Key"})
        return None

    # -- one Polygon request ---------------------------------------------------------------------
    async def answer(self, request: Request, endpoint: str, handler: Handler) -> Response:
        self.requests[endpoint] += 1
        decision = self.dice.roll()
        if decision.delay_s > 0:
            await asyncio.sleep(decision.delay_s)
        request_id = uuid.uuid4().hex
        headers: dict[str, str] = {}
        error = self.auth_error(request) or self._injected_error(decision, headers)
        if error is None:
            try:
                payload = await handler(request, decision)
            except ApiError as exc:
                error = exc
        if error is not None:
            self.statuses[str(error.status)] += 1
            body = _with_request_id(orjson.dumps(error.body), request_id)
            return Response(body, status_code=error.status, media_type=JSON, headers=headers)
        self.statuses["200"] += 1
        body = _with_request_id(payload, request_id)
        if decision.malformed:
            self.injected["malformed"] += 1
            cut = self.dice.cut_point(len(body))
            body = body[:cut] + b"\x00" + body[cut:]
        elif decision.truncated:
            self.injected["truncated"] += 1
            body = body[: self.dice.cut_point(len(body))]
        if decision.drip_seconds > 0:
            self.injected["drip"] += 1
            headers["content-length"] = str(len(body))
            return StreamingResponse(_drip(body, decision.drip_seconds), media_type=JSON, headers=headers)
        return Response(body, media_type=JSON)

    def _injected_error(self, decision: Decision, headers: dict[str, str]) -> ApiError | None:
        if decision.status == 200:
            return None
        self.injected[str(decision.status)] += 1
        if decision.status in (401, 403):
            return (
                ApiError(401, {"status": "ERROR", "error": "Unknown API Key"})
                if decision.status == 401
                else ApiError(403, {"status": "NOT_AUTHORIZED", "message": _NOT_AUTHORIZED})
            )
        if decision.retry_after is not None:
            headers["Retry-After"] = str(decision.retry_after)
        return ApiError(decision.status, {"status": "ERROR", "error": _ERRORS[decision.status]})

    def stats(self) -> dict[str, Any]:
        return {
            "requests": dict(self.requests),
            "total": sum(self.requests.values()),
            "statuses": dict(self.statuses),
            "faults": dict(self.injected),
            "today": self.market.today.isoformat(),
            "cached_bytes": self.api.cache.size,
        }


async def _drip(body: bytes, seconds: float) -> AsyncIterator[bytes]:
    piece = max(1, -(-len(body) // DRIP_PIECES))
    for start in range(0, len(body), piece):
        if start:
            await asyncio.sleep(seconds / DRIP_PIECES)
        yield body[start : start + piece]


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def create_app(sim: Simulator) -> Starlette:
    """The ASGI app over one :class:`Simulator`."""
    api = sim.api

    def polygon(endpoint: str, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def route(request: Request) -> Response:
            return await sim.answer(request, endpoint, handler)

        return route

    building: dict[GroupedKey, asyncio.Future[bytes]] = {}

    async def grouped(request: Request, decision: Decision) -> bytes:
        key = api.grouped_lookup(request.path_params["date"], request.query_params, decision.results_null)
        if isinstance(key, bytes):
            return key
        # A day not cached yet is built off the event loop, once however many ask for it meanwhile.
        future = building.get(key)
        if future is None:
            future = building[key] = asyncio.ensure_future(asyncio.to_thread(api.build_and_cache, key))
            future.add_done_callback(lambda _: building.pop(key, None))
        return await asyncio.shield(future)

    async def aggs(request: Request, decision: Decision) -> bytes:
        p = request.path_params
        return api.aggs(
            p["ticker"],
            p["multiplier"],
            p["timespan"],
            p["start"],
            p["end"],
            request.query_params,
            _base_url(request),
            decision.results_null,
        )

    async def tickers(request: Request, decision: Decision) -> bytes:
        return api.tickers(request.query_params, _base_url(request))

    async def details(request: Request, decision: Decision) -> bytes:
        return api.ticker_details(request.path_params["ticker"], request.query_params)

    async def splits(request: Request, decision: Decision) -> bytes:
        return api.splits(request.query_params, _base_url(request))

    async def option_chain(request: Request, decision: Decision) -> bytes:
        return await asyncio.to_thread(
            sim.options.snapshot, request.path_params["underlying"], request.query_params, _base_url(request)
        )

    async def financials(request: Request, decision: Decision) -> bytes:
        return sim.fundamentals.financials(request.query_params, _base_url(request))

    async def dividends_v3(request: Request, decision: Decision) -> bytes:
        return await asyncio.to_thread(sim.fundamentals.dividends_v3, request.query_params, _base_url(request))

    async def dividends_v1(request: Request, decision: Decision) -> bytes:
        return await asyncio.to_thread(sim.fundamentals.dividends_v1, request.query_params, _base_url(request))

    async def not_found(request: Request, decision: Decision) -> bytes:
        raise ApiError(404, {"status": "NOT_FOUND", "message": "Not found."})

    async def health(request: Request) -> Response:
        m = sim.market
        return _json(
            {"status": "ok", "today": m.today.isoformat(), "tickers": int(m.ref["active"].sum()), "warmed": api.warmed}
        )

    async def faults(request: Request) -> Response:
        if request.method == "POST":
            try:
                knobs = orjson.loads(await request.body() or b"{}")
                if not isinstance(knobs, dict):
                    raise FaultError("the body must be a JSON object of knobs")
                sim.faults.update(knobs)
            except (FaultError, orjson.JSONDecodeError) as exc:
                return _json({"error": str(exc)}, 400)
            log.info("fault knobs set", **knobs)
        return _json(sim.faults.as_dict())

    async def advance(request: Request) -> Response:
        body = orjson.loads(await request.body() or b"{}")
        sessions = int(body.get("sessions", 1)) if isinstance(body, dict) else 1
        try:
            sim.market.advance(sessions)
        except ValueError as exc:
            return _json({"error": str(exc)}, 409)
        api.today_changed()
        log.info("today advanced", today=sim.market.today.isoformat())
        return _json({"today": sim.market.today.isoformat(), "today_index": sim.market.today_index})

    async def reset(request: Request) -> Response:
        sim.reset()
        return _json({"today": sim.market.today.isoformat(), "faults": sim.faults.as_dict()})

    async def stats(request: Request) -> Response:
        return _json(sim.stats())

    async def oracle_ic(request: Request) -> Response:
        m = sim.market
        q = request.query_params
        try:
            start = dt.date.fromisoformat(q.get("start") or m.session_date(0).isoformat())
            end = dt.date.fromisoformat(q.get("end") or m.today.isoformat())
            horizon = int(q.get("horizon") or 5)
        except ValueError as exc:
            return _json({"error": f"bad query: {exc}"}, 400)
        ic = await asyncio.to_thread(m.oracle_ic, start, end, horizon)
        return _json(
            {"start": start.isoformat(), "end": end.isoformat(), "horizon": horizon, "ic": None if ic != ic else ic}
        )

    routes = [
        Route("/health", health),
        Route("/v2/aggs/grouped/locale/us/market/stocks/{date}", polygon("grouped", grouped)),
        Route("/v2/aggs/ticker/{ticker}/range/{multiplier}/{timespan}/{start}/{end}", polygon("aggs", aggs)),
        Route("/v3/reference/tickers", polygon("tickers", tickers)),
        Route("/v3/reference/tickers/{ticker}", polygon("ticker_details", details)),
        Route("/v3/reference/splits", polygon("splits", splits)),
        Route("/v3/snapshot/options/{underlying}", polygon("options_chain", option_chain)),
        Route("/vX/reference/financials", polygon("financials", financials)),
        Route("/v3/reference/dividends", polygon("dividends", dividends_v3)),
        Route("/stocks/v1/dividends", polygon("dividends_v1", dividends_v1)),
        Route("/admin/faults", faults, methods=["GET", "POST"]),
        Route("/admin/advance", advance, methods=["POST"]),
        Route("/admin/reset", reset, methods=["POST"]),
        Route("/admin/stats", stats),
        Route("/admin/oracle_ic", oracle_ic),
        Route("/{path:path}", polygon("not_found", not_found)),
    ]
    return Starlette(routes=routes)
