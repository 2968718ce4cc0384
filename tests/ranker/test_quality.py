"""Fundamentals from filed statements and the sector-relative quality, value and growth scores."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.ranker.quality import Fundamentals, factor_scores, fundamentals, sector_percentiles

NAN = math.nan


@dataclass(frozen=True)
class Row:
    timeframe: str
    end_date: dt.date
    filing_date: dt.date
    revenues: float
    operating_income: float
    net_income: float
    eps_basic: float
    shares_basic: float
    equity: float
    long_term_debt: float


QUARTER_ENDS = [
    dt.date(2024, 3, 31),
    dt.date(2024, 6, 30),
    dt.date(2024, 9, 30),
    dt.date(2024, 12, 31),
    dt.date(2025, 3, 31),
    dt.date(2025, 6, 30),
    dt.date(2025, 9, 30),
    dt.date(2025, 12, 31),
]


def quarters(
    revenue: float = 100.0,
    margin: float = 0.1,
    growth: float = 0.0,
    shares: float = 10.0,
    equity: float = 500.0,
    debt: float = 200.0,
    lag: int = 40,
) -> list[Row]:
    rows = []
    for k, end in enumerate(QUARTER_ENDS):
        rev = revenue * (1 + growth) ** (k // 4)
        ni = rev * margin
        rows.append(
            Row(
                "quarterly",
                end,
                end + dt.timedelta(days=lag),
                rev,
                rev * (margin + 0.05),
                ni,
                ni / shares,
                shares,
                equity,
                debt,
            )
        )
    return rows


def test_metrics_from_eight_quarters() -> None:
    rows = quarters(revenue=100.0, margin=0.1, growth=0.2)
    f = fundamentals("X", rows, dt.date(2026, 3, 1), price=30.0)
    assert f.quarters == 8 and f.period_end == dt.date(2025, 12, 31)
    ni_ttm = 4 * 120.0 * 0.1
    assert f.eps_ttm == pytest.approx(ni_ttm / 10.0)
    assert f.pe == pytest.approx(30.0 / (ni_ttm / 10.0)) and f.earnings_yield == pytest.approx(ni_ttm / 10.0 / 30.0)
    assert f.roe == pytest.approx(ni_ttm / 500.0) and f.debt_to_equity == pytest.approx(0.4)
    assert f.net_margin == pytest.approx(0.1) and f.operating_margin == pytest.approx(0.15)
    assert f.revenue_growth == pytest.approx(0.2) and f.eps_growth == pytest.approx(0.2)
    assert f.margin_volatility == pytest.approx(0.0, abs=1e-12)
    assert f.book_to_price == pytest.approx(500.0 / (30.0 * 10.0))
    assert f.reasons == {}


def test_point_in_time_counts_filings_not_periods() -> None:
    rows = quarters()
    # The Q4 2025 period has ended but is filed only on 2026-02-09.
    before = fundamentals("X", rows, dt.date(2026, 2, 8), 30.0)
    after = fundamentals("X", rows, dt.date(2026, 2, 9), 30.0)
    assert before.period_end == dt.date(2025, 9, 30) and after.period_end == dt.date(2025, 12, 31)
    assert before.quarters == 7 and after.quarters == 8
    assert before.revenue_growth is not None  # latest quarter against the same quarter a year before


def test_missing_and_bad_statements_give_reasons_not_exceptions() -> None:
    empty = fundamentals("X", [], dt.date(2026, 1, 1), 10.0)
    assert empty.pe is None and empty.reasons["pe"] == "no quarterly statement filed"
    short = fundamentals("X", quarters()[:3], dt.date(2026, 1, 1), 10.0)
    assert short.eps_ttm is None and "4 needed" in short.reasons["eps_ttm"]
    losses = fundamentals("X", quarters(margin=-0.05), dt.date(2026, 3, 1), 10.0)
    assert losses.pe is None and losses.reasons["pe"] == "trailing earnings not positive"
    assert losses.earnings_yield is not None and losses.earnings_yield < 0
    negative_equity = fundamentals("X", quarters(equity=-50.0), dt.date(2026, 3, 1), 10.0)
    assert negative_equity.roe is None and negative_equity.debt_to_equity is None
    assert negative_equity.reasons["roe"] == "equity not positive"
    holes = quarters()
    holes[-2] = replace(holes[-2], net_income=NAN, eps_basic=NAN)
    holed = fundamentals("X", holes, dt.date(2026, 3, 1), 10.0)
    assert holed.eps_ttm is None and holed.roe is None and "missing" in holed.reasons["roe"]
    garbage = [replace(quarters()[0], revenues=None, end_date=None), object(), replace(quarters()[1], equity="x")]
    g = fundamentals("X", garbage, dt.date(2026, 3, 1), NAN)  # type: ignore[arg-type]
    assert g.quarters == 1 and g.book_to_price is None and g.debt_to_equity is None
    gap = [r for r in quarters() if r.end_date != dt.date(2025, 6, 30)]
    assert fundamentals("X", gap, dt.date(2026, 3, 1), 10.0).quarters == 2


def test_annual_filings_are_ignored_and_amendments_win() -> None:
    rows = quarters()
    amended = replace(rows[-1], filing_date=rows[-1].filing_date + dt.timedelta(days=30), net_income=99.0)
    annual = replace(rows[-1], timeframe="annual", net_income=1e9)
    f = fundamentals("X", [*rows, amended, annual], dt.date(2026, 6, 1), 30.0)
    assert f.eps_ttm == pytest.approx((3 * 10.0 + 99.0) / 10.0)


def _universe(n: int, rng: np.random.Generator) -> tuple[list[Fundamentals], list[str]]:
    rows, sectors = [], []
    for j in range(n):
        margin = rng.normal(0.1, 0.05)
        rows.append(
            fundamentals(
                f"S{j}",
                quarters(
                    margin=margin, growth=rng.normal(0.05, 0.1), debt=rng.uniform(0, 800), equity=rng.uniform(100, 900)
                ),
                dt.date(2026, 3, 1),
                float(rng.uniform(5, 200)),
            )
        )
        sectors.append("Tech" if j % 3 else "Energy")
    return rows, sectors


def test_scores_are_sector_relative_percentiles() -> None:
    rows, sectors = _universe(60, np.random.default_rng(1))
    scores = factor_scores(rows, sectors)
    for column in (scores.quality, scores.value, scores.growth):
        assert np.all((column > 0) & (column <= 100))
    roe = np.array([r.roe for r in rows])
    tech = np.array([s == "Tech" for s in sectors])
    best, worst = np.argmax(np.where(tech, roe, -np.inf)), np.argmin(np.where(tech, roe, np.inf))
    assert scores.profitability[best] > scores.profitability[worst]
    assert sector_percentiles(roe, sectors)[best] == 1.0 and sector_percentiles(roe, sectors)[worst] < 0.1
    assert np.corrcoef(scores.profitability, roe)[0, 1] > 0.5
    low_debt = np.array([r.debt_to_equity for r in rows])
    assert scores.leverage[np.argmin(np.where(tech, low_debt, np.inf))] == 100.0
    assert all(reason is None for reason in scores.reasons["quality"])


def test_unscorable_names_get_nan_and_a_reason() -> None:
    rows, sectors = _universe(12, np.random.default_rng(2))
    rows.append(fundamentals("NEW", quarters()[:2], dt.date(2026, 3, 1), 10.0))
    rows.append(fundamentals("NONE", [], dt.date(2026, 3, 1), 10.0))
    sectors += ["Tech", "Unknown"]
    scores = factor_scores(rows, sectors)
    assert np.isnan(scores.quality[-1]) and np.isnan(scores.quality[-2])
    assert "4 needed" in (scores.reasons["quality"][-2] or "")
    assert scores.reasons["quality"][-1].startswith("roe: no quarterly statement filed")
    assert np.isfinite(scores.quality[:-2]).all()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(-1e6, 1e6) | st.just(NAN), st.sampled_from("ABC")), min_size=1, max_size=40))
def test_sector_percentiles_properties(pairs: list[tuple[float, str]]) -> None:
    values = np.array([v for v, _ in pairs])
    sectors = [s for _, s in pairs]
    p = sector_percentiles(values, sectors, min_sector_size=3)
    assert np.array_equal(np.isnan(p), np.isnan(values))
    assert np.all((p[~np.isnan(p)] > 0) & (p[~np.isnan(p)] <= 1))
    for s in set(sectors):
        idx = [j for j, x in enumerate(sectors) if x == s and not np.isnan(values[j])]
        for a in idx:
            for b in idx:
                if values[a] < values[b]:
                    assert p[a] <= p[b] or len(idx) < 3


def test_on_the_simulated_market_through_the_fetcher_records(tmp_path: Path) -> None:
    """Statements from the simulator, decoded by the fetcher, scored here: quality follows the planted factor."""
    import orjson

    from services.fetcher.fundamentals import decode_financials
    from services.marketsim.fundamentals import profile, statements
    from services.marketsim.market import MarketConfig, load_market

    m = load_market(MarketConfig(n_tickers=600, history_sessions=400, today=dt.date(2026, 11, 13)), tmp_path)
    names = np.flatnonzero(np.isin(m.ref["type"], ["CS", "ADRC"]) & m.ref["active"])
    rows, sectors, planted = [], [], []
    for i in names:
        filed = statements(m, int(i))
        if not filed:
            continue
        body = orjson.dumps({"results": list(filed), "status": "OK"})
        records = decode_financials(str(m.tickers[i]), [body])
        rows.append(fundamentals(str(m.tickers[i]), records, m.today, float(m.close[m.today_index, i])))
        sectors.append(str(m.ref["division"][i]))
        planted.append(profile(m, int(i)).quality)
    scores = factor_scores(rows, sectors)
    ok = np.isfinite(scores.quality)
    assert ok.mean() > 0.9
    corr = np.corrcoef(scores.quality[ok], np.array(planted)[ok])[0, 1]
    assert corr > 0.3
