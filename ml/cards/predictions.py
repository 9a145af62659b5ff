"""The test split's labels and scores: what a model card's plots and comparison need.

The pipeline's evaluate step scores the new model (the challenger) and, when there is
one, the production model on the same test rows and saves them in the run directory as
``test_predictions.npz`` (:data:`ml.training.run_dir.TEST_PREDICTIONS`): ``labels``
(int8), ``scores`` and ``production_scores`` (float64, same order), ``raw_scores`` (the
model's scores before its calibration map, when it has one), plus a JSON ``meta``
entry (production version, features directory, split, scoring time). Registration
builds the card from it; ``registry register`` by hand rebuilds it from the run's
recorded features (:func:`score_run`).
"""

from __future__ import annotations

import io
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ml import paths
from ml.errors import CardError, CtrPipelineError
from ml.fsutil import atomic_write_bytes
from ml.training import run_dir as rd

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Predictions:
    """Labels and scores of one split, for the model and (optionally) production."""

    labels: npt.NDArray[np.int8]
    scores: npt.NDArray[np.float64]
    production_scores: npt.NDArray[np.float64] | None = None
    production_version: str | None = None
    features_dir: str | None = None
    split: str = "test"
    score_seconds: float | None = None
    raw_scores: npt.NDArray[np.float64] | None = None

    def __post_init__(self) -> None:
        n = self.labels.shape[0]
        if self.scores.shape != (n,) or (
            self.production_scores is not None and self.production_scores.shape != (n,)
        ):
            raise CardError(
                f"predictions disagree in length: {n} labels, {self.scores.shape[0]} scores"
            )

    @property
    def rows(self) -> int:
        return int(self.labels.shape[0])

    def meta(self) -> dict[str, Any]:
        """Everything but the arrays (what the saved predictions' metadata records)."""
        keys = ("production_version", "features_dir", "split", "rows", "score_seconds")
        return {k: getattr(self, k) for k in keys}


def save_predictions(run_dir: str | os.PathLike[str], preds: Predictions) -> Path:
    """Write ``test_predictions.npz`` into ``run_dir`` atomically; returns its path."""
    arrays: dict[str, Any] = {"labels": preds.labels, "scores": preds.scores}
    if preds.production_scores is not None:
        arrays["production_scores"] = preds.production_scores
    if preds.raw_scores is not None:
        arrays["raw_scores"] = preds.raw_scores
    arrays["meta"] = np.frombuffer(json.dumps(preds.meta()).encode(), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    path = paths.resolve(run_dir) / rd.TEST_PREDICTIONS
    atomic_write_bytes(path, buf.getvalue())
    return path


def load_predictions(run_dir: str | os.PathLike[str]) -> Predictions | None:
    """The run's saved predictions, or None when it has none.

    Raises:
        CardError: the file exists but cannot be read.
    """
    path = paths.resolve(run_dir) / rd.TEST_PREDICTIONS
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            meta = json.loads(bytes(npz["meta"]).decode())
            prod = npz["production_scores"] if "production_scores" in npz.files else None
            raw = npz["raw_scores"] if "raw_scores" in npz.files else None
            return Predictions(
                labels=npz["labels"].astype(np.int8),
                scores=npz["scores"].astype(np.float64),
                production_scores=None if prod is None else prod.astype(np.float64),
                production_version=meta.get("production_version"),
                features_dir=meta.get("features_dir"),
                split=str(meta.get("split") or "test"),
                score_seconds=meta.get("score_seconds"),
                raw_scores=None if raw is None else raw.astype(np.float64),
            )
    except (OSError, ValueError, KeyError) as exc:
        raise CardError(f"{path} cannot be read ({exc}); delete it and register again") from exc


def score_model_on(
    predictor: Any,
    features_dir: str | os.PathLike[str],
    *,
    production: Any = None,
    production_version: str | None = None,
    split: str = "test",
) -> Predictions:
    """Score ``predictor`` (and ``production``) on one split of ``features_dir``.

    Raises:
        DataLoadError: the split or a column either model needs is missing.
    """
    from ml.data.layout import split_file
    from ml.data.row_groups import iter_split
    from ml.errors import DataLoadError

    spec = predictor.features
    if production is not None:
        spec = union_spec(spec, production.features.feature_columns)
    method = (getattr(predictor, "calibration", None) or {}).get("method", "none")
    labels, scores, prods, raws = [], [], [], []
    seconds = 0.0
    # one row group slice at a time: memory bounded by a slice plus the scores
    for chunk in iter_split(features_dir, split, spec):
        df = chunk.frame
        labels.append(df[spec.label].to_numpy().astype(np.int8))
        start = time.perf_counter()
        scores.append(predictor.predict_proba(df))
        seconds += time.perf_counter() - start
        if production is not None:
            prods.append(production.predict_proba(df))
        if method != "none":
            raws.append(predictor.predict_proba(df, calibrated=False))
    if not labels:
        raise DataLoadError(f"{split_file(features_dir, split)} has no rows")
    prod = np.concatenate(prods) if production is not None else None
    raw = np.concatenate(raws) if method != "none" else None
    return Predictions(
        labels=np.concatenate(labels),
        scores=np.concatenate(scores).astype(np.float64),
        production_scores=None if prod is None else np.asarray(prod, dtype=np.float64),
        production_version=production_version if production is not None else None,
        features_dir=str(features_dir),
        split=split,
        score_seconds=round(seconds, 4),
        raw_scores=None if raw is None else np.asarray(raw, dtype=np.float64),
    )


def union_spec(spec: Any, columns: Any) -> Any:
    """``spec`` widened to ``columns`` another model reads (as categoricals)."""
    from ml.config import FeatureSpec

    extra = tuple(sorted(set(columns) - set(spec.all_columns)))
    return FeatureSpec(spec.label, spec.categorical + extra, spec.numeric)


def score_run(
    run_dir: str | os.PathLike[str],
    features_dir: str | os.PathLike[str],
    *,
    registry: Any = None,
    model_name: str | None = None,
) -> Predictions:
    """Score a run's model and, when ``model_name`` has one, production's current version
    on the test split of ``features_dir``.

    Raises:
        CheckpointError: the run's model cannot be loaded.
        DataLoadError: the test split is missing or lacks a column.
        RegistryError: production's ``current`` fails verification.
    """
    from ml.serving.predictor import Predictor

    predictor = Predictor.load(paths.resolve(run_dir))
    production, version = None, None
    if registry is not None and model_name is not None:
        version = registry.current_version(model_name)
        if version is not None:
            production = registry.load(model_name, "current")
    return score_model_on(
        predictor, paths.location(features_dir), production=production, production_version=version
    )


def predictions_for_card(
    run_dir: str | os.PathLike[str], *, registry: Any = None, model_name: str | None = None
) -> tuple[Predictions | None, str | None]:
    """The run's saved predictions, else rebuilt from its recorded features.

    Returns:
        ``(predictions, None)``, or ``(None, why they are missing)``.
    """
    root = paths.resolve(run_dir)
    try:
        saved = load_predictions(root)
    except CardError as exc:
        log.warning("%s", exc)
        saved = None
    if saved is not None:
        return saved, None
    try:
        info = rd.read_run_info(root)
    except CtrPipelineError as exc:  # the card says why; registration goes on
        return None, f"the run's {rd.RUN_JSON} cannot be read ({exc})"
    recorded = info.get("features_dir")
    if not recorded:
        return None, f"the run's {rd.RUN_JSON} records no features directory"
    features = paths.location(str(recorded))
    from ml.data.layout import split_file

    if not split_file(features, "test").is_file():
        return None, (
            f"the test split the run trained with ({split_file(features, 'test')}) is gone, "
            "so no predictions could be made"
        )
    try:
        return score_run(root, features, registry=registry, model_name=model_name), None
    except (CtrPipelineError, OSError, ValueError, RuntimeError) as exc:
        # The card says why; registration goes on.
        return None, f"scoring the test split failed: {exc}"


def save_run_predictions(
    run_dir: str | os.PathLike[str],
    features_dir: str | os.PathLike[str],
    *,
    registry: Any = None,
    model_name: str | None = None,
) -> Path | None:
    """Score the run (and production) on the test split and save ``test_predictions.npz``
    for the model card; a failure is logged, never raised (the card will say why).
    """
    try:
        preds = score_run(run_dir, features_dir, registry=registry, model_name=model_name)
        path = save_predictions(run_dir, preds)
    except (CtrPipelineError, OSError, ValueError, RuntimeError) as exc:
        log.warning("⚠️  Test predictions for the model card not saved: %s", exc)
        return None
    log.info(
        "🧾 Test predictions for the model card: %s rows%s → %s",
        f"{preds.rows:,}",
        f" (and production {preds.production_version})" if preds.production_version else "",
        path.name,
    )
    return path
