"""What the model metadata tells Describe: the market trained on, metrics, the win-probability table."""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson
import pytest

from services.compute.models import AlphaModels, ModelMismatchError, market_label
from services.compute.settings import ComputeSettings

SHIPPED = ComputeSettings().model_dir


def copy_models(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for f in SHIPPED.iterdir():
        if f.suffix in (".json", ".ubj"):
            shutil.copy(f, folder / f.name)
    return folder


def edit_meta(folder: Path, name: str, **changes: object) -> None:
    path = folder / f"{name}.json"
    meta = orjson.loads(path.read_bytes())
    for key, value in changes.items():
        if value is None:
            meta.pop(key, None)
        else:
            meta[key] = value
    path.write_bytes(orjson.dumps(meta))


def test_market_label_from_data_source_and_window() -> None:
    window = {"start": "2024-09-11", "end": "2026-10-28", "dates": 179}
    assert (
        market_label({"kind": "marketsim", "config": {"seed": 7}}, window) == "simulator seed 7, 2024-09-11..2026-10-28"
    )
    assert market_label({"kind": "marketsim"}, {}) == "simulator"
    assert market_label({"kind": "polygon"}, {"start": "2021-01-04", "end": "2026-11-13"}) == (
        "polygon, 2021-01-04..2026-11-13"
    )
    assert market_label(None, None) == ""


def test_an_explicit_market_entry_wins(tmp_path: Path) -> None:
    folder = copy_models(tmp_path / "m")
    edit_meta(folder, "alpha_5d", market="polygon 2021-01-04..2026-11-13", metrics={"ic": 0.1, "note": "text"})
    models = AlphaModels.load(folder)
    five, ten = models.models
    assert five.trained_on == "polygon 2021-01-04..2026-11-13" and five.metrics == {"ic": 0.1}
    assert ten.trained_on.startswith("simulator seed 7, ")
    table = models.win_prob
    assert table is not None and table.model == "alpha_10d" and table.version == ten.version
    assert len(table.edges) == len(table.p_up) + 1


@pytest.mark.parametrize("win_prob", [None, {"edges": [0.0, 1.0]}, {"edges": [0.0], "p_up": [0.5]}, "table"])
def test_a_win_probability_model_without_its_table_is_refused(tmp_path: Path, win_prob: object) -> None:
    folder = copy_models(tmp_path / "m")
    edit_meta(folder, "alpha_10d", win_prob=win_prob)
    with pytest.raises(ModelMismatchError, match=r"alpha_10d\.json has no win_prob table"):
        AlphaModels.load(folder)
    edit_meta(folder, "alpha_5d", win_prob=None)  # only the win-probability model needs one
    edit_meta(folder, "alpha_10d", win_prob={"edges": [-1.0, 0.0, 1.0], "p_up": [0.4, 0.6]})
    assert AlphaModels.load(folder).win_prob is not None
