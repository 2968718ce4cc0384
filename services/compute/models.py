"""The alpha models: load, check against the feature list, score a chunk, explain a few rows.

Each model is ``<dir>/<name>.ubj`` (XGBoost UBJSON) beside ``<dir>/<name>.json`` (metadata, see
train.py). A model trained on another feature version or feature list is refused with
:class:`ModelMismatchError`, because its columns would silently mean something else.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import xgboost as xgb

from services.compute.features import FEATURE_LABELS, FEATURE_VERSION, FEATURES
from services.contract.models import MODEL_NAMES as MODEL_NAMES  # the order of a scores block


class ModelMismatchError(RuntimeError):
    """A model file is missing, unreadable, or was trained on a different feature list."""


def model_paths(model_dir: Path, name: str) -> tuple[Path, Path]:
    """(UBJSON model, JSON metadata) paths of model ``name``."""
    return Path(model_dir) / f"{name}.ubj", Path(model_dir) / f"{name}.json"


@dataclass(frozen=True)
class Contribution:
    feature: str
    label: str
    value: float
    contribution: float


@dataclass(frozen=True)
class Explanation:
    """One model's decomposition of one row's score."""

    model: str
    base_value: float
    prediction: float
    contributions: list[Contribution]


@dataclass(frozen=True)
class AlphaModel:
    name: str
    booster: xgb.Booster
    meta: dict[str, Any]

    @property
    def version(self) -> str:
        return str(self.meta.get("version", ""))


def load_model(model_dir: Path, name: str, threads: int = 1) -> AlphaModel:
    """Load one model and refuse it unless its metadata and booster match FEATURES / FEATURE_VERSION."""
    model_path, meta_path = model_paths(model_dir, name)
    for path in (model_path, meta_path):
        if not path.is_file():
            raise ModelMismatchError(
                f"model file {path} not found: run `technic train` "
                "or point TECHNIC_MODEL_DIR at a folder holding the models"
            )
    try:
        meta = orjson.loads(meta_path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise ModelMismatchError(f"model metadata {meta_path} is not valid JSON: {exc}") from None
    if meta.get("feature_version") != FEATURE_VERSION:
        raise ModelMismatchError(
            f"model {name} was trained on feature version {meta.get('feature_version')!r}, "
            f"this code computes {FEATURE_VERSION!r}: retrain with `technic train`"
        )
    if list(meta.get("features", [])) != list(FEATURES):
        raise ModelMismatchError(
            f"model {name} expects features {meta.get('features')}, "
            f"this code computes {list(FEATURES)}: retrain with `technic train`"
        )
    booster = xgb.Booster()
    try:
        booster.load_model(model_path)
    except xgb.core.XGBoostError as exc:
        raise ModelMismatchError(f"model {model_path} cannot be loaded: {exc}") from None
    if booster.feature_names is not None and list(booster.feature_names) != list(FEATURES):
        raise ModelMismatchError(
            f"model {model_path} was fitted on features {booster.feature_names}, this code computes {list(FEATURES)}"
        )
    if booster.num_features() != len(FEATURES):
        raise ModelMismatchError(
            f"model {model_path} takes {booster.num_features()} features, this code computes {len(FEATURES)}"
        )
    booster.set_param({"nthread": threads})
    return AlphaModel(name=name, booster=booster, meta=meta)


class AlphaModels:
    """Both alpha models, scored together on a (symbols, features) float32 matrix."""

    def __init__(self, models: list[AlphaModel]) -> None:
        self.models = models
        self.names = tuple(m.name for m in models)

    @classmethod
    def load(cls, model_dir: Path, threads: int = 1) -> AlphaModels:
        return cls([load_model(model_dir, name, threads) for name in MODEL_NAMES])

    @property
    def versions(self) -> dict[str, str]:
        return {m.name: m.version for m in self.models}

    def score(self, features: np.ndarray, ok: np.ndarray | None = None) -> np.ndarray:
        """(symbols, models) float32 predictions: one ``inplace_predict`` per model; NaN where not ``ok``."""
        out = np.full((features.shape[0], len(self.models)), np.nan, dtype=np.float32)
        rows = np.flatnonzero(ok) if ok is not None else np.arange(features.shape[0])
        if rows.size == 0:
            return out
        x = np.ascontiguousarray(features[rows], dtype=np.float32)
        for k, model in enumerate(self.models):
            out[rows, k] = model.booster.inplace_predict(x, missing=np.nan)
        return out

    def explain(self, features: np.ndarray, top_k: int = 5) -> list[list[Explanation]]:
        """Per row, per model: SHAP contributions (``pred_contribs``), the ``top_k`` largest by magnitude."""
        x = np.ascontiguousarray(features, dtype=np.float32)
        top_k = max(1, min(top_k, len(FEATURES)))
        dmatrix = xgb.DMatrix(x, feature_names=list(FEATURES), missing=np.nan)
        per_model = [m.booster.predict(dmatrix, pred_contribs=True) for m in self.models]
        result: list[list[Explanation]] = []
        for r in range(x.shape[0]):
            row: list[Explanation] = []
            for model, contribs in zip(self.models, per_model, strict=True):
                phi = contribs[r, :-1]
                order = np.argsort(-np.abs(phi), kind="stable")[:top_k]
                row.append(
                    Explanation(
                        model=model.name,
                        base_value=float(contribs[r, -1]),
                        prediction=float(contribs[r].sum()),
                        contributions=[
                            Contribution(
                                feature=FEATURES[i],
                                label=FEATURE_LABELS[FEATURES[i]],
                                value=float(x[r, i]),
                                contribution=float(phi[i]),
                            )
                            for i in order
                        ],
                    )
                )
            result.append(row)
        return result
