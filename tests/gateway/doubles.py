"""Test data for the gateway's unit tests: a ranked result and an orchestrator double."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator

import numpy as np

from gateway.orchestrator import NotFound, Progress
from services.contract.styles import SUBSCORES
from services.ranker.derived import ICS_TIERS, MERIT_BANDS, RISK_LABELS, derive, flag_names, profile
from technic.v1 import common_pb2, compute_pb2, scan_pb2, scanner_pb2

FEATURES = {"rsi_14": 75.0, "ret_21d": 0.08, "atr_14_pct": 2.5}


def with_derived(row: scan_pb2.ScanRow) -> scan_pb2.ScanRow:
    """``row`` with the ranker's derived scores of its percentile, dollar volume, ATR % and RSI."""
    d = derive(
        np.array([row.percentile]),
        np.array([row.avg_dollar_volume]),
        np.array([row.atr_pct]),
        np.array([row.features.get("rsi_14", math.nan)]),
        np.array([row.last_close]),
        np.array([row.signal]),
        np.array([[row.subscores.get(k, math.nan) for k in SUBSCORES]]),
    )
    row.ics, row.merit_score = float(d.ics[0]), float(d.merit_score[0])
    row.ics_tier = ICS_TIERS[d.ics_tier[0]] if d.ics_tier[0] >= 0 else ""
    row.merit_band = MERIT_BANDS[d.merit_band[0]] if d.merit_band[0] >= 0 else ""
    row.risk_label = RISK_LABELS[d.risk_label[0]] if d.risk_label[0] >= 0 else ""
    del row.merit_flags[:]
    row.merit_flags.extend(flag_names(int(d.merit_flags[0])))
    row.merit_summary = d.summaries([0], np.array([row.percentile]))[0]
    row.ultra_risky = bool(d.ultra_risky[0])
    row.profile, row.profile_label = profile(row.play_style or "Short-term swing", int(d.setup[0]))
    return row


def make_row(rank: int, symbol: str, composite: float) -> scan_pb2.ScanRow:
    return with_derived(
        scan_pb2.ScanRow(
            rank=rank,
            symbol=symbol,
            name=f"{symbol} Corp",
            sector="Technology",
            industry="Software",
            signal="Strong Long" if rank == 1 else "Long",
            tech_rating=80.0 - rank,
            alpha_score=1.5 - rank / 10,
            composite_score=composite,
            percentile=100.0 - rank,
            sector_percentile=90.0,
            win_prob_10d=0.58,
            alpha_5d=0.4,
            alpha_10d=0.5,
            last_close=100.0 + rank,
            change_pct=1.25,
            atr_pct=2.5,
            avg_dollar_volume=1e8,
            market_cap=5e10,
            plan=scan_pb2.TradePlan(
                entry=100.0, stop=95.0, target=110.0, reward_risk=2.0, position_size=200, side="long"
            ),
            subscores={"trend": 70.0, "momentum": 65.0},
            features=FEATURES,
            sparkline=[math.nan, 99.0, 100.5],
            rationale="above a rising 50-day average",
            play_style="Short-term swing",
            explanation=[
                compute_pb2.SymbolExplanation(
                    symbol=symbol,
                    models=[
                        compute_pb2.ModelExplanation(
                            model="alpha_10d",
                            base_value=0.0,
                            prediction=0.5,
                            contributions=[
                                compute_pb2.FeatureContribution(
                                    feature="ret_21d", label="Return 21d", value=0.08, contribution=0.2
                                )
                            ],
                        )
                    ],
                )
            ],
        )
    )


def make_result() -> scan_pb2.ScanResult:
    rows = [make_row(1, "AAA", 0.9), make_row(2, "BBB", 0.8), make_row(3, "CCC", 0.7)]
    return scan_pb2.ScanResult(
        scan_id="s1",
        fingerprint="fp1",
        as_of="2026-11-13",
        rows=rows,
        total_rows=3,
        accounting=common_pb2.Accounting(
            requested=10,
            ranked=3,
            filtered={"prefilter_price": 4, "min_tech_rating": 1},
            skipped={"no_snapshot": 1, "insufficient_history": 1},
        ),
        regime=scan_pb2.MarketRegime(trend="uptrend", volatility="normal", label="uptrend / normal volatility"),
        stage_seconds={"fetch": 0.5, "total": 1.25},
        feature_version="f1",
        model_versions={"alpha_10d": "m1"},
        movers=[
            scan_pb2.Mover(symbol="AAA", change_pct=4.2, note="gap up", sparkline=[1.0, 2.0]),
            scan_pb2.Mover(symbol="ZZZ", change_pct=-3.0, note="", sparkline=[]),
        ],
        trade_style=scan_pb2.TRADE_STYLE_SHORT_TERM_SWING,
    )


class OrchestratorDouble:
    """Answers like the orchestrator from fixed data and records what it was asked."""

    def __init__(self, fail: Exception | None = None) -> None:
        self.result = make_result()
        self.fail = fail
        self.scans: list[scan_pb2.ScanOptions] = []
        self.pages: list[scanner_pb2.GetScanRequest] = []
        self.generation = 0
        self.as_of = "2026-11-13"
        self.symbol_pages: list[tuple[str, int]] = []
        # The market's latest session; ``as_of`` is what the double trusts of it (empty: not trusted).
        self.session = "2026-11-13"

    def fresh_as_of(self) -> str:
        return self.as_of

    async def scan(
        self, options: scan_pb2.ScanOptions, *, refresh: bool = False, scan_id: str = ""
    ) -> AsyncIterator[Progress | scan_pb2.ScanResult]:
        self.scans.append(options)
        yield Progress("universe", 1, 1, 0.01, "10 tickers")
        yield Progress("compute", 3, 5, 0.2)
        if self.fail is not None:
            raise self.fail
        yield self.result

    async def get_scan(self, request: scanner_pb2.GetScanRequest) -> scan_pb2.ScanResult:
        self.pages.append(request)
        rows = sorted(
            self.result.rows,
            key=lambda r: getattr(r, request.sort_by or "composite_score"),
            reverse=not request.ascending,
        )
        page = scan_pb2.ScanResult()
        page.CopyFrom(self.result)
        del page.rows[:]
        page.rows.extend(rows[request.offset : request.offset + (request.limit or 100)])
        return page

    async def symbol(self, symbol: str, days: int = 90) -> scanner_pb2.SymbolDetail:
        if symbol.upper() != "AAA":
            raise NotFound(f"unknown symbol {symbol}")
        return scanner_pb2.SymbolDetail(
            symbol="AAA",
            name="AAA Corp",
            sector="Technology",
            industry="Software",
            market_cap=5e10,
            last_price=101.0,
            change_pct=1.0,
            in_latest_scan=True,
            latest=self.result.rows[0],
            history=[
                scanner_pb2.Bar(date="2026-11-12", open=99, high=101, low=98, close=100, volume=1e6),
                scanner_pb2.Bar(date=self.session, open=100, high=102, low=99, close=101, volume=1.5e6),
            ],
        )

    async def symbol_page(self, symbol: str, days: int = 90) -> tuple[bytes, str]:
        """Like the orchestrator: the session is confirmed (trusted again), then the page made."""
        self.symbol_pages.append((symbol, days))
        self.as_of = self.session
        return (await self.symbol(symbol, days)).SerializeToString(), self.as_of

    async def universe_stats(self) -> scanner_pb2.UniverseStats:
        return scanner_pb2.UniverseStats(
            sectors=[scanner_pb2.SectorCount(name="Technology", count=7)],
            industries=[scanner_pb2.SectorCount(name="Software", count=7)],
            total=10,
            as_of="2026-11-13",
        )

    async def health(self) -> dict[str, dict[str, str]]:
        return {"fetcher": {"target": "f", "status": "SERVING", "redis": "NOT_SERVING"}}

    @property
    def versions(self) -> tuple[str, dict[str, str]]:
        return "f1", {"alpha_10d": "m1"}
