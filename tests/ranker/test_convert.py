"""The vectorised ScanRow encoding equals messages built field by field."""

from __future__ import annotations

import math

import numpy as np

from services.contract.columns import NUMBER_COLUMNS
from services.contract.styles import SUBSCORES
from services.ranker import convert
from services.ranker.derived import derive
from services.ranker.engine import RankConfig, rank_scan
from services.ranker.rank import PageSpec
from services.ranker.result import Issues, RankedScan
from technic.v1 import compute_pb2, scan_pb2
from tests.ranker.synthetic import explanation, synthetic_universe
from tests.ranker.test_derived import row_of
from tests.ranker.test_engine import make_input


def oracle_row(scan: RankedScan, i: int) -> scan_pb2.ScanRow:
    """One row through the plain protobuf API."""
    v = dict(zip(NUMBER_COLUMNS, scan.numbers[i].tolist(), strict=True))
    text = {k: str(col[i]) for k, col in scan.text.items()}
    subs = {s: v[f"{s}_score"] for s in SUBSCORES}
    note = convert.rationales(
        [text["signal"]],
        np.array([list(subs.values())]),
        np.array([v["alpha_5d"]]),
        np.array([v["alpha_10d"]]),
        np.array([v["alpha_score"]]),
    )[0]
    return scan_pb2.ScanRow(
        rank=int(v["rank"]),
        symbol=text["symbol"],
        name=text["name"],
        sector=text["sector"],
        industry=text["industry"],
        signal=text["signal"],
        tech_rating=v["tech_rating"],
        alpha_score=v["alpha_score"],
        composite_score=v["composite_score"],
        percentile=v["percentile"],
        sector_percentile=v["sector_percentile"],
        win_prob_10d=v["win_prob_10d"],
        alpha_5d=v["alpha_5d"],
        alpha_10d=v["alpha_10d"],
        last_close=v["last_close"],
        change_pct=v["change_pct"],
        atr_pct=v["atr_pct"],
        avg_dollar_volume=v["avg_dollar_volume"],
        market_cap=v["market_cap"],
        rating_percentile=v["rating_percentile"],
        alpha_percentile=v["alpha_percentile"],
        plan=scan_pb2.TradePlan(
            entry=v["entry"],
            stop=v["stop"],
            target=v["target"],
            reward_risk=v["reward_risk"],
            position_size=v["position_size"],
            side="short" if text["side"] == "short" else "long",
        ),
        subscores=subs,
        features=dict(zip(scan.feature_names, scan.features[i].astype(float).tolist(), strict=True)),
        sparkline=scan.sparklines[i].tolist(),
        rationale=note,
        play_style=scan.style,
        explanation=[compute_pb2.SymbolExplanation.FromString(scan.explanations[text["symbol"]])]
        if text["symbol"] in scan.explanations
        else [],
        **row_of(scan.derived, scan.number("percentile"), i, scan.style),
    )


def same(a: scan_pb2.ScanRow, b: scan_pb2.ScanRow) -> bool:
    """Equal, NaN matching NaN (protobuf equality says NaN != NaN)."""

    def norm(m: scan_pb2.ScanRow) -> bytes:
        return m.SerializeToString(deterministic=True)

    return norm(a) == norm(b)


def test_encoded_rows_equal_the_field_by_field_messages() -> None:
    u = synthetic_universe(300, chunk_size=100, unscored=0.1)
    scan = rank_scan(make_input(u.info, style="Day"), u.decoded(), RankConfig())
    scan.numbers[3, NUMBER_COLUMNS.index("stop")] = np.nan  # NaN survives the encoding
    idx = scan.page(PageSpec("change_pct", True, 7, 60))
    # A row without a dollar volume has no ICS or merit (NaN, empty labels) but its risk label.
    scan.numbers[idx[0], NUMBER_COLUMNS.index("avg_dollar_volume")] = np.nan
    scan.derived = derive(
        *(scan.number(c) for c in ("percentile", "avg_dollar_volume", "atr_pct")),
        scan.features[:, scan.feature_names.index("rsi_14")],
        scan.number("last_close"),
        scan.text["signal"],
        np.column_stack([scan.number(f"{s}_score") for s in SUBSCORES]),
    )
    explained = [str(s) for s in scan.text["symbol"][idx[[1, 5, 9]]]]
    attached = scan.attach({s: explanation(s).SerializeToString() for s in [*explained, "NOT-RANKED"]})
    assert attached == 3 and set(scan.explanations) == set(explained)
    result = scan_pb2.ScanResult()
    result.MergeFromString(convert.rows(scan, idx))
    assert len(result.rows) == 60
    for row, i in zip(result.rows, idx.tolist(), strict=True):
        assert same(row, oracle_row(scan, i)), row.symbol
    assert any(r.plan.side == "short" for r in result.rows) or not any(scan.text["side"] == "short")
    first = result.rows[0]
    assert math.isnan(first.ics) and not (first.ics_tier or first.merit_band or first.merit_summary)
    assert first.risk_label and not first.merit_flags and not first.explanation
    assert [r.explanation[0].symbol for r in result.rows if r.explanation] == explained
    assert {r.ics_tier for r in result.rows[1:]} <= {"CORE", "SATELLITE", "SPECULATIVE"}
    assert all(r.merit_summary.startswith(f"Merit {r.merit_band} (") for r in result.rows[1:])
    row3 = scan_pb2.ScanResult()
    row3.MergeFromString(convert.rows(scan, np.array([3])))
    assert math.isnan(row3.rows[0].plan.stop)


def test_issues_encoded_ahead_give_the_same_result_as_issues_built_after_ranking() -> None:
    u = synthetic_universe(200, chunk_size=50, unscored=0.2)
    header = Issues(
        ["P1", "P2", "P3"],
        ["filtered", "skipped", "filtered"],
        ["prefilter_price", "no_snapshot", "prefilter_type"],
        ["", "", "etf"],
    )
    scan = rank_scan(make_input(u.info, issues=header), u.decoded(), RankConfig())
    assert len(scan.issues) > len(header)  # the compute states add issues after the header's
    plain = convert.scan_result(scan, PageSpec(limit=5), scan_id="s", cached=False, include_issues=True)
    ahead = convert.scan_result(
        scan,
        PageSpec(limit=5),
        scan_id="s",
        cached=False,
        include_issues=True,
        known_issues=convert.encoded_issues(header),
    )
    assert ahead == plain and [i.symbol for i in ahead.issues][:3] == ["P1", "P2", "P3"]
    # Issues encoded for another header (a scan ranked by another call) are not used.
    other = Issues(["P9"], ["filtered"], ["prefilter_price"], [""])
    stale = convert.scan_result(
        scan,
        PageSpec(limit=5),
        scan_id="s",
        cached=False,
        include_issues=True,
        known_issues=convert.encoded_issues(other),
    )
    assert stale == plain
