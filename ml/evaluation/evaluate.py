"""Recompute a model's metrics from its checkpoint and the feature data.

Training writes its own ``metrics.json``; these functions recompute the numbers
independently from ``model_best.pt`` (or a registered ``model.pt``), so a gate or a
person can check a run without trusting its files.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ml import paths
from ml.data.layout import split_file
from ml.data.row_groups import iter_split
from ml.errors import DataLoadError, TrainingError
from ml.metrics import binary_metrics
from ml.serving.predictor import Predictor
from ml.training import run_dir as rd
from ml.training.checkpoint import load_checkpoint


def evaluate_checkpoint(
    checkpoint: str | os.PathLike[str],
    features_dir: str | os.PathLike[str],
    split: str = "test",
) -> dict[str, Any]:
    """Score one split with a checkpoint.

    Args:
        checkpoint: a checkpoint file, run directory or registry version directory.
        features_dir: directory holding ``<split>/data.parquet``.
        split: which split to score.

    Returns:
        ``{"auc", "logloss", "accuracy", "rows"}``.

    Raises:
        CheckpointError: the checkpoint cannot be loaded.
        DataLoadError: the split file or one of the model's columns is missing.
    """
    predictor = Predictor.load(checkpoint)
    label = predictor.features.label
    labels, probs = [], []
    # one row group slice at a time: memory bounded by a slice plus the scores
    for chunk in iter_split(features_dir, split, predictor.features):
        labels.append(chunk.frame[label].to_numpy())
        probs.append(predictor.predict_proba(chunk.frame))
    if not labels:
        raise DataLoadError(f"{split_file(features_dir, split)} has no rows")
    return binary_metrics(np.concatenate(labels), np.concatenate(probs))


def evaluate_run(
    run_dir: str | os.PathLike[str],
    *,
    split: str = "test",
    features_dir: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Recompute a training run's metrics on ``split`` (default: the test split).

    Args:
        run_dir: a run directory from :func:`ml.training.trainer.train`.
        split: which split to score.
        features_dir: override the data the run recorded in ``run.json``.

    Returns:
        ``{"<split>_auc", "<split>_logloss", "<split>_accuracy", "<split>_rows"}``.

    Raises:
        CheckpointError: no loadable ``model_best.pt``.
        DataLoadError: the features are gone or lack the model's columns.
    """
    root = paths.resolve(run_dir)
    if features_dir is None:
        features_dir = _recorded_features_dir(root)
    m = evaluate_checkpoint(root, features_dir, split)
    return {f"{split}_{k}": v for k, v in m.items()}


def _recorded_features_dir(run_dir: Path) -> str:
    """The features directory a run trained on: run.json's, else its checkpoint config's."""
    if (run_dir / rd.RUN_JSON).is_file():
        try:
            recorded = rd.read_run_info(run_dir).get("features_dir")
        except TrainingError:
            recorded = None
        if recorded:
            return str(recorded)
    # An unfinished run has no run.json yet; its checkpoint knows the config it used.
    recorded = load_checkpoint(run_dir).get("config", {}).get("data", {}).get("features_dir")
    if not recorded:
        raise DataLoadError(
            f"{run_dir} records no features directory; pass features_dir (--features-dir)"
        )
    return str(recorded)
