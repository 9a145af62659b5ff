"""Task bodies (dags/training_pipeline_tasks.py) on tiny data, without a scheduler."""

from __future__ import annotations

import logging
import re
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import training_pipeline_tasks as tasks  # type: ignore[import-not-found]
from airflow.sdk.exceptions import AirflowFailException
from testkit.airflow import small_config

from ml.evaluation.gates import Champion
from ml.registry.model_registry import ModelRegistry
from ml.training.run_dir import latest_complete_run

LOOSE = {"min_auc": 0.0, "min_accuracy": 0.0, "max_auc_drop": 1.0}


@pytest.fixture
def home(project_home: Path, tiny_features_dir: Path) -> Path:
    shutil.copytree(tiny_features_dir, project_home / "data" / "features" / "v1")
    (project_home / "config" / "small.yaml").write_text(small_config(epochs=2))
    return project_home


def _train(run_id: str, **kw: Any) -> str:
    out = tasks.train_model(
        None,
        config_path="config/small.yaml",
        default_features_path="data/features/v1",
        epochs=kw.pop("epochs", 1),
        dag_id="training_pipeline",
        run_id=run_id,
        started_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
        **kw,
    )
    return str(out["run_dir"])


def _evaluate(run_dir: str | None, **gates: float) -> dict[str, Any]:
    out = tasks.evaluate_model(
        run_dir, config_path="config/small.yaml", model_name="ctr_model", **{**LOOSE, **gates}
    )
    return dict(out["metrics"])


def _register(run_dir: str | None, metrics: Any, run_id: str, **kw: Any) -> dict[str, Any]:
    return tasks.register_model(
        run_dir,
        metrics,
        config_path="config/small.yaml",
        model_name="ctr_model",
        auto_promote=kw.pop("auto_promote", False),
        dag_id="training_pipeline",
        run_id=run_id,
        **{**LOOSE, **kw},
    )


def test_run_dir_for_is_keyed_by_the_dag_run(project_home: Path) -> None:
    t1 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    t2 = datetime(2026, 6, 1, tzinfo=timezone.utc)
    first = tasks.run_dir_for("experiments/runs", "ctr_model", "training_pipeline", "run_a", t1)
    assert first.name.startswith("ctr_model_20260101_000000_")
    first.mkdir(parents=True)
    # A retry (or a clear that reset the start time) finds the same directory.
    again = tasks.run_dir_for("experiments/runs", "ctr_model", "training_pipeline", "run_a", t2)
    assert again == first
    other = tasks.run_dir_for("experiments/runs", "ctr_model", "training_pipeline", "run_b", t1)
    assert other != first
    # ... and the name is one the training package recognises as a run.
    (first / "COMPLETE").write_text("done\n")
    assert latest_complete_run("experiments/runs", "ctr_model") == first


def test_train_model_retry_resumes_from_last_epoch_checkpoint(
    home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    class Crash(RuntimeError):
        pass

    def crash_after_epoch_one(line: str) -> None:
        if line.startswith("Epoch 2/"):
            raise Crash("worker lost")

    with pytest.raises(Crash):
        _train("manual__retry", epochs=3, log_line=crash_after_epoch_one)
    (run,) = (home / "experiments" / "runs").iterdir()
    assert (run / "checkpoint_last.pt").is_file()
    assert not (run / "COMPLETE").exists()

    lines: list[str] = []
    with caplog.at_level(logging.INFO, logger="training_pipeline_tasks"):
        run_dir = _train("manual__retry", epochs=3, log_line=lines.append)
    assert home / run_dir == run
    assert (run / "COMPLETE").is_file()
    assert not any(line.startswith("Epoch 1/") for line in lines), "epoch 1 was trained again"
    assert any(line.startswith("Epoch 3/3: Train Loss: ") for line in lines)
    assert "resumed from the checkpoint of epoch" in caplog.text


def test_evaluate_model_gate_failure_fails_without_retry(home: Path) -> None:
    run_dir = _train("manual__gate")
    with pytest.raises(
        AirflowFailException, match=r"test_auc 0\.\d{4} is below the threshold min_auc=0\.9900"
    ):
        _evaluate(run_dir, min_auc=0.99)
    with pytest.raises(AirflowFailException, match=r"min_accuracy=0\.9990.*nothing was registered"):
        _evaluate(run_dir, min_accuracy=0.999)


def test_evaluate_model_logs_the_spec_metric_lines(
    home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run_dir = _train("manual__lines")
    with caplog.at_level(logging.INFO, logger="training_pipeline_tasks"):
        metrics = _evaluate(run_dir)
    messages = [r.getMessage() for r in caplog.records]
    i = messages.index("📊 Model Metrics:")
    assert messages[i + 1].startswith("   test_accuracy: 0.")
    assert messages[i + 2].startswith("   test_auc: 0.")
    assert metrics["champion"] is None
    assert {g["name"] for g in metrics["gates"]} == {"min_auc", "min_accuracy", "champion"}
    assert metrics["run_dir"] == run_dir


def test_evaluate_model_without_upstream_uses_latest_complete_run(
    home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run_dir = _train("manual__latest")
    with caplog.at_level(logging.INFO, logger="training_pipeline_tasks"):
        metrics = _evaluate(None)
    assert metrics["run_dir"] == run_dir
    assert "using the latest complete training run" in caplog.text


def test_evaluate_model_without_any_run_says_how_to_supply_one(home: Path) -> None:
    with pytest.raises(
        AirflowFailException, match=r"no complete training run under experiments/runs.*train_model"
    ):
        _evaluate(None)


def test_register_model_registers_a_training_run_once(home: Path) -> None:
    run_dir = _train("manual__once")
    metrics = _evaluate(run_dir)
    first = _register(run_dir, metrics, "manual__once")
    assert first == {"model_version": "v1", "registered_path": "models/staging/ctr_model/v1"}
    # A retried/cleared register_model, or the whole run again: no second version.
    assert _register(run_dir, metrics, "manual__once") == first
    assert ModelRegistry().list_models("staging") == {"ctr_model": ["v1"]}


def test_register_model_without_metrics_rechecks_the_gates(home: Path) -> None:
    _train("manual__nometrics")
    with pytest.raises(AirflowFailException, match=r"below the threshold min_auc=0\.9900"):
        _register(None, None, "manual__nometrics", min_auc=0.99)
    assert ModelRegistry().list_models("staging") == {}


def test_champion_challenger_compares_with_production(home: Path) -> None:
    run1 = _train("manual__champ1")
    out = _register(run1, _evaluate(run1), "manual__champ1", auto_promote=True)
    assert ModelRegistry().current_version("ctr_model") == out["model_version"] == "v1"

    run2 = _train("manual__champ2", epochs=2)
    metrics = _evaluate(run2, max_auc_drop=1.0)
    champion = metrics["champion"]
    assert champion["version"] == "v1"
    assert 0.0 <= champion["test_auc"] <= 1.0
    assert champion["challenger_test_auc"] == pytest.approx(metrics["test_auc"], abs=1e-6)


def test_champion_gate_fails_a_regression(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run_dir = _train("manual__regress")
    monkeypatch.setattr(
        tasks, "_production_champion", lambda name, feats: (Champion("v7", 0.999, 0.9), None)
    )
    monkeypatch.setattr(
        "ml.evaluation.evaluate.evaluate_checkpoint",
        lambda *a, **k: {"auc": 0.70, "accuracy": 0.8, "logloss": 0.5, "rows": 10},
    )
    with pytest.raises(
        AirflowFailException, match=r"below production v7 \(0\.9990\).*max_auc_drop=0\.0050"
    ):
        _evaluate(run_dir, max_auc_drop=0.005)


def test_notify_completion_without_upstream_reports_latest_version(
    home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run_dir = _train("manual__notify")
    _register(run_dir, _evaluate(run_dir), "manual__notify")
    with caplog.at_level(logging.INFO, logger="training_pipeline_tasks"):
        out = tasks.notify_completion(
            None, None, None, model_name="ctr_model", dag_id="training_pipeline", run_id="r"
        )
    assert out == {"posted": False}
    assert "🎉 Training Pipeline Complete!" in caplog.text
    assert "Model: ctr_model v1 (staging)" in caplog.text
    assert "notifications are log-only" in caplog.text


def test_post_to_slack_posts_to_the_webhook_connection(
    webhook: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_SLACK_WEBHOOK", webhook.connection_env())
    assert tasks.post_to_slack("🎉 Training Pipeline Complete!") is True
    assert webhook.payloads == [
        {"path": "/services/T000/B000/XXX", "text": "🎉 Training Pipeline Complete!"}
    ]


def test_post_to_slack_never_raises_when_the_webhook_is_down(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_SLACK_WEBHOOK",
        '{"conn_type": "slackwebhook", "password": "http://127.0.0.1:9/hook"}',
    )
    monkeypatch.setattr(
        "airflow.providers.slack.hooks.slack_webhook.SlackWebhookHook.send_dict",
        lambda self, body: (_ for _ in ()).throw(ConnectionRefusedError("refused")),
    )
    with caplog.at_level(logging.WARNING, logger="training_pipeline_tasks"):
        assert tasks.post_to_slack("x") is False
    assert "Slack notification via connection 'slack_webhook' failed" in caplog.text


def test_notify_failure_posts_task_error_and_log_url(
    webhook: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_SLACK_WEBHOOK", webhook.connection_env())

    class TI:
        dag_id = "training_pipeline"
        task_id = "evaluate_model"
        run_id = "manual__x"
        try_number = 1
        log_url = "http://localhost:8080/dags/training_pipeline/runs/manual__x/tasks/evaluate_model"

    tasks.notify_failure(
        {"ti": TI(), "run_id": "manual__x", "exception": AirflowFailException("gate failed")}
    )
    (payload,) = webhook.payloads
    assert "FAILED at evaluate_model" in payload["text"]
    assert "AirflowFailException: gate failed" in payload["text"]
    assert TI.log_url in payload["text"]


def test_check_conf_keys_rejects_a_typo() -> None:
    with pytest.raises(AirflowFailException, match=r"unknown conf key 'epoch'.*epochs"):
        tasks.check_conf_keys({"epoch": 2}, {"epochs": None, "min_auc": 0.6})
    tasks.check_conf_keys({"epochs": 2}, {"epochs": None})
    tasks.check_conf_keys(None, {"epochs": None})


@pytest.mark.parametrize(
    ("value", "expected"),
    [("@weekly", "@weekly"), ("@DAILY", "@daily"), ("0 2 * * 1", "0 2 * * 1"), ("none", None)],
)
def test_training_schedule_values(value: str, expected: str | None) -> None:
    assert tasks.training_schedule(value) == expected


def test_training_schedule_asset_is_the_features_asset(project_home: Path) -> None:
    (asset,) = tasks.training_schedule("asset")
    assert asset.name == "ctr_features"
    assert asset.uri == (project_home / "data" / "features" / "v1").as_uri()


@pytest.mark.parametrize("bad", ["weekly", "0 2 * *", "61 * * * *"])
def test_training_schedule_rejects_bad_values(bad: str) -> None:
    with pytest.raises(ValueError, match=re.escape(f"CTR_TRAINING_SCHEDULE={bad!r} is not a sch")):
        tasks.training_schedule(bad)


def test_model_name_param_pattern_is_the_registry_pattern() -> None:
    from ml.registry.model_registry import NAME_PATTERN

    assert f"^{NAME_PATTERN}$" == tasks.MODEL_NAME_PATTERN
