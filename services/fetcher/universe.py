"""The universe: reference tickers (cached 24 h) joined with ticker details and the SIC sector map.

Reference tickers cost one request per 1,000 names. Details (market cap, SIC code) cost one request
per ticker, so they are fetched only for the tickers asked for that lack them (the gateway asks for
the prefilter's survivors), concurrently, and merged into a 24 h cache.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import structlog

from services.common.singleflight import SingleFlight
from services.fetcher.polygon import PolygonAuthError, PolygonClient, PolygonError, TickerDetails, counting, run_all
from services.fetcher.request import RequestStats, unique
from services.fetcher.sic import classify_many
from services.fetcher.store import BarStore, Universe

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class UniverseView:
    """The universe (or the part asked for) as columns, plus the tickers asked for that it lacks."""

    symbols: list[str]
    names: list[str]
    types: list[str]
    exchanges: list[str]
    sic_codes: np.ndarray
    sectors: list[str]
    industries: list[str]
    market_caps: np.ndarray
    fetched_unix: int
    not_found: list[str]


class UniverseService:
    def __init__(
        self, client: PolygonClient, store: BarStore, *, now: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self.client = client
        self.store = store
        self.now = now
        # One read (or fetch, with ``refresh``) of the reference tickers at a time, shared.
        self._references: SingleFlight[bool, tuple[Universe, bool]] = SingleFlight()

    async def _reference(self, refresh: bool, stats: RequestStats) -> Universe:
        """The reference tickers, cached or fetched (always fetched with ``refresh``). A request that
        joins another's read or fetch counts a cache hit, as does one served from the cache."""
        started = False

        def load() -> Awaitable[tuple[Universe, bool]]:
            nonlocal started
            started = True
            return self._load_reference(refresh, stats)

        universe, cached = await self._references.run(refresh, load)
        if cached or not started:
            stats.cache_hits += 1
        return universe

    async def _load_reference(self, refresh: bool, stats: RequestStats) -> tuple[Universe, bool]:
        """(reference tickers, whether they came from the cache)."""
        cached = None if refresh else await self.store.get_universe()
        if cached is not None:
            return cached, True
        with stats.phase("fetch"):
            refs = await self.client.reference_tickers()
        seen: dict[str, int] = {}
        for i, ref in enumerate(refs):
            seen.setdefault(ref.ticker, i)
        rows = [refs[i] for i in seen.values()]
        universe = Universe(
            symbols=[r.ticker for r in rows],
            names=[r.name for r in rows],
            types=[r.type for r in rows],
            exchanges=[r.primary_exchange for r in rows],
            fetched_unix=int(self.now().timestamp()),
        )
        await self.store.put_universe(universe)
        log.info("universe fetched", tickers=len(rows))
        return universe, False

    async def _fetch_details(self, tickers: Sequence[str]) -> list[TickerDetails | tuple[str, None]]:
        async def one(ticker: str) -> TickerDetails | tuple[str, None] | None:
            try:
                details = await self.client.ticker_details(ticker)
            except PolygonAuthError:
                raise
            except PolygonError as exc:
                log.warning("ticker details failed", symbol=ticker, error=str(exc))
                return None  # not cached: asked again next time
            return details if details is not None else (ticker, None)

        return [r for r in await run_all(one(t) for t in tickers) if r is not None]

    async def get(
        self, symbols: Sequence[str], *, with_details: bool, refresh: bool, stats: RequestStats
    ) -> UniverseView:
        with counting() as http:
            stats.http = http
            universe = await self._reference(refresh, stats)
            position = {s: i for i, s in enumerate(universe.symbols)}
            asked = unique(symbols)
            picked = [position[s] for s in asked if s in position] if asked else list(range(len(universe.symbols)))
            not_found = [s for s in asked if s not in position]
            chosen = [universe.symbols[i] for i in picked]
            details = await self.store.get_details()
            if with_details:
                known = set(details.tickers)
                lacking = [s for s in chosen if s not in known]
                if lacking:
                    with stats.phase("details"):
                        details = await self.store.add_details(await self._fetch_details(lacking))
                    stats.extra["details_fetched"] = len(lacking)
            detail_row = {t: i for i, t in enumerate(details.tickers)}
            rows = np.array([detail_row.get(s, -1) for s in chosen], dtype=np.int64)
            have = rows >= 0
            sic_codes = np.zeros(len(chosen), dtype=np.int64)
            sic_codes[have] = details.sic_codes[rows[have]]
            market_caps = np.full(len(chosen), np.nan)
            market_caps[have] = details.market_caps[rows[have]]
            sectors, industries = classify_many(sic_codes)
        return UniverseView(
            symbols=chosen,
            names=[universe.names[i] for i in picked],
            types=[universe.types[i] for i in picked],
            exchanges=[universe.exchanges[i] for i in picked],
            sic_codes=sic_codes,
            sectors=sectors,
            industries=industries,
            market_caps=market_caps,
            fetched_unix=universe.fetched_unix,
            not_found=not_found,
        )
