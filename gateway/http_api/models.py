"""Request and error bodies of the HTTP API, the JSON response class and the orchestrator it needs."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal, Protocol

import orjson
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from gateway.orchestrator import Progress
from gateway.validation import (
    MAX_LIMIT,
    MAX_LOOKBACK,
    MAX_SECTORS,
    MAX_SYMBOLS,
    MAX_UNIVERSE,
    MIN_LOOKBACK,
    OPTIONS_MODES,
    SIGNALS,
    SORT_COLUMNS,
    TICKER_RE,
    TRADE_STYLES,
)
from technic.v1 import scan_pb2, scanner_pb2

# Offsets travel as int32 in the protos: a larger one is refused as invalid, not overflowed into a 500.
MAX_OFFSET = 2**31 - 1

Ticker = Annotated[str, StringConstraints(strip_whitespace=True, pattern=TICKER_RE.pattern)]
Sector = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
TradeStyleName = Literal["Day", "Short-term swing", "Medium-term swing", "Position"]
SignalName = Literal["Strong Long", "Long", "Neutral", "Avoid", "Short", "Strong Short"]
assert set(TradeStyleName.__args__) == set(TRADE_STYLES) and set(SignalName.__args__) == set(SIGNALS)  # type: ignore[attr-defined]


class ScanOrchestrator(Protocol):
    """What the HTTP API needs from the orchestrator (tests substitute a double)."""

    def scan(
        self, options: scan_pb2.ScanOptions, *, refresh: bool = False, scan_id: str = ""
    ) -> AsyncIterator[Progress | scan_pb2.ScanResult]: ...
    async def get_scan(self, request: scanner_pb2.GetScanRequest) -> scan_pb2.ScanResult: ...
    async def symbol(self, symbol: str, days: int = 90) -> scanner_pb2.SymbolDetail: ...
    async def universe_stats(self) -> scanner_pb2.UniverseStats: ...
    async def health(self) -> dict[str, dict[str, str]]: ...
    @property
    def versions(self) -> tuple[str, dict[str, str]]: ...


class OrjsonResponse(JSONResponse):
    """JSON through orjson (NaN becomes null, which the app reads as 'not computed')."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)


class ScanBody(BaseModel):
    """POST /v1/scan and /v1/scans. The first seven fields are the app's; the rest are extras."""

    model_config = ConfigDict(extra="ignore")

    universe: list[Ticker] | None = Field(None, max_length=MAX_UNIVERSE, description="scan only these tickers")
    max_symbols: int | None = Field(None, ge=1, le=MAX_SYMBOLS, description="cap after the prefilter (6000)")
    trade_style: TradeStyleName = "Short-term swing"
    min_tech_rating: float = Field(0.0, ge=0, le=100, allow_inf_nan=False)
    sectors: list[Sector] | None = Field(None, max_length=MAX_SECTORS)
    lookback_days: int | None = Field(None, ge=MIN_LOOKBACK, le=MAX_LOOKBACK)
    options_mode: Literal["stock_only", "stock_plus_options"] = "stock_only"
    signals: list[SignalName] | None = Field(None, max_length=len(SIGNALS))
    min_price: float | None = Field(None, ge=0, allow_inf_nan=False)
    min_dollar_volume: float | None = Field(None, ge=0, allow_inf_nan=False)
    include_etfs: bool = False
    as_of: dt.date | None = None
    limit: int = Field(100, ge=1, le=MAX_LIMIT, description="rows in the response")
    offset: int = Field(0, ge=0, le=MAX_OFFSET)
    sort_by: str | None = Field(None, description="a ScanRow column or a feature name")
    ascending: bool = False
    refresh: bool = Field(False, description="ignore a cached ranking")

    @field_validator("sort_by")
    @classmethod
    def _known_column(cls, value: str | None) -> str | None:
        if value is not None and value not in SORT_COLUMNS:
            raise ValueError("unknown sort column; sort by a ScanRow column or a feature name")
        return value

    def to_options(self) -> scan_pb2.ScanOptions:
        options = scan_pb2.ScanOptions(
            universe=self.universe or [],
            max_symbols=self.max_symbols or 0,
            trade_style=TRADE_STYLES[self.trade_style],
            min_tech_rating=self.min_tech_rating,
            sectors=self.sectors or [],
            lookback_days=self.lookback_days or 0,
            options_mode=OPTIONS_MODES[self.options_mode],
            signals=self.signals or [],
            include_etfs=self.include_etfs,
            as_of=self.as_of.isoformat() if self.as_of else "",
            limit=self.limit,
            offset=self.offset,
            sort_by=self.sort_by or "",
            ascending=self.ascending,
        )
        if self.min_price is not None:
            options.min_price = self.min_price
        if self.min_dollar_volume is not None:
            options.min_dollar_volume = self.min_dollar_volume
        return options


class ErrorBody(BaseModel):
    """Every error answer: a short machine name and a detail (text, or a list of field problems)."""

    error: str
    detail: Any = None


# Declared on every route, so the published schema describes every answer the API can give.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text}
    for status, text in (
        (401, "missing or invalid X-API-Key"),
        (404, "no such scan or symbol"),
        (409, "the scan is still running or failed"),
        (413, "request body too large"),
        (422, "invalid request: each field and the reason"),
        (429, "request rate limit; see Retry-After"),
        (500, "internal error"),
        (503, "a backend is unavailable"),
    )
}


def error_response(status: int, error: str, detail: Any, headers: dict[str, str] | None = None) -> OrjsonResponse:
    """An error answer in the shape of :class:`ErrorBody`."""
    return OrjsonResponse({"error": error, "detail": detail}, status_code=status, headers=headers)
