"""Fixtures of the ranker tests: a model-metadata folder the tests write themselves."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from services.ranker.scoring import WinProbCalibration, load_calibration

# A calibration table in the shape of contract 3 (edges of the prediction, P(return > 0) per bin).
WIN_PROB = {"edges": [-1e9, -1.0, -0.25, 0.25, 1.0, 1e9], "p_up": [0.40, 0.47, 0.51, 0.55, 0.62]}


def write_metadata(folder: Path, win_prob: object = WIN_PROB, version: str = "test-10d") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "alpha_10d.json"
    path.write_bytes(
        orjson.dumps(
            {
                "name": "alpha_10d",
                "version": version,
                "feature_version": "synthetic-1",
                "horizon": 10,
                "win_prob": win_prob,
            }
        )
    )
    return path


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "artifacts"
    write_metadata(folder)
    return folder


@pytest.fixture
def calibration(model_dir: Path) -> WinProbCalibration:
    return load_calibration(model_dir)
