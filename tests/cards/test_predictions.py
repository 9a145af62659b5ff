"""test_predictions.npz: saved, read back, refused when broken, rebuilt when missing."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ml.cards.predictions import (
    Predictions,
    load_predictions,
    predictions_for_card,
    save_predictions,
)
from ml.errors import CardError
from ml.evaluation.evaluate import evaluate_run
from ml.metrics import roc_auc
from ml.training import run_dir as rd


def test_round_trip_keeps_every_array_and_field(tmp_path: Path) -> None:
    preds = Predictions(
        labels=np.array([0, 1, 1, 0], dtype=np.int8),
        scores=np.array([0.1, 0.8, 0.6, 0.3]),
        production_scores=np.array([0.2, 0.7, 0.4, 0.5]),
        production_version="v4",
        features_dir="data/features/v1",
        score_seconds=0.01,
        raw_scores=np.array([0.05, 0.9, 0.7, 0.2]),
    )
    save_predictions(tmp_path, preds)
    back = load_predictions(tmp_path)
    assert back is not None
    np.testing.assert_array_equal(back.labels, preds.labels)
    np.testing.assert_array_equal(back.scores, preds.scores)
    assert back.production_scores is not None
    np.testing.assert_array_equal(back.production_scores, preds.production_scores)
    assert back.raw_scores is not None
    np.testing.assert_array_equal(back.raw_scores, preds.raw_scores)
    assert back.meta() == preds.meta()


def test_missing_file_is_none_and_broken_file_is_an_error(tmp_path: Path) -> None:
    assert load_predictions(tmp_path) is None
    (tmp_path / rd.TEST_PREDICTIONS).write_bytes(b"not an npz")
    with pytest.raises(CardError, match=r"test_predictions.npz cannot be read"):
        load_predictions(tmp_path)


def test_lengths_must_agree() -> None:
    with pytest.raises(CardError, match="3 labels, 2 scores"):
        Predictions(labels=np.zeros(3, np.int8), scores=np.zeros(2))


def test_evaluate_saved_the_scores_training_measured(shared_home: Any) -> None:
    preds = load_predictions(shared_home.run_b)
    assert preds is not None and preds.production_version == "v1"
    recomputed = evaluate_run(shared_home.run_b)
    assert preds.rows == recomputed["test_rows"]
    assert roc_auc(preds.labels, preds.scores) == pytest.approx(recomputed["test_auc"], abs=1e-9)


def test_rebuilt_from_the_recorded_features_when_missing(shared_home: Any, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(shared_home.run_b, run)
    (run / rd.TEST_PREDICTIONS).unlink()
    preds, why = predictions_for_card(run)
    assert why is None and preds is not None and preds.production_scores is None
    saved = load_predictions(shared_home.run_b)
    assert saved is not None
    np.testing.assert_allclose(preds.scores, saved.scores, atol=1e-12)


def test_missing_features_give_the_reason(shared_home: Any, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(shared_home.run_b, run)
    (run / rd.TEST_PREDICTIONS).unlink()
    (run / rd.RUN_JSON).write_text("{}")
    assert predictions_for_card(run) == (None, "the run's run.json records no features directory")
