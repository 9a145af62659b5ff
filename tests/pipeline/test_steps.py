"""ml.pipeline.steps on tiny data: what each step returns, logs, records and refuses."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from ml.errors import GateFailedError, UserError
from ml.evaluation.champion import Comparison
from ml.evaluation.gates import Champion
from ml.pipeline import steps
from ml.pipeline.summary import read_summary
from ml.registry.model_registry import ModelRegistry


class Crash(RuntimeError):
    pass


def _through_evaluate(params: Any, run: Any) -> tuple[str, dict[str, Any]]:
    features = steps.validate(params, run)["features_path"]
    run_dir = steps.train(params, run, features)["run_dir"]
    return run_dir, steps.evaluate(params, run, run_dir)["metrics"]


def test_validate_defaults_to_the_configs_features_dir(
    home: Path, params: Any, pipeline_run: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="ml.pipeline"):
        out = steps.validate(params(features_path=None), pipeline_run())
    assert out == {"features_path": "data/features/v1"}
    assert "✅ train data: data/features/v1/train/data.parquet" in caplog.text
    summary = read_summary("training_pipeline", "manual__1")
    assert summary is not None and summary["steps"]["validate"]["state"] == "success"


def test_validate_reports_every_problem(home: Path, params: Any, pipeline_run: Any) -> None:
    with pytest.raises(UserError, match=r"features directory .*nowhere does not exist"):
        steps.validate(params(features_path=str(home / "nowhere")), pipeline_run())


def test_train_retry_resumes_from_the_last_epoch_checkpoint(
    home: Path,
    params: Any,
    pipeline_run: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from ml.training.trainer import Trainer

    original = Trainer.checkpoint_and_early_stop

    def crash_in_epoch_2(self: Trainer, epoch: int, record: dict[str, Any]) -> bool:
        if epoch == 2:
            raise Crash("worker lost")
        return original(self, epoch, record)

    monkeypatch.setattr(Trainer, "checkpoint_and_early_stop", crash_in_epoch_2)
    with pytest.raises(Crash):
        steps.train(params(epochs=3), pipeline_run("manual__retry"), None)
    (run,) = (home / "experiments" / "runs").iterdir()
    assert (run / "checkpoint_last.pt").is_file() and not (run / "COMPLETE").exists()
    monkeypatch.setattr(Trainer, "checkpoint_and_early_stop", original)
    caplog.clear()  # keep only the retry's lines
    with caplog.at_level(logging.INFO, logger="ml.pipeline"):
        out = steps.train(params(epochs=3), pipeline_run("manual__retry"), None)
    assert home / out["run_dir"] == run and (run / "COMPLETE").is_file()
    assert "Epoch 1/3" not in caplog.text, "epoch 1 was trained again"
    assert "Epoch 3/3: Train Loss: " in caplog.text
    assert "resumed from the checkpoint of epoch 1" in caplog.text


def test_dated_tasks_find_the_run_their_date_trained(
    home: Path, params: Any, pipeline_run: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # `airflow tasks test training_pipeline <task> 2024-11-15`: each task in its own
    # temporary DAG run of that date, no XComs between them.
    trained = steps.train(params(), pipeline_run("__airflow_temporary_run_a"), None)["run_dir"]
    steps.train(params(), pipeline_run("other", logical_date=None), None)  # another run
    with caplog.at_level(logging.INFO, logger="ml.pipeline"):
        metrics = steps.evaluate(params(), pipeline_run("__airflow_temporary_run_b"), None)
    assert metrics["metrics"]["run_dir"] == trained
    assert f"No run_dir from train_model: using this run's {trained}" in caplog.text
    out = steps.register(params(), pipeline_run("__airflow_temporary_run_c"), None, None)
    assert out["model_version"] == "v1"
    meta = ModelRegistry().show("ctr_model", "v1")["metadata"]
    assert meta["source"]["run_dir"] == str(home / trained)


def test_evaluate_without_a_run_of_this_date_says_how_to_make_one(
    home: Path, params: Any, pipeline_run: Any
) -> None:
    steps.train(params(), pipeline_run("manual__other_day", logical_date=None), None)
    with pytest.raises(UserError, match=r"airflow tasks test training_pipeline train_model"):
        steps.evaluate(params(), pipeline_run("__airflow_temporary_run_x"), None)


def test_evaluate_logs_the_spec_metric_lines_and_passes_on_gate_results(
    home: Path, params: Any, pipeline_run: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="ml.pipeline"):
        run_dir, metrics = _through_evaluate(params(), pipeline_run())
    messages = [r.getMessage() for r in caplog.records]
    i = messages.index("📊 Model Metrics:")
    assert messages[i + 1].startswith("   test_accuracy: 0.")
    assert messages[i + 2].startswith("   test_auc: 0.")
    assert metrics["run_dir"] == run_dir and metrics["champion"] is None
    assert [g["name"] for g in metrics["gates"]] == ["min_auc", "min_accuracy", "champion"]


def test_gate_failure_registers_nothing(home: Path, params: Any, pipeline_run: Any) -> None:
    run_dir = steps.train(params(), pipeline_run(), None)["run_dir"]
    with pytest.raises(GateFailedError, match=r"below the threshold min_auc=0\.9900"):
        steps.evaluate(params(min_auc=0.99), pipeline_run(), run_dir)
    with pytest.raises(GateFailedError, match=r"min_accuracy=0\.9990.*nothing was registered"):
        steps.register(params(min_accuracy=0.999), pipeline_run(), run_dir, None)
    assert ModelRegistry().list_models("staging") == {}
    summary = read_summary("training_pipeline", "manual__1")
    assert summary is not None and summary["steps"]["evaluate"]["state"] == "failed"


def test_baseline_gate_fails_a_crippled_model_and_points_at_oov(
    home: Path, params: Any, pipeline_run: Any
) -> None:
    crippled = params(baseline_tolerance=0.0, config_overrides={"data": {"min_frequency": 10**6}})
    run_dir = steps.train(crippled, pipeline_run(), None)["run_dir"]
    with pytest.raises(GateFailedError, match=r"logistic-regression baseline.*out-of-vocabulary"):
        steps.evaluate(crippled, pipeline_run(), run_dir)
    summary = read_summary("training_pipeline", "manual__1")
    assert summary is not None and summary["metrics"]["baseline"]["test_auc"] > 0.6


def test_register_once_per_training_run(home: Path, params: Any, pipeline_run: Any) -> None:
    run_dir, metrics = _through_evaluate(params(), pipeline_run())
    first = steps.register(params(), pipeline_run(), run_dir, metrics)
    assert first == {"model_version": "v1", "registered_path": "models/staging/ctr_model/v1"}
    assert steps.register(params(), pipeline_run(), run_dir, metrics) == first
    assert ModelRegistry().list_models("staging") == {"ctr_model": ["v1"]}


def test_champion_challenger_scores_production_on_the_same_split(
    home: Path, params: Any, pipeline_run: Any
) -> None:
    run1, metrics1 = _through_evaluate(params(), pipeline_run("manual__a"))
    steps.register(params(auto_promote=True), pipeline_run("manual__a"), run1, metrics1)
    assert ModelRegistry().current_version("ctr_model") == "v1"
    _, metrics = _through_evaluate(params(epochs=2), pipeline_run("manual__b"))
    champion = metrics["champion"]
    assert champion["version"] == "v1" and 0.0 <= champion["test_auc"] <= 1.0
    assert champion["challenger_test_auc"] == pytest.approx(metrics["test_auc"], abs=1e-6)


def test_champion_gate_fails_a_regression(
    home: Path, params: Any, pipeline_run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir = steps.train(params(), pipeline_run(), None)["run_dir"]
    fake = Comparison(Champion("v7", 0.999, 0.9), {"auc": 0.70, "accuracy": 0.8})
    monkeypatch.setattr("ml.evaluation.champion.compare_with_production", lambda *a, **k: fake)
    with pytest.raises(GateFailedError, match=r"below production v7 \(0\.9990\).*max_auc_drop"):
        steps.evaluate(params(max_auc_drop=0.005), pipeline_run(), run_dir)


def test_finish_marks_the_summary_and_names_the_version(
    home: Path, params: Any, pipeline_run: Any
) -> None:
    run_dir, metrics = _through_evaluate(params(), pipeline_run())
    out = steps.register(params(), pipeline_run(), run_dir, metrics)
    text = steps.finish(params(), pipeline_run(), metrics, **out)
    assert text.startswith("🎉 Training Pipeline Complete!")
    assert "Model: ctr_model v1 (staging)" in text
    summary = read_summary("training_pipeline", "manual__1")
    assert summary is not None and summary["state"] == "success"
    assert summary["model_version"] == "v1" and summary["metrics"]["test_auc"] > 0


def test_record_failure_keeps_the_whole_message(home: Path, pipeline_run: Any) -> None:
    steps.record_failure(pipeline_run(), "validate", UserError("line one\n  - line two"))
    summary = read_summary("training_pipeline", "manual__1")
    assert summary is not None and summary["state"] == "failed"
    assert summary["failure"] == {
        "step": "validate",
        "type": "UserError",
        "message": "line one\n  - line two",
    }
