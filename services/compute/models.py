"""The alpha models: load, check against the feature list, score a chunk, explain a few rows.

Each model is ``<dir>/<name>.ubj`` (XGBoost UBJSON) beside ``<dir>/<name>.json`` (metadata, see
train.py). A model trained on another feature version or feature list is refused with
:class:`ModelMismatchError`, because its columns would silently mean something else; so is a
win-probability model without its calibration table, because the ranker cannot rank without it.
The metadata also says what a replica reports about its models (``Compute.Describe``): version,
the market it was trained on, out-of-sample metrics and the win-probability table.
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
from services.contract.models import WIN_PROB_MODEL


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


def market_label(data_source: Any, training_window: Any) -> str:
    """What a model was trained on, as one phrase: ``"simulator seed 7, 2024-09-11..2026-10-28"``.

    Built from the metadata's ``data_source`` (kind and, for the simulator, its seed) and
    ``training_window``; empty when neither says anything.
    """
    source = data_source if isinstance(data_source, dict) else {}
    window = training_window if isinstance(training_window, dict) else {}
    kind = str(source.get("kind", ""))
    config = source["config"] if isinstance(source.get("config"), dict) else {}
    if kind == "marketsim":
        seed = config.get("seed")
        label = f"simulator seed {seed}" if seed is not None else "simulator"
    else:
        label = kind
    if window.get("start") and window.get("end"):
        span = f"{window['start']}..{window['end']}"
        label = f"{label}, {span}" if label else span
    return label


@dataclass(frozen=True)
class WinProbTable:
    """P(forward return > 0) per bin of a model's score (edges: len(p_up) + 1, increasing)."""

    model: str
    version: str
    edges: tuple[float, ...]
    p_up: tuple[float, ...]


@dataclass(frozen=True)
class AlphaModel:
    name: str
    booster: xgb.Booster
    meta: dict[str, Any]

    @property
    def version(self) -> str:
        return str(self.meta.get("version", ""))

    @property
    def trained_on(self) -> str:
        """The metadata's ``market``; without one, the phrase its data source and training window give."""
        market = self.meta.get("market")
        if isinstance(market, str) and market:
            return market
        return market_label(self.meta.get("data_source"), self.meta.get("training_window"))

    @property
    def metrics(self) -> dict[str, float]:
        """The out-of-sample figures of training that are numbers (ic, rank_ic, icir, ...)."""
        metrics = self.meta.get("metrics")
        if not isinstance(metrics, dict):
            return {}
        return {str(k): float(v) for k, v in metrics.items() if isinstance(v, int | float) and not isinstance(v, bool)}

    @property
    def win_prob(self) -> WinProbTable | None:
        """The metadata's win-probability table; None when it has none in the shape edges / p_up."""
        table = self.meta.get("win_prob")
        if not isinstance(table, dict):
            return None
        edges, p_up = table.get("edges"), table.get("p_up")
        if not isinstance(edges, list) or not isinstance(p_up, list) or len(edges) != len(p_up) + 1 or not p_up:
            return None
        try:
            return WinProbTable(self.name, self.version, tuple(float(e) for e in edges), tuple(float(p) for p in p_up))
        except (TypeError, ValueError):
            return None


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
    model = AlphaModel(name=name, booster=booster, meta=meta)
    if name == WIN_PROB_MODEL and model.win_prob is None:
        raise ModelMismatchError(
            f"model metadata {meta_path} has no win_prob table (edges, p_up): retrain with `technic train`"
        )
    return model


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

    @property
    def win_prob(self) -> WinProbTable | None:
        """The calibration of the 10-session win probability (from WIN_PROB_MODEL's metadata)."""
        return next((m.win_prob for m in self.models if m.name == WIN_PROB_MODEL), None)

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
