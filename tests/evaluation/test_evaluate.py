from __future__ import annotations

import json
from pathlib import Path

import pytest

from ml.config import config_from_dict
from ml.errors import DataLoadError
from ml.evaluation.evaluate import evaluate_checkpoint, evaluate_run
from ml.training.job import train


@pytest.fixture(scope="module")
def run_dir(tiny_features_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from ml.data.generate.world_default import DEFAULT_SPEC

    cfg = config_from_dict(
        {
            "features": DEFAULT_SPEC.to_dict(),
            "data": {"features_dir": str(tiny_features_dir)},
            "model": {"name": "logreg"},
            "training": {
                "batch_size": 512,
                "epochs": 2,
                "learning_rate": 0.02,
                "device": "cpu",
                "num_threads": 1,
            },
            "output": {"runs_dir": str(tmp_path_factory.mktemp("runs"))},
        }
    )
    return train(cfg, log=lambda _: None, progress=False).run_dir


def test_evaluate_run_recomputes_the_recorded_test_metrics(run_dir: Path) -> None:
    recorded = json.loads((run_dir / "metrics.json").read_text())
    got = evaluate_run(run_dir)
    assert set(got) == {"test_auc", "test_logloss", "test_accuracy", "test_rows"}
    for key in ("test_auc", "test_logloss", "test_accuracy"):
        assert got[key] == pytest.approx(recorded[key], abs=1e-6), key
    assert got["test_rows"] == recorded["rows"]["test"]


def test_evaluate_checkpoint_on_val_matches_val_auc(run_dir: Path, tiny_features_dir: Path) -> None:
    recorded = json.loads((run_dir / "metrics.json").read_text())
    got = evaluate_checkpoint(run_dir / "model_best.pt", tiny_features_dir, split="val")
    assert set(got) == {"auc", "logloss", "accuracy", "rows"}
    assert got["auc"] == pytest.approx(recorded["val_auc"], abs=1e-6)


def test_evaluate_run_missing_features_is_a_clear_error(run_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(DataLoadError, match="ctr-pipeline data generate"):
        evaluate_run(run_dir, features_dir=tmp_path / "gone")
