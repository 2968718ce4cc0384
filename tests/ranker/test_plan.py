"""Trade plans and rationales: hand-computed plans at the edges of a usable ATR, and input checks."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from services.ranker.plan import rationales, trade_plans
from services.ranker.styles import style_for

SWING = style_for("Short-term swing")  # stop 1.5 ATR, reward/risk 2


def test_a_plan_by_hand() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p = trade_plans([100, 50], [2, 1], np.array([False, True]), SWING, 1000.0)
    assert p.entry.dtype == np.float64 and p.entry.tolist() == [100.0, 50.0]
    assert p.stop.tolist() == [97.0, 51.5] and p.target.tolist() == [106.0, 47.0]
    assert p.reward_risk.tolist() == [2.0, 2.0] and p.position_size.tolist() == [333.0, 666.0]


@pytest.mark.parametrize("atr", [0.0, -1.0, np.inf, -np.inf, np.nan])
def test_an_unusable_atr_gives_no_plan(atr: float) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p = trade_plans(np.array([100.0]), np.array([atr]), np.array([False]), SWING, 1000.0)
    assert p.entry.tolist() == [100.0]
    assert np.isnan([p.stop[0], p.target[0], p.reward_risk[0], p.position_size[0]]).all()


def test_a_small_atr_still_gives_a_plan() -> None:
    p = trade_plans(np.array([10.0]), np.array([0.2]), np.array([False]), SWING, 100.0)  # risk 0.3 per share
    assert p.stop[0] == pytest.approx(9.7) and p.target[0] == pytest.approx(10.6)
    assert p.position_size[0] == 333.0


def test_rationale_inputs_must_line_up() -> None:
    subs = np.full((2, 6), 50.0)
    one = np.array([0.1])
    with pytest.raises(ValueError, match="zip"):
        rationales(["Long", "Long"], subs, one, one, one)
    with pytest.raises(ValueError, match="zip"):
        rationales(["Long"], subs, np.array([0.1, 0.2]), np.array([0.1, 0.2]), np.array([0.1, 0.2]))
