"""ml.notifications: the spec's log lines and the notification texts."""

from __future__ import annotations

from ml.notifications import (
    failure_message,
    metrics_lines,
    registered_lines,
    slack_payload,
    success_message,
)


def test_metrics_lines_match_the_spec_layout() -> None:
    lines = metrics_lines({"test_auc": 0.78912, "test_accuracy": 0.7453, "val_auc": 0.8, "n": 3})
    assert lines == ["📊 Model Metrics:", "   test_accuracy: 0.7453", "   test_auc: 0.7891"]


def test_registered_lines_match_the_spec_layout() -> None:
    assert registered_lines(
        "ctr_model", "v1", "staging", "models/staging/ctr_model/v1", created=True
    ) == [
        "✅ Model registered: ctr_model v1 (staging)",
        "   Path: models/staging/ctr_model/v1",
    ]


def test_registered_lines_rerun_says_no_new_version() -> None:
    head, _ = registered_lines("ctr_model", "v4", "staging", "p", created=False)
    assert "already registered: ctr_model v4" in head
    assert "no new version" in head


def test_success_message_summarises_run() -> None:
    text = success_message(
        model_name="ctr_model",
        version="v2",
        path="models/staging/ctr_model/v2",
        metrics={"test_auc": 0.79, "test_accuracy": 0.75},
        dag_id="training_pipeline",
        run_id="manual__1",
        gates=[{"name": "min_auc", "passed": True, "message": "ok"}],
    )
    lines = text.splitlines()
    assert lines[0] == "🎉 Training Pipeline Complete!"
    assert "   Model: ctr_model v2 (staging)" in lines
    assert "   test_auc: 0.7900" in lines
    assert "   ✅ gate min_auc: ok" in lines
    assert any("ctr-pipeline registry promote ctr_model v2" in line for line in lines)


def test_success_message_promoted_and_unknown_version() -> None:
    promoted = success_message(
        model_name="m",
        version="v1",
        path=None,
        metrics=None,
        dag_id="d",
        run_id="r",
        promoted=True,
    )
    assert "🚀 Promoted to production: m v1" in promoted
    unknown = success_message(
        model_name="m", version=None, path=None, metrics=None, dag_id="d", run_id="r"
    )
    assert "version unknown" in unknown


def test_failure_message_names_task_error_and_log_url() -> None:
    text = failure_message(
        dag_id="training_pipeline",
        run_id="manual__1",
        task_id="evaluate_model",
        error=RuntimeError("test_auc 0.61 is below the threshold min_auc=0.99"),
        log_url="http://localhost:8080/dags/training_pipeline/runs/x/tasks/evaluate_model",
        try_number=1,
    )
    assert text.splitlines()[0] == "❌ Training Pipeline FAILED at evaluate_model (attempt 1)"
    assert "Error: RuntimeError: test_auc 0.61 is below the threshold min_auc=0.99" in text
    assert "Log: http://localhost:8080/dags/training_pipeline/runs/x/tasks/evaluate_model" in text
    assert slack_payload(text) == {"text": text}


def test_success_message_marks_a_rerun() -> None:
    text = success_message(
        model_name="m", version="v1", path="p", metrics=None, dag_id="d", run_id="r", rerun_try=2
    )
    assert text.splitlines()[0] == "🎉 Training Pipeline Complete! (re-run of r, try 2)"


def test_task_log_url_needs_a_base_url() -> None:
    from ml.notifications import task_log_url

    assert task_log_url(None, dag_id="d", run_id="r", task_id="t") is None
    url = task_log_url(
        "http://h:1/", dag_id="d", run_id="manual__2026-01-01T00:00:00+00:00", task_id="t",
        try_number=3, map_index=2,
    )  # fmt: skip
    assert (
        url
        == "http://h:1/dags/d/runs/manual__2026-01-01T00%3A00%3A00%2B00%3A00/tasks/t/mapped/2?try_number=3"
    )


def test_success_message_names_the_best_tuning_trial() -> None:
    tuning = {
        "study": "ctr_model-val_auc-0123456789ab",
        "metric": "val_auc",
        "trials": {"finished": 5, "complete": 4, "pruned": 1, "failed": 2},
        "best": {"number": 3, "value": 0.81234, "params": {"model.dropout": 0.12345}},
    }
    text = success_message(
        model_name="m", version="v1", path="p", metrics=None, dag_id="d", run_id="r", tuning=tuning
    )
    assert (
        "   🔎 Tuned: best trial 3 of study ctr_model-val_auc-0123456789ab (val_auc 0.8123)" in text
    )
    assert "      parameters: model.dropout=0.1235" in text
    assert "      trials: 7 ran, 4 complete, 1 pruned, 2 failed" in text
    plain = success_message(
        model_name="m", version="v1", path="p", metrics=None, dag_id="d", run_id="r"
    )
    assert "Tuned" not in plain


CHOICE = {
    "chosen": "fm",
    "metric": "val_auc",
    "budget_s": 42.0,
    "seconds": 30.25,
    "reason": "best val_auc 0.7400 (vs logreg 0.7000)",
    "candidates": [
        {"family": "logreg", "val_auc": 0.7, "val_logloss": 0.3, "epochs": 9, "seconds": 1.5},
        {"family": "fm", "val_auc": 0.74, "val_logloss": 0.29, "epochs": 12, "seconds": 3.25},
        {"family": "dcnv2", "skipped": "budget spent (43 s of 42 s)"},
    ],
}


def test_success_message_shows_the_automatic_model_choice() -> None:
    text = success_message(
        model_name="m",
        version="v1",
        path="p",
        metrics=None,
        dag_id="d",
        run_id="r",
        model_choice=CHOICE,
    )
    assert "   🧭 Model family: fm (automatic: best val_auc 0.7400 (vs logreg 0.7000); " in text
    assert "30.2 s of a 42.0 s budget)" in text
    assert "      → fm: val AUC 0.7400, val log loss 0.2900, 12 epochs, 3.2 s" in text
    assert "        dcnv2: skipped, budget spent (43 s of 42 s)" in text
    plain = success_message(
        model_name="m", version="v1", path="p", metrics=None, dag_id="d", run_id="r"
    )
    assert "Model family" not in plain
