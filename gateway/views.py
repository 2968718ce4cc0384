"""Scan results as people and the Flutter app read them: JSON dicts, CSV, derived scores.

Everything here is a pure function of protobuf messages. The app's keys are the ones its parsers
read, mixed case included (README, HTTP API). Scores the app shows but the cluster does not compute as
such are derived from computed quantities by the formulas below, or are null; never a constant:

- InstitutionalCoreScore / ICS_Tier, merit_score / merit_band / merit_flags / merit_summary and the
  symbol page's risk_score are the ranker's derived scores of each row (services/ranker/derived.py
  documents their formulas); gRPC clients read the same values on ScanRow
- ATR14_pct is a fraction (0.03 for 3 %), the app's unit; atr_pct keeps the percent
- IsUltraRisky, Profile and ProfileLabel are the ranker's too (ScanRow ultra_risky, profile,
  profile_label)
- EventSummary, EventFlags, FundamentalSnapshot: null (the cluster fetches no events or
  fundamentals)
- QualityScore, value and growth scores and fundamentals need company financials the cluster does not
  fetch: null.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping
from typing import Any

from gateway.validation import FEATURE_NAMES, STYLE_NAMES
from services.contract.buckets import GATEWAY_SKIPS, PREFILTER_PREFIX
from technic.v1 import common_pb2, scan_pb2, scanner_pb2

DISCLAIMER = (
    "Technic is a research tool, not investment advice. Ratings and probabilities are model "
    "estimates from past prices and can be wrong; do your own research."
)
IDEAS = 3


def num(value: float | None, digits: int = 4) -> float | None:
    """A JSON-safe float (None for NaN or infinity), rounded for readability."""
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), digits)


def derived_scores(row: scan_pb2.ScanRow) -> dict[str, Any]:
    """ICS, merit and their labels as the ranker computed them with the ranking (None when unknown)."""
    return {
        "ics": num(row.ics, 2),
        "ics_tier": row.ics_tier or None,
        "merit_score": num(row.merit_score, 2),
        "merit_band": row.merit_band or None,
        "merit_flags": ", ".join(row.merit_flags) if row.merit_band else None,
        "merit_summary": row.merit_summary or None,
    }


def sparkline(values: Iterable[float]) -> list[float]:
    return [round(float(v), 4) for v in values if math.isfinite(v)]


def _map(values: Mapping[str, float]) -> dict[str, float | None]:
    return {k: num(v, 6) for k, v in sorted(values.items())}


def explanation(row: scan_pb2.ScanRow) -> list[dict[str, Any]]:
    return [
        {
            "model": m.model,
            "base_value": num(m.base_value, 6),
            "prediction": num(m.prediction, 6),
            "contributions": [
                {
                    "feature": c.feature,
                    "label": c.label,
                    "value": num(c.value, 6),
                    "contribution": num(c.contribution, 6),
                }
                for c in m.contributions
            ],
        }
        for e in row.explanation
        for m in e.models
    ]


def row_to_result(row: scan_pb2.ScanRow) -> dict[str, Any]:
    """One ranked row under the Flutter app's keys, plus the extra keys other clients use."""
    derived = derived_scores(row)
    plan = row.plan
    return {
        "ticker": row.symbol,
        # A row without a signal (its rating is not a number) has none: null, never a label.
        "signal": row.signal or None,
        "rrr": num(plan.reward_risk, 2),
        "entry": num(plan.entry),
        "stop": num(plan.stop),
        "target": num(plan.target),
        "note": row.rationale,
        "sparkline": sparkline(row.sparkline),
        "TechRating": num(row.tech_rating, 2),
        "AlphaScore": num(row.alpha_score),
        "ATR14_pct": num(row.atr_pct / 100.0, 6),
        "Sector": row.sector,
        "Industry": row.industry,
        "PlayStyle": row.play_style,
        "win_prob_10d": num(row.win_prob_10d),
        "InstitutionalCoreScore": derived["ics"],
        "ICS_Tier": derived["ics_tier"],
        "QualityScore": None,
        "merit_score": derived["merit_score"],
        "merit_band": derived["merit_band"],
        "merit_flags": derived["merit_flags"],
        "merit_summary": derived["merit_summary"],
        "option_strategies": [],
        "IsUltraRisky": row.ultra_risky,
        "Profile": row.profile or None,
        "ProfileLabel": row.profile_label or None,
        "EventSummary": None,
        "EventFlags": None,
        "FundamentalSnapshot": None,
        # The same row read as a mover and as an idea (GET /v1/scan serves one list to every parser).
        "delta": f"{row.change_pct:+.1f}%" if math.isfinite(row.change_pct) else None,
        "isPositive": bool(row.change_pct >= 0),
        **{k: v for k, v in _idea(row).items() if k in ("title", "meta", "plan")},
        # Beyond the app's keys.
        "atr_pct": num(row.atr_pct),
        "rank": row.rank,
        "name": row.name,
        "composite_score": num(row.composite_score),
        "percentile": num(row.percentile, 2),
        "sector_percentile": num(row.sector_percentile, 2),
        "rating_percentile": num(row.rating_percentile, 2),
        "alpha_percentile": num(row.alpha_percentile, 2),
        "alpha_5d": num(row.alpha_5d),
        "alpha_10d": num(row.alpha_10d),
        "last_close": num(row.last_close),
        "change_pct": num(row.change_pct),
        "avg_dollar_volume": num(row.avg_dollar_volume, 0),
        "market_cap": num(row.market_cap, 0),
        "side": plan.side,
        "position_size": num(plan.position_size, 2),
        "subscores": _map(row.subscores),
        "features": _map(row.features),
        "explanation": explanation(row),
    }


def accounting(acc: common_pb2.Accounting) -> dict[str, Any]:
    return {
        "requested": acc.requested,
        "ranked": acc.ranked,
        "filtered": dict(sorted(acc.filtered.items())),
        "skipped": dict(sorted(acc.skipped.items())),
        "errored": dict(sorted(acc.errored.items())),
    }


def after_prefilter(acc: common_pb2.Accounting) -> int:
    """Symbols sent to the fetcher: the requested ones minus what the gateway's prefilter removed."""
    removed = sum(v for k, v in acc.filtered.items() if k.startswith(PREFILTER_PREFIX))
    removed += sum(v for k, v in acc.skipped.items() if k in GATEWAY_SKIPS)
    return acc.requested - removed


def symbols_scored(acc: common_pb2.Accounting) -> int:
    """Symbols that were scored: ranked, or removed by a filter applied after scoring."""
    return acc.ranked + sum(v for k, v in acc.filtered.items() if not k.startswith(PREFILTER_PREFIX))


def summary_line(result: scan_pb2.ScanResult) -> str:
    acc = result.accounting
    seconds = result.stage_seconds.get("total", sum(result.stage_seconds.values()))
    line = f"scanned {acc.requested} symbols ({after_prefilter(acc)} after prefilter) in {seconds:.2f} s"
    return line + (" (cached)" if result.cached else "")


def regime(result: scan_pb2.ScanResult) -> dict[str, Any] | None:
    r = result.regime
    if not r.label:
        return None
    return {
        "trend": r.trend,
        "volatility": r.volatility,
        "label": r.label,
        "benchmark_close": num(r.benchmark_close),
        "benchmark_sma_200": num(r.benchmark_sma_200),
        "benchmark_volatility": num(r.benchmark_volatility),
    }


def _idea(row: scan_pb2.ScanRow) -> dict[str, Any]:
    plan = row.plan
    return {
        "title": f"{row.signal or 'No signal'}: {row.symbol}",
        "ticker": row.symbol,
        "meta": f"{row.sector} | TechRating {row.tech_rating:.1f} | win prob {row.win_prob_10d:.0%}",
        "plan": (
            f"Entry {plan.entry:.2f}, stop {plan.stop:.2f}, target {plan.target:.2f} "
            f"(reward/risk {plan.reward_risk:.1f})"
        ),
        "sparkline": sparkline(row.sparkline),
    }


def scan_summary(result: scan_pb2.ScanResult) -> dict[str, Any]:
    """What describes a finished scan apart from its rows."""
    return {
        "scan_id": result.scan_id,
        "fingerprint": result.fingerprint,
        "as_of": result.as_of,
        "cached": result.cached,
        "trade_style": STYLE_NAMES.get(result.trade_style, "Short-term swing"),
        "accounting": accounting(result.accounting),
        "regime": regime(result),
        "total_rows": result.total_rows,
        "stage_seconds": {k: round(v, 4) for k, v in sorted(result.stage_seconds.items())},
        "feature_version": result.feature_version,
        "model_versions": dict(sorted(result.model_versions.items())),
    }


def scan_response(result: scan_pb2.ScanResult) -> dict[str, Any]:
    """The body of POST /v1/scan."""
    rows = list(result.rows)
    longs = [r for r in sorted(rows, key=lambda r: r.rank) if r.signal in ("Strong Long", "Long")]
    return {
        "status": "ok",
        "disclaimer": DISCLAIMER,
        "results": [row_to_result(r) for r in rows],
        "movers": [
            {
                "ticker": m.symbol,
                "delta": f"{m.change_pct:+.1f}%",
                "note": m.note,
                "isPositive": m.change_pct >= 0,
                "sparkline": sparkline(m.sparkline),
            }
            for m in result.movers
        ],
        "ideas": [_idea(r) for r in longs[:IDEAS]],
        "log": summary_line(result),
        "universe_size": result.accounting.requested,
        "symbols_scanned": symbols_scored(result.accounting),
        **scan_summary(result),
    }


def symbol_response(detail: scanner_pb2.SymbolDetail) -> dict[str, Any]:
    """The body of GET /v1/symbol/{ticker}."""
    row = detail.latest if detail.in_latest_scan else None
    derived = derived_scores(row) if row is not None else {}
    return {
        "symbol": detail.symbol,
        "name": detail.name,
        "sector": detail.sector,
        "industry": detail.industry,
        "last_price": num(detail.last_price) if detail.history else None,
        "change_pct": num(detail.change_pct) if len(detail.history) > 1 else None,
        "history": [
            {
                "date": b.date,
                "Open": num(b.open),
                "High": num(b.high),
                "Low": num(b.low),
                "Close": num(b.close),
                "Volume": int(b.volume) if math.isfinite(b.volume) else 0,
            }
            for b in detail.history
        ],
        "tech_rating": num(row.tech_rating, 2) if row else None,
        "alpha_score": num(row.alpha_score) if row else None,
        "win_prob_10d": num(row.win_prob_10d) if row else None,
        "ics": derived.get("ics"),
        "ics_tier": derived.get("ics_tier"),
        "quality_score": None,
        "risk_score": (row.risk_label or None) if row else None,
        "momentum_score": num(row.subscores["momentum"], 2) if row and "momentum" in row.subscores else None,
        "value_score": None,
        "quality_factor": None,
        "growth_score": None,
        "merit_score": derived.get("merit_score"),
        "merit_band": derived.get("merit_band"),
        "merit_flags": derived.get("merit_flags"),
        "merit_summary": derived.get("merit_summary"),
        "fundamentals": {
            "pe": None,
            "eps": None,
            "roe": None,
            "debt_to_equity": None,
            "market_cap": num(detail.market_cap, 0),
        },
        "events": {"next_earnings": None, "days_to_earnings": None, "next_dividend": None, "dividend_amount": None},
        "options_available": False,
        "in_latest_scan": detail.in_latest_scan,
        "scan": row_to_result(row) if row else None,
    }


def universe_response(stats: scanner_pb2.UniverseStats) -> dict[str, Any]:
    """The body of GET /v1/universe_stats."""
    return {
        "sectors": [{"name": s.name, "count": s.count} for s in stats.sectors],
        "subindustries": [{"name": s.name, "count": s.count} for s in stats.industries],
        "total": stats.total,
        "as_of": stats.as_of,
        "last_scan": accounting(stats.last_scan) if stats.HasField("last_scan") else None,
    }


CSV_COLUMNS = (
    "rank",
    "symbol",
    "name",
    "sector",
    "industry",
    "signal",
    "tech_rating",
    "alpha_score",
    "composite_score",
    "percentile",
    "sector_percentile",
    "win_prob_10d",
    "alpha_5d",
    "alpha_10d",
    "last_close",
    "change_pct",
    "atr_pct",
    "avg_dollar_volume",
    "market_cap",
)
PLAN_COLUMNS = ("entry", "stop", "target", "reward_risk", "side")


def to_csv(rows: Iterable[scan_pb2.ScanRow]) -> str:
    """Rows as CSV: the row columns, the plan, then every feature (feature-list order first)."""
    rows = list(rows)
    seen = {name for row in rows for name in row.features}
    features = [f for f in FEATURE_NAMES if f in seen] + sorted(seen - set(FEATURE_NAMES))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*CSV_COLUMNS, *PLAN_COLUMNS, *features])
    for row in rows:
        values: list[object] = [getattr(row, c) for c in CSV_COLUMNS]
        values += [getattr(row.plan, c) for c in PLAN_COLUMNS]
        values += [row.features.get(f, math.nan) for f in features]
        writer.writerow(["" if isinstance(v, float) and not math.isfinite(v) else v for v in values])
    return out.getvalue()
