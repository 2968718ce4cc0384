"""Training learns the planted signal out of sample; loading refuses mismatched models; scoring and explaining."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from services.compute.features import FEATURES, score_features
from services.compute.models import AlphaModels, ModelMismatchError, load_model
from services.marketsim.market import Market
from tests.compute.conftest import panel_of


@pytest.mark.parametrize("model", ["alpha_5d", "alpha_10d"])
def test_models_learn_the_planted_signal_out_of_sample(
    trained: tuple[Path, dict[str, dict[str, Any]]],
    model: str,
) -> None:
    metrics = trained[1][model]["metrics"]
    assert metrics["rank_ic"] > 0
    assert metrics["rank_ic_tstat"] > 3
    assert metrics["rank_ic"] >= 0.5 * metrics["oracle_ic"]
    assert metrics["top_decile_spread"] > 0


def test_metadata_holds_contract_fields(trained: tuple[Path, dict[str, dict[str, Any]]]) -> None:
    folder, metas = trained
    for name, meta in metas.items():
        on_disk = orjson.loads((folder / f"{name}.json").read_bytes())
        assert on_disk == orjson.loads(orjson.dumps(meta, option=orjson.OPT_SERIALIZE_NUMPY))
        for key in (
            "name",
            "version",
            "feature_version",
            "features",
            "horizon",
            "training_window",
            "data_source",
            "market",
            "metrics",
            "xgboost_version",
            "win_prob",
        ):
            assert key in meta, key
        assert set(meta["metrics"]) >= {"ic", "rank_ic", "icir", "rank_ic_tstat", "top_decile_spread", "oracle_ic"}
        edges, p_up = meta["win_prob"]["edges"], meta["win_prob"]["p_up"]
        assert len(edges) == len(p_up) + 1 and np.all(np.diff(edges) > 0)
        assert all(0 <= p <= 1 for p in p_up)
        assert (folder / f"{name}.ubj").stat().st_size < 5 * 1024 * 1024


def test_a_model_with_another_feature_list_is_refused(trained: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    folder, _ = trained
    for f in folder.iterdir():
        shutil.copy(f, tmp_path / f.name)
    meta = orjson.loads((tmp_path / "alpha_5d.json").read_bytes())
    meta["features"] = list(reversed(meta["features"]))
    (tmp_path / "alpha_5d.json").write_bytes(orjson.dumps(meta))
    with pytest.raises(ModelMismatchError, match="expects features"):
        load_model(tmp_path, "alpha_5d")
    meta["features"] = list(FEATURES)
    meta["feature_version"] = "old"
    (tmp_path / "alpha_5d.json").write_bytes(orjson.dumps(meta))
    with pytest.raises(ModelMismatchError, match="feature version 'old'"):
        AlphaModels.load(tmp_path)
    with pytest.raises(ModelMismatchError, match="not found"):
        load_model(tmp_path / "nowhere", "alpha_10d")


def test_score_and_explain(trained: tuple[Path, Any], small_market: Market) -> None:
    models = AlphaModels.load(trained[0])
    pf = score_features(panel_of(small_market, np.arange(200)))
    ok = pf.states == 1
    scores = models.score(pf.features, ok)
    assert scores.shape == (200, 2) and np.isfinite(scores[ok]).all() and np.isnan(scores[~ok]).all()
    rows = np.flatnonzero(ok)[:3]
    explained = models.explain(pf.features[rows], top_k=4)
    assert len(explained) == 3
    for k, per_model in enumerate(explained):
        for m, e in enumerate(per_model):
            assert len(e.contributions) == 4
            assert e.prediction == pytest.approx(float(scores[rows[k], m]), abs=1e-4)
            mags = [abs(c.contribution) for c in e.contributions]
            assert mags == sorted(mags, reverse=True)
            assert all(c.label and c.feature in FEATURES for c in e.contributions)
