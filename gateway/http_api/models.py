"""Request and error bodies of the HTTP API, the JSON response class and the orchestrator it needs."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Mapping
from typing import Annotated, Any, Literal, Protocol

import orjson
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator, model_validator

from gateway.orchestrator import Progress
from gateway.validation import (
    MAX_LIMIT,
    MAX_LOOKBACK,
    MAX_SECTORS,
    MAX_SYMBOLS,
    MAX_UNIVERSE,
    MIN_LOOKBACK,
    OPTIONS_MODES,
    RANGE_COLUMNS,
    SIGNALS,
    SORT_COLUMNS,
    TICKER_RE,
    TRADE_STYLES,
)
from services.contract.sectors import SECTORS
from services.contract.vocabulary import SECTOR_ALIASES, STYLE_ALIASES, canonical_sector, canonical_style
from technic.v1 import scan_pb2, scanner_pb2

# Offsets travel as int32 in the protos: a larger one is refused as invalid, not overflowed into a 500.
MAX_OFFSET = 2**31 - 1

Ticker = Annotated[str, StringConstraints(strip_whitespace=True, pattern=TICKER_RE.pattern)]
Sector = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
SignalName = Literal["Strong Long", "Long", "Neutral", "Avoid", "Short", "Strong Short"]
assert set(SignalName.__args__) == set(SIGNALS)  # type: ignore[attr-defined]


class ScanOrchestrator(Protocol):
    """What the HTTP API needs from the orchestrator (tests substitute a double)."""

    def scan(
        self, options: scan_pb2.ScanOptions, *, refresh: bool = False, scan_id: str = ""
    ) -> AsyncIterator[Progress | scan_pb2.ScanResult]: ...
    async def get_scan(self, request: scanner_pb2.GetScanRequest) -> scan_pb2.ScanResult: ...
    async def symbol(self, symbol: str, days: int = 90) -> scanner_pb2.SymbolDetail: ...
    async def symbol_page(self, symbol: str, days: int = 90) -> tuple[bytes, str]: ...
    async def universe_stats(self) -> scanner_pb2.UniverseStats: ...
    async def health(self) -> dict[str, dict[str, str]]: ...
    @property
    def versions(self) -> tuple[str, dict[str, str]]: ...
    @property
    def generation(self) -> int: ...
    def fresh_as_of(self) -> str: ...


class OrjsonResponse(JSONResponse):
    """JSON through orjson (NaN becomes null, which the app reads as 'not computed')."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)


APP_RATING_SCALE = 10.0


def known_style(value: str) -> str:
    """The style's display name for ``value`` (a name or an alias); ValueError listing them."""
    name = canonical_style(value)
    if name is None:
        raise ValueError(
            f"unknown trade style; one of {', '.join(TRADE_STYLES)} "
            f"(or {', '.join(sorted(set(STYLE_ALIASES) - {s.lower() for s in TRADE_STYLES}))})"
        )
    return name


def known_sectors(values: list[str] | None) -> list[str] | None:
    """The GICS names of ``values`` (names or aliases); ValueError naming the unknown one."""
    if values is None:
        return None
    out = []
    for value in values:
        name = canonical_sector(value)
        if name is None:
            raise ValueError(
                f"unknown sector {value[:60]!r}; one of {', '.join(SECTORS)} "
                f"(or {', '.join(sorted(set(SECTOR_ALIASES) - {s.lower() for s in SECTORS}))})"
            )
        out.append(name)
    return out


class RangeBody(BaseModel):
    """Keep rows whose ``column`` lies within [min, max] (either bound optional)."""

    column: str = Field(description="a numeric ScanRow column or a feature name")
    min: float | None = Field(default=None, allow_inf_nan=False)
    max: float | None = Field(default=None, allow_inf_nan=False)

    @field_validator("column")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in RANGE_COLUMNS:
            raise ValueError("unknown range column; a numeric ScanRow column or a feature name")
        return value


class ScanBody(BaseModel):
    """POST /v1/scan and /v1/scans. The first seven fields are the app's; the rest are extras.

    ``trade_style`` and ``sectors`` accept the app's words (``Swing``, ``Technology``, ...);
    ``min_tech_rating`` is the app's 0-10 slider (times 10 on the 0-100 TechRating scale) and
    ``min_rating`` the same floor on the 0-100 scale (the gRPC field); give at most one.
    """

    model_config = ConfigDict(extra="ignore")

    universe: list[Ticker] | None = Field(default=None, max_length=MAX_UNIVERSE, description="scan only these tickers")
    max_symbols: int | None = Field(
        default=None,
        ge=1,
        le=MAX_SYMBOLS,
        description=f"cap after the prefilter, 1 to {MAX_SYMBOLS} (absent: the gateway's default, 6000)",
    )
    trade_style: str = Field(
        default="Short-term swing",
        max_length=40,
        description="Day, Short-term swing, Medium-term swing, Position, or an alias (Swing)",
    )
    min_tech_rating: float = Field(
        default=0.0,
        ge=0,
        le=APP_RATING_SCALE,
        allow_inf_nan=False,
        description="the app's 0-10 rating floor (5 means TechRating >= 50)",
    )
    min_rating: float | None = Field(
        default=None, ge=0, le=100, allow_inf_nan=False, description="the rating floor on TechRating's 0-100 scale"
    )
    sectors: list[Sector] | None = Field(default=None, max_length=MAX_SECTORS, description="GICS sectors or aliases")
    lookback_days: int | None = Field(
        default=None,
        ge=MIN_LOOKBACK,
        le=MAX_LOOKBACK,
        description="sessions of history; at least the features' warm-up is fetched",
    )
    options_mode: Literal["stock_only", "stock_plus_options"] = "stock_only"
    signals: list[SignalName] | None = Field(default=None, max_length=len(SIGNALS))
    min_price: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    min_dollar_volume: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    include_etfs: bool = False
    as_of: dt.date | None = None
    ranges: list[RangeBody] | None = Field(default=None, max_length=64)
    limit: int = Field(default=100, ge=1, le=MAX_LIMIT, description="rows in the response")
    offset: int = Field(default=0, ge=0, le=MAX_OFFSET)
    sort_by: str | None = Field(default=None, description="a ScanRow column or a feature name")
    ascending: bool = False
    refresh: bool = Field(default=False, description="ignore a cached ranking (needs an API key)")

    @field_validator("trade_style")
    @classmethod
    def _known_style(cls, value: str) -> str:
        return known_style(value)

    @field_validator("sectors")
    @classmethod
    def _known_sectors(cls, value: list[str] | None) -> list[str] | None:
        return known_sectors(value)

    @field_validator("sort_by")
    @classmethod
    def _known_column(cls, value: str | None) -> str | None:
        if value is not None and value not in SORT_COLUMNS:
            raise ValueError("unknown sort column; sort by a ScanRow column or a feature name")
        return value

    @model_validator(mode="after")
    def _one_rating_scale(self) -> ScanBody:
        if self.min_rating is not None and self.min_tech_rating:
            raise ValueError("give min_tech_rating (0-10) or min_rating (0-100), not both")
        return self

    @property
    def rating_floor(self) -> float:
        """The floor on the 0-100 TechRating scale."""
        return self.min_rating if self.min_rating is not None else self.min_tech_rating * APP_RATING_SCALE

    def to_options(self) -> scan_pb2.ScanOptions:
        options = scan_pb2.ScanOptions(
            universe=self.universe or [],
            max_symbols=self.max_symbols or 0,
            trade_style=TRADE_STYLES[self.trade_style],
            min_tech_rating=self.rating_floor,
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
            ranges=[scan_pb2.RangeFilter(column=r.column, min=r.min, max=r.max) for r in self.ranges or []],
        )
        if self.min_price is not None:
            options.min_price = self.min_price
        if self.min_dollar_volume is not None:
            options.min_dollar_volume = self.min_dollar_volume
        return options


class ScanQuery(BaseModel):
    """GET /v1/scan: the app's filters as query strings (``sector`` comma-separated)."""

    model_config = ConfigDict(extra="ignore")

    trade_style: str = Field(default="Short-term swing", max_length=40)
    sector: str | None = Field(default=None, max_length=2000, description="comma-separated sectors or aliases")
    min_tech_rating: float = Field(default=0.0, ge=0, le=APP_RATING_SCALE, allow_inf_nan=False)
    min_rating: float | None = Field(default=None, ge=0, le=100, allow_inf_nan=False)
    lookback_days: int | None = Field(default=None, ge=MIN_LOOKBACK, le=MAX_LOOKBACK)
    options_mode: Literal["stock_only", "stock_plus_options"] = "stock_only"
    max_symbols: int | None = Field(default=None, ge=1, le=MAX_SYMBOLS)
    limit: int = Field(default=100, ge=1, le=MAX_LIMIT)

    @field_validator("trade_style")
    @classmethod
    def _known_style(cls, value: str) -> str:
        return known_style(value)

    @field_validator("sector")
    @classmethod
    def _sector_list(cls, value: str | None) -> str | None:
        if value is not None:
            known_sectors([v for v in value.split(",") if v.strip()])
        return value

    def to_body(self) -> ScanBody:
        """The equivalent body; a combination the body refuses is a 422 naming the query field."""
        sectors = [v.strip() for v in (self.sector or "").split(",") if v.strip()] or None
        try:
            return ScanBody(
                trade_style=self.trade_style,
                sectors=sectors,
                min_tech_rating=self.min_tech_rating,
                min_rating=self.min_rating,
                lookback_days=self.lookback_days,
                options_mode=self.options_mode,
                max_symbols=self.max_symbols,
                limit=self.limit,
            )
        except ValidationError as exc:
            raise RequestValidationError(
                [{**e, "loc": ("query", *e.get("loc", ())), "ctx": None} for e in exc.errors()]
            ) from None


class CopilotBody(BaseModel):
    """POST /v1/copilot: the app's question, optionally about one symbol."""

    model_config = ConfigDict(extra="ignore")

    question: str = Field(min_length=1, max_length=2000)
    symbol: Ticker | None = None
    options_mode: Literal["stock_only", "stock_plus_options"] | None = None


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


def error_response(status: int, error: str, detail: Any, headers: Mapping[str, str] | None = None) -> OrjsonResponse:
    """An error answer in the shape of :class:`ErrorBody`."""
    return OrjsonResponse({"error": error, "detail": detail}, status_code=status, headers=headers)
