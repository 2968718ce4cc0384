"""The derived scores (ICS, merit, risk label, ultra-risky, profile): hand-computed rows, a per-row
reference, storage."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from services.contract.columns import NUMBER_COLUMNS
from services.contract.features import FEATURES
from services.contract.styles import SUBSCORES
from services.ranker.derived import (
    FIELDS,
    ICS_TIERS,
    MERIT_BANDS,
    RISK_LABELS,
    SETUPS,
    Derived,
    derive,
    flag_names,
    profile,
)
from services.ranker.engine import RankConfig, rank_scan
from services.ranker.result import RankedScan
from tests.ranker.synthetic import synthetic_universe
from tests.ranker.test_engine import make_input

NAN = math.nan


def reference(percentile: float, adv: float, atr: float, rsi: float) -> dict[str, Any]:
    """The formulas one row at a time in plain Python (as the gateway computed them from a ScanRow)."""
    liquidity = 100.0 * min(1.0, max(0.0, (math.log10(adv) - 6.0) / 3.0)) if math.isfinite(adv) and adv > 0 else None
    stability = 100.0 * min(1.0, max(0.0, 1.0 - (atr - 1.0) / 7.0)) if math.isfinite(atr) and atr > 0 else None
    risk = (
        ""
        if not (math.isfinite(atr) and atr > 0)
        else ("Low" if atr < 2 else "Moderate" if atr < 4 else "High" if atr < 7 else "Very high")
    )
    if liquidity is None or stability is None or not math.isfinite(percentile):
        return {
            "ics": NAN,
            "ics_tier": "",
            "merit_score": NAN,
            "merit_band": "",
            "merit_flags": [],
            "merit_summary": "",
            "risk_label": risk,
        }
    ics = 0.4 * liquidity + 0.3 * stability + 0.3 * percentile
    merit = 0.6 * percentile + 0.25 * liquidity + 0.15 * stability
    band = "A" if merit >= 80 else "B" if merit >= 65 else "C" if merit >= 50 else "D"
    flags = []
    if adv < 10_000_000:
        flags.append("LOW_LIQUIDITY")
    if atr > 6:
        flags.append("HIGH_VOLATILITY")
    if rsi > 70:
        flags.append("OVERBOUGHT")
    elif rsi < 30:
        flags.append("OVERSOLD")
    summary = (
        f"Merit {band} ({merit:.0f}/100): composite percentile {percentile:.0f}, "
        f"liquidity {liquidity:.0f}, stability {stability:.0f}"
    )
    if flags:
        summary += "; watch: " + ", ".join(f.lower().replace("_", " ") for f in flags)
    return {
        "ics": ics,
        "ics_tier": "CORE" if ics >= 75 else "SATELLITE" if ics >= 55 else "SPECULATIVE",
        "merit_score": merit,
        "merit_band": band,
        "merit_flags": flags,
        "merit_summary": summary,
        "risk_label": risk,
    }


def row_of(d: Derived, percentile: np.ndarray, i: int, style: str = "Short-term swing") -> dict[str, Any]:
    """Row ``i`` of ``d`` as the ScanRow fields it fills."""
    tier, band, risk = int(d.ics_tier[i]), int(d.merit_band[i]), int(d.risk_label[i])
    key, label = profile(style, int(d.setup[i]))
    return {
        "ultra_risky": bool(d.ultra_risky[i]),
        "profile": key,
        "profile_label": label,
        "ics": float(d.ics[i]),
        "ics_tier": ICS_TIERS[tier] if tier >= 0 else "",
        "merit_score": float(d.merit_score[i]),
        "merit_band": MERIT_BANDS[band] if band >= 0 else "",
        "merit_flags": flag_names(int(d.merit_flags[i])),
        "merit_summary": d.summaries([i], percentile)[0],
        "risk_label": RISK_LABELS[risk] if risk >= 0 else "",
    }


def scores_of(percentile: np.ndarray, adv: np.ndarray, atr: np.ndarray, rsi: np.ndarray) -> Derived:
    """``derive`` for the score tests: a $50 close, a Neutral signal, no subscores."""
    n = len(percentile)
    return derive(percentile, adv, atr, rsi, np.full(n, 50.0), np.full(n, "Neutral"), np.full((n, len(SUBSCORES)), NAN))


def reference_profile(
    style: str, adv: float, atr: float, close: float, signal: str, subscores: dict[str, float]
) -> dict[str, Any]:
    """Ultra-risky and the profile, one row at a time in plain Python."""
    ultra = (
        (math.isfinite(atr) and atr >= 7.0)
        or (math.isfinite(adv) and adv < 2_000_000.0)
        or (math.isfinite(close) and 0 < close < 1.0)
    )
    known = {k: v for k, v in subscores.items() if math.isfinite(v)}
    if ultra:
        kind = "ultra-risky"
    elif signal in ("Strong Long", "Long"):
        kind = max(known, key=lambda k: known[k]) if known else "long"
    elif signal == "Neutral":
        kind = "watch"
    else:
        kind = "short" if "Short" in signal else "avoid"
    slug = {"Day": "day", "Short-term swing": "swing", "Medium-term swing": "medium_swing", "Position": "position"}
    return {
        "ultra_risky": ultra,
        "profile": f"{slug[style]}:{kind}",
        "profile_label": f"{style}, {kind.replace('-', ' ')} setup",
    }


def same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Equal; floats to the last bits (numpy's log10 may differ from math's in the last one), NaN matching NaN."""

    def eq(x: Any, y: Any) -> bool:
        if isinstance(x, float):
            return (math.isnan(x) and math.isnan(y)) or math.isclose(x, y, rel_tol=1e-12)
        return bool(x == y)

    return set(a) == set(b) and all(eq(a[k], b[k]) for k in a)


# (percentile, avg dollar volume, ATR %, RSI 14) and the values worked out by hand.
HAND = [
    # liquidity (8 - 6) / 3 = 66.667, stability 1 - 1.5 / 7 = 78.571
    ((90.0, 1e8, 2.5, 75.0), 77.2381, "CORE", 82.4524, "A", ["OVERBOUGHT"], "Moderate",
     "Merit A (82/100): composite percentile 90, liquidity 67, stability 79; watch: overbought"),
    # liquidity (log10 5e6 - 6) / 3 = 23.299, stability 0 (clipped)
    ((40.0, 5e6, 8.0, 25.0), 21.3196, "SPECULATIVE", 29.8247, "D",
     ["LOW_LIQUIDITY", "HIGH_VOLATILITY", "OVERSOLD"], "Very high",
     "Merit D (30/100): composite percentile 40, liquidity 23, stability 0; "
     "watch: low liquidity, high volatility, oversold"),
    # liquidity 33.333, stability 1 - 2 / 7 = 71.429; $10M exactly is not low liquidity
    ((70.0, 1e7, 3.0, 50.0), 55.7619, "SATELLITE", 61.0476, "C", [], "Moderate",
     "Merit C (61/100): composite percentile 70, liquidity 33, stability 71"),
    # both clipped to 100; a missing RSI raises no RSI flag
    ((50.0, 2e9, 0.5, NAN), 85.0, "CORE", 70.0, "B", [], "Low",
     "Merit B (70/100): composite percentile 50, liquidity 100, stability 100"),
    # no dollar volume: nothing but the risk label
    ((80.0, NAN, 5.0, 80.0), NAN, "", NAN, "", [], "High", ""),
    ((80.0, 0.0, 6.5, 50.0), NAN, "", NAN, "", [], "High", ""),
    # no ATR: nothing at all
    ((80.0, 1e8, 0.0, 50.0), NAN, "", NAN, "", [], "", ""),
    ((80.0, 1e8, NAN, 50.0), NAN, "", NAN, "", [], "", ""),
    # no percentile
    ((NAN, 1e8, 2.0, 50.0), NAN, "", NAN, "", [], "Moderate", ""),
]  # fmt: skip


def test_hand_computed_rows() -> None:
    inputs = np.array([row[0] for row in HAND])
    d = scores_of(inputs[:, 0], inputs[:, 1], inputs[:, 2], inputs[:, 3])
    for i, (_, ics, tier, merit, band, flags, risk, summary) in enumerate(HAND):
        got = row_of(d, inputs[:, 0], i)
        assert got["ics"] == pytest.approx(ics, abs=1e-4, nan_ok=True), i
        assert got["merit_score"] == pytest.approx(merit, abs=1e-4, nan_ok=True), i
        assert (got["ics_tier"], got["merit_band"], got["merit_flags"], got["risk_label"]) == (tier, band, flags, risk)
        assert got["merit_summary"] == summary
        scores = {k: v for k, v in got.items() if k not in ("ultra_risky", "profile", "profile_label")}
        assert same(scores, reference(*HAND[i][0])), i


def test_liquidity_and_stability_scales() -> None:
    d = scores_of(
        np.full(5, 50.0), np.array([1e6, 1e7, 1e8, 1e9, 1e12]), np.array([1.0, 2.0, 4.5, 8.0, 20.0]), np.full(5, 50.0)
    )
    assert d.liquidity.tolist() == pytest.approx([0.0, 100 / 3, 200 / 3, 100.0, 100.0])
    assert d.stability.tolist() == pytest.approx([100.0, 600 / 7, 50.0, 0.0, 0.0])
    assert [RISK_LABELS[c] for c in d.risk_label] == ["Low", "Moderate", "High", "Very high", "Very high"]


def test_the_vectorised_scores_equal_the_per_row_formulas_on_a_ranked_scan() -> None:
    u = synthetic_universe(1500, chunk_size=500, unscored=0.05)
    scan = rank_scan(make_input(u.info), u.decoded(), RankConfig())
    pct, adv, atr = (scan.number(c) for c in ("percentile", "avg_dollar_volume", "atr_pct"))
    rsi = scan.features[:, FEATURES.index("rsi_14")].astype(np.float64)
    assert len(scan.derived) == len(scan) > 1000
    tiers = set()
    close = scan.number("last_close")
    kinds = set()
    for i in range(len(scan)):
        got = row_of(scan.derived, pct, i, scan.style)
        subs = {k: float(scan.number(f"{k}_score")[i]) for k in SUBSCORES}
        want = reference(pct[i], adv[i], atr[i], rsi[i]) | reference_profile(
            scan.style, adv[i], atr[i], close[i], str(scan.text["signal"][i]), subs
        )
        assert same(got, want), (i, got)
        tiers.add(got["ics_tier"])
        kinds.add(got["profile"].partition(":")[2])
    assert tiers == set(ICS_TIERS)  # the synthetic universe spans every tier
    assert "watch" in kinds and kinds & set(SUBSCORES) and kinds & {"short", "avoid"}, kinds  # ultra-risky: by hand


def test_stored_form_round_trips() -> None:
    u = synthetic_universe(300, chunk_size=100)
    scan = rank_scan(make_input(u.info), u.decoded(), RankConfig())
    scan.numbers[0, NUMBER_COLUMNS.index("avg_dollar_volume")] = np.nan
    back = RankedScan.from_bytes(scan.to_bytes())
    for name in FIELDS:
        np.testing.assert_array_equal(getattr(back.derived, name), getattr(scan.derived, name), err_msg=name)
        assert getattr(back.derived, name).dtype == getattr(scan.derived, name).dtype, name
    empty = Derived.from_matrix(scores_of(np.empty(0), np.empty(0), np.empty(0), np.empty(0)).matrix())
    assert len(empty) == 0 and empty.summaries([], np.empty(0)) == []


# (ATR %, avg dollar volume, close, signal, subscores) and the profile worked out by hand.
PROFILES = [
    # 7 % ATR exactly is ultra-risky, whatever the signal
    ((7.0, 1e8, 50.0, "Strong Long", {"trend": 90.0}), True, "swing:ultra-risky",
     "Short-term swing, ultra risky setup"),
    ((6.99, 1e8, 50.0, "Strong Long", {"trend": 90.0, "momentum": 95.0}), False, "swing:momentum",
     "Short-term swing, momentum setup"),
    # $2M exactly is not ultra-risky, just under is
    ((3.0, 2e6, 50.0, "Long", {"volume": 60.0, "breakout": 60.0}), False, "swing:volume",
     "Short-term swing, volume setup"),
    ((3.0, 1_999_999.0, 50.0, "Long", {}), True, "swing:ultra-risky", "Short-term swing, ultra risky setup"),
    # $1 exactly is not, $0.99 is; a close of 0 (unknown) is not
    ((3.0, 1e8, 1.0, "Long", {}), False, "swing:long", "Short-term swing, long setup"),
    ((3.0, 1e8, 0.99, "Neutral", {}), True, "swing:ultra-risky", "Short-term swing, ultra risky setup"),
    ((3.0, 1e8, 0.0, "Neutral", {}), False, "swing:watch", "Short-term swing, watch setup"),
    # unknown inputs never make a name ultra-risky
    ((NAN, NAN, NAN, "Strong Short", {}), False, "swing:short", "Short-term swing, short setup"),
    ((3.0, 1e8, 50.0, "Short", {"trend": 99.0}), False, "swing:short", "Short-term swing, short setup"),
    ((3.0, 1e8, 50.0, "Avoid", {"trend": 99.0}), False, "swing:avoid", "Short-term swing, avoid setup"),
    ((3.0, 1e8, 50.0, "Long", {"oscillator": 40.0, "trend": NAN}), False, "swing:oscillator",
     "Short-term swing, oscillator setup"),
]  # fmt: skip


@pytest.mark.parametrize("style", ["Short-term swing", "Day", "Medium-term swing", "Position"])
def test_ultra_risky_and_profile_by_hand(style: str) -> None:
    n = len(PROFILES)
    atr, adv, close = (np.array([p[0][k] for p in PROFILES]) for k in range(3))
    subs = np.array([[p[0][4].get(k, NAN) for k in SUBSCORES] for p in PROFILES])
    d = derive(np.full(n, 50.0), adv, atr, np.full(n, 50.0), close, np.array([p[0][3] for p in PROFILES]), subs)
    slug = {"Short-term swing": "swing", "Day": "day", "Medium-term swing": "medium_swing", "Position": "position"}
    for i, (inputs, ultra, key, label) in enumerate(PROFILES):
        got = row_of(d, np.full(n, 50.0), i, style)
        assert got["ultra_risky"] is ultra, (i, inputs)
        assert got["profile"] == key.replace("swing:", f"{slug[style]}:", 1), (i, inputs)
        assert got["profile_label"] == label.replace("Short-term swing", style, 1), (i, inputs)
        assert same(got, {**got, **reference_profile(style, inputs[1], inputs[0], *inputs[2:])})


def test_setup_codes_name_every_setup() -> None:
    assert SETUPS[: len(SUBSCORES)] == SUBSCORES
    assert set(SETUPS[len(SUBSCORES) :]) == {"long", "watch", "short", "avoid", "ultra-risky"}
