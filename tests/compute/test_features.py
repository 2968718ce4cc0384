"""Features: the scoring kernel agrees with the full-series kernels, states, levels and sparklines."""

from __future__ import annotations

import numpy as np
import talib

from services.compute.features import (
    FEATURES,
    LEVEL_FIELDS,
    SPARKLINE_LENGTH,
    SymbolState,
    score_features,
    training_features,
)
from services.marketsim.market import Market
from technic.v1 import common_pb2
from tests.compute.conftest import panel_of


def test_feature_list_is_contract_2() -> None:
    assert len(FEATURES) == 38 and FEATURES[0] == "ret_1d" and FEATURES[-1] == "roc_10"
    for state in SymbolState:
        assert common_pb2.SymbolState.Value(f"SYMBOL_STATE_{state.name}") == state.value


def test_scoring_kernel_equals_training_kernel_at_the_last_session(small_market: Market) -> None:
    panel = panel_of(small_market, np.arange(300))
    panel[5, 100:104] = np.nan  # missing sessions inside the window
    panel[6, -3, 4] = np.nan  # one field missing inside the short windows
    panel[7, ::7, 1] = np.nan  # a gap every week: 52-week windows reach further back
    panel[8, :-40] = np.nan  # short history: warm-ups still running
    for row, history in enumerate((13, 14, 15, 26, 27, 28, 33, 34, 49, 50, 51), start=10):
        panel[row, :-history] = np.nan  # every seeding phase of the recursive indicators ends here
    panel[9, -12:-10] = np.inf  # non-finite bars are missing too
    panel[64:66, -30:-2] = np.nan  # gaps at a block boundary of the scoring kernel
    scored = score_features(panel).features
    full = training_features(panel, np.array([panel.shape[1] - 1]))[:, 0]
    assert np.array_equal(np.isnan(scored), np.isnan(full))
    np.testing.assert_allclose(scored, full, rtol=2e-6, atol=1e-6, equal_nan=True)


def test_features_follow_their_definitions(small_market: Market) -> None:
    panel = panel_of(small_market, np.arange(50))
    pf = score_features(panel)
    # TA-Lib has no missing-session policy: compare on a symbol whose window has every bar.
    complete = np.isfinite(panel).all(axis=(1, 2))
    r = int(np.flatnonzero((pf.states == SymbolState.OK) & complete)[0])
    o, h, lo, c, v = (panel[r, :, k].astype(np.float64) for k in range(5))
    f = dict(zip(FEATURES, pf.features[r].astype(np.float64), strict=True))
    assert np.isclose(f["ret_5d"], c[-1] / c[-6] - 1, rtol=1e-5)
    assert np.isclose(f["rsi_14"], talib.RSI(c, 14)[-1], rtol=1e-5)
    assert np.isclose(f["atr_14_pct"], talib.ATR(h, lo, c, 14)[-1] / c[-1] * 100, rtol=1e-5)
    assert np.isclose(f["dist_52w_high"], c[-1] / talib.MAX(h, 252)[-1] - 1, rtol=1e-5, atol=1e-7)
    up, _mid, dn = talib.BBANDS(c, 20, 2, 2, 0)
    assert np.isclose(f["bb_pct_b"], (c[-1] - dn[-1]) / (up[-1] - dn[-1]), rtol=1e-4)
    assert np.isclose(f["cci_20"], talib.CCI(h, lo, c, 20)[-1], rtol=1e-5)
    assert np.isclose(f["log_dollar_volume_20"], np.log10(np.mean(c[-20:] * v[-20:])), rtol=1e-5)
    assert np.isclose(f["gap_pct"], o[-1] / c[-2] - 1, rtol=1e-4, atol=1e-7)
    lv = dict(zip(LEVEL_FIELDS, pf.levels[r].astype(np.float64), strict=True))
    assert lv["close"] == np.float32(c[-1]) and lv["prev_close"] == np.float32(c[-2])
    assert np.isclose(lv["sma_200"], talib.SMA(c, 200)[-1], rtol=1e-5)
    assert lv["sessions"] == np.isfinite(c).sum()
    np.testing.assert_array_equal(pf.sparklines[r], panel[r, -SPARKLINE_LENGTH:, 3])


def test_states_cover_every_symbol(small_market: Market) -> None:
    panel = panel_of(small_market, np.arange(4))
    panel[0] = np.nan  # no data
    panel[1, :-30] = np.nan  # 30 closes: too little history
    panel[2, -1] = np.nan  # as-of session missing
    pf = score_features(panel)
    assert list(pf.states[:3]) == [SymbolState.NO_DATA, SymbolState.INSUFFICIENT_HISTORY, SymbolState.STALE]
    assert np.isnan(pf.features[[0, 2]]).all()
    assert np.isfinite(pf.sparklines[1]).all()
    assert pf.levels[0, -1] == 0 and pf.levels[1, -1] == 30
