"""The rating's arithmetic by hand: derived inputs, damping, peaks, subscore means over rows, band edges."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from services.contract.styles import SUBSCORES, style_for
from services.ranker import rating
from tests.ranker.synthetic import FEATURES

DAY, POSITION = style_for("Day"), style_for("Position")


def rows(**columns: list[float]) -> dict[str, np.ndarray]:
    """Rows with every feature NaN except ``columns``."""
    n = len(next(iter(columns.values())))
    out = {name: np.full(n, np.nan) for name in FEATURES}
    out.update({k: np.array(v, dtype=np.float64) for k, v in columns.items()})
    return out


def test_derived_inputs_by_hand() -> None:
    f = {
        "plus_di_14": np.array([15.0, 0.0]),
        "minus_di_14": np.array([10.0, 0.0]),
        "ret_1d": np.array([-0.01, 0.0]),
        "rel_volume_20": np.array([1.5, 3.0]),
        "realized_vol_21": np.array([0.2, 0.0]),
        "realized_vol_63": np.array([0.4, 0.0]),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 0 / 0 (no directional movement, no volatility) is NaN, silently
        d = rating.derived_inputs(f)
    assert d["di_balance"][0] == pytest.approx(0.2) and np.isnan(d["di_balance"][1])
    assert d["signed_rel_volume"].tolist() == [-0.5, 0.0]
    assert d["vol_contraction"][0] == 0.5 and np.isnan(d["vol_contraction"][1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # x / 0 as well (inconsistent inputs still give a number)
        d = rating.derived_inputs({**f, "realized_vol_63": np.array([0.0, 0.0]), "minus_di_14": np.array([-15.0, 0])})
    assert d["vol_contraction"][0] == np.inf and d["di_balance"][0] == np.inf


def test_risk_damping_by_hand() -> None:
    damping = rating.risk_damping(np.array([1.0, 3.0, 6.5, 10.0, 20.0, np.nan]))
    assert damping.tolist() == [1.0, 1.0, 0.75, 0.5, 0.5, 1.0]


def test_a_peak_is_zero_far_from_its_centre() -> None:
    peak = rating.Peak("rsi_14", 60.0, 40.0)
    assert peak.score(np.array([60.0, 80.0, 100.0, 200.0, -50.0])).tolist() == [100.0, 50.0, 0.0, 0.0, 0.0]


def test_subscores_are_per_row_means() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a subscore without a finite component is 50, silently
        subs = rating.subscores(rows(dist_sma_50=[0.10, -0.10, np.nan], dist_sma_200=[np.nan, 0.20, np.nan]))
    assert subs["trend"].tolist() == [100.0, 50.0, 50.0]
    assert all(subs[name].tolist() == [50.0, 50.0, 50.0] for name in SUBSCORES if name != "trend")


def test_signal_labels_are_objects_and_band_edges_belong_to_the_band_above() -> None:
    labels, sides = rating.signals(np.array([70.0, 69.99, 58.0, 42.0, 41.99, 30.0, 29.99, 0.0]), DAY)
    assert labels.dtype == object and sides.dtype == object
    assert labels.tolist() == [
        "Strong Long",
        "Long",
        "Long",
        "Neutral",
        "Short",
        "Short",
        "Strong Short",
        "Strong Short",
    ]
    labels, sides = rating.signals(np.array([41.99, 0.0]), POSITION)
    assert labels.tolist() == ["Avoid", "Avoid"] and sides.tolist() == ["flat", "flat"]


@pytest.mark.parametrize("style", [DAY, POSITION])
def test_a_rating_that_is_not_a_number_gets_no_signal(style) -> None:
    labels, sides = rating.signals(np.array([np.nan, 75.0, np.nan, 10.0]), style)
    assert labels[0] == labels[2] == rating.NO_SIGNAL == ""
    assert labels[1] == "Strong Long" and labels[3] in ("Strong Short", "Avoid")
    assert sides.tolist()[0::2] == ["flat", "flat"] and labels.dtype == object and sides.dtype == object
    assert sides[1] == "long"
