"""ml.pipeline.tuning: the DAG's tuning group without Airflow (prepare, work, best trial)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from ml.errors import TrainingError, TuningError
from ml.pipeline import steps
from ml.pipeline import tuning as pt
from ml.pipeline.summary import read_summary
from ml.training import run_dir as rd
from ml.tuning import worker as wk
from testkit.tuning import tuning_config


@pytest.fixture
def tuned(home: Path, params: Any) -> Any:
    (home / "config" / "tune.yaml").write_text(tuning_config(epochs=2))
    return lambda **kw: params(config_path="config/tune.yaml", **kw)


def test_prepare_with_zero_trials_names_no_workers(tuned: Any, pipeline_run: Any) -> None:
    assert pt.prepare(tuned(), pipeline_run(), None) == {"study": None, "workers": []}


def test_workers_then_train_best_adopts_the_best_trials_checkpoint_and_evaluate_scores_test(
    home: Path, tuned: Any, pipeline_run: Any
) -> None:
    params, run = tuned(tuning_trials=3, tuning_parallel=2), pipeline_run()
    created = pt.prepare(params, run, "data/features/v1")
    study = created["study"]
    assert [w["slot"] for w in created["workers"]] == [0, 1]
    assert created["workers"][0] == {"study": study, "slot": 0, "features_path": "data/features/v1"}
    first = pt.work(params, run, created["workers"][0])
    second = pt.work(params, run, created["workers"][1])
    assert (first["ran"], first["finished"], second["ran"]) == (3, 3, 0)

    out = steps.train(params, run, "data/features/v1", study)["run_dir"]
    run_dir = home / out
    assert run_dir.parent == home / "experiments" / "runs" and run.key in run_dir.name
    info = json.loads((run_dir / rd.RUN_JSON).read_text())
    assert info["dag_id"] == "training_pipeline" and info["tuning"]["study"] == study
    assert "test_auc" not in rd.read_metrics(run_dir)
    summary = read_summary(run.dag_id, run.run_id)
    assert summary is not None
    best = summary["tuning"]["best"]
    assert info["tuning"]["trial"] == best["number"]
    assert summary["tuning"]["trials"]["finished"] == 3
    assert (home / "experiments" / "tuning" / study / "tuning.json").is_file()

    metrics = steps.evaluate(params, run, out)["metrics"]
    assert 0.0 <= metrics["test_auc"] <= 1.0
    assert rd.read_metrics(run_dir)["test_auc"] == metrics["test_auc"]
    assert metrics["val_auc"] == pytest.approx(best["value"])
    text = steps.finish(params, run, metrics, "v1", "models/staging/ctr_model/v1")
    assert f"🔎 Tuned: best trial {best['number']} of study {study}" in text
    assert "trials: 3 ran, " in text

    # A retried train_model finds its own finished run directory again.
    assert steps.train(params, run, "data/features/v1", study)["run_dir"] == out


def test_train_best_retrains_when_the_trials_run_is_gone(
    home: Path, tuned: Any, pipeline_run: Any
) -> None:
    params, run = tuned(tuning_trials=1, tuning_parallel=1), pipeline_run()
    created = pt.prepare(params, run, None)
    pt.work(params, run, created["workers"][0])
    shutil.rmtree(home / "experiments" / "tuning" / created["study"])
    out = pt.train_best(params, run, None, created["study"])
    metrics = rd.read_metrics(home / out)
    assert "test_auc" in metrics  # an ordinary training run of the best parameters


def test_when_every_trial_fails_the_worker_fails_with_the_first_error(
    tuned: Any, pipeline_run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(trial: Any, ctx: Any) -> float:
        raise TrainingError(f"the training loss is nan at epoch 1 (trial {trial.number})")

    monkeypatch.setattr(wk, "run_trial", broken)
    params, run = tuned(tuning_trials=2, tuning_parallel=1), pipeline_run()
    created = pt.prepare(params, run, None)
    with pytest.raises(TuningError, match=r"the first: trial 0: TrainingError: the training loss"):
        pt.work(params, run, created["workers"][0])
    with pytest.raises(TuningError, match=r"no trial of study .* completed; trial 0: Training"):
        pt.train_best(params, run, None, created["study"])
