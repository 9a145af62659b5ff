"""scripts/run_report.py: make run's closing summary from Airflow's state and the run summary."""

from __future__ import annotations

from pathlib import Path

from scripts import run_report

PROBLEMS = (
    "3 problem(s) with the features in data/bad:\n"
    "  - data/bad/train/data.parquet: categorical column 'item_id' is missing\n"
    "  - data/bad/val/data.parquet: label column 'click' has values other than 0 and 1\n"
    "  - data/bad/test/data.parquet: numeric column 'user_age' is missing"
)


def test_summarize_failed_run_leaves_skipped_tasks_out_of_did_not_complete(
    tmp_path: Path,
) -> None:
    """Issue 26.2: with tuning off, the skipped tuning.tune_worker was listed as not done."""
    tasks = _tasks(validate_features="success", train_model="failed")
    tasks.update(
        _tasks(
            **{"tuning.create_study": "success", "tuning.tune_worker": "skipped"},
            evaluate_model="upstream_failed",
            register_model="upstream_failed",
            notify_completion="success",
        )
    )
    run = {"run_id": "manual__2", "state": "failed", "tasks": tasks, "summary": None}
    status, lines = run_report.summarize(
        run, total_s=20.0, generate_s=0.0, log_dir=tmp_path, lines=[]
    )
    assert status == 1
    assert "   Did not complete: train_model, evaluate_model, register_model" in lines
    assert "tune_worker" not in "\n".join(lines)


def _tasks(**states: str) -> dict[str, dict[str, object]]:
    return {t: {"state": s, "seconds": 1.0} for t, s in states.items()}


def test_summarize_failed_run_prints_the_whole_multiline_log_message(tmp_path: Path) -> None:
    (tmp_path / "validate_features.log").write_text(
        "2026-11-29T18:37:02.729968Z [info     ] starting [task]\n"
        "Traceback (most recent call last):\n"
        '  File "x.py", line 1, in f\n'
        f"airflow.sdk.exceptions.AirflowFailException: features_path=data/bad failed "
        f"validation: {PROBLEMS}\n"
        "2026-11-29T18:37:02.829968Z [info     ] after [task]\n"
    )
    run = {
        "run_id": "manual__1",
        "state": "failed",
        "tasks": _tasks(validate_features="failed", train_model="upstream_failed"),
        "summary": None,
    }
    status, lines = run_report.summarize(
        run, total_s=20.0, generate_s=0.0, log_dir=tmp_path, lines=[]
    )
    text = "\n".join(lines)
    assert status == 1
    assert "❌ DAG run manual__1 FAILED" in text
    assert (
        "   Failed task: validate_features: features_path=data/bad failed validation: "
        "3 problem(s) with the features in data/bad:" in lines
    )
    for problem in PROBLEMS.splitlines()[1:]:
        assert f"      {problem}" in lines
    assert "after" not in text
    assert f"Task log: {tmp_path / 'validate_features.log'}" in text
    assert "Did not complete: validate_features, train_model" in text


def test_summarize_failure_prefers_the_summary_message(tmp_path: Path) -> None:
    run = {
        "run_id": "manual__2",
        "state": "failed",
        "tasks": _tasks(
            validate_features="success", train_model="success", evaluate_model="failed"
        ),
        "summary": {
            "failure": {"step": "evaluate", "message": "quality gate failed:\n  - a\n  - b"}
        },
    }
    _, lines = run_report.summarize(run, total_s=9.0, generate_s=0.0, log_dir=tmp_path, lines=[])
    assert "   Failed task: evaluate_model: quality gate failed:" in lines
    assert lines[lines.index("   Failed task: evaluate_model: quality gate failed:") + 1 :][:2] == [
        "        - a",
        "        - b",
    ]


def test_summarize_success_from_the_run_summary(tmp_path: Path) -> None:
    run = {
        "run_id": "manual__3",
        "state": "success",
        "tasks": _tasks(train_model="success")
        | {"train_model": {"state": "success", "seconds": 12.5}},
        "summary": {
            "metrics": {"test_auc": 0.79, "test_accuracy": 0.75, "test_logloss": 0.41},
            "champion": {"version": "v1", "test_auc": 0.78},
            "gates": {"min_auc": True, "max_auc_drop": {"passed": True}},
            "model_version": "v2",
            "registered_path": "models/staging/ctr_model/v2",
            "promoted": True,
        },
    }
    status, lines = run_report.summarize(
        run, total_s=30.0, generate_s=2.5, log_dir=tmp_path, lines=[], migrate_s=4.0
    )
    assert status == 0
    assert lines[1:9] == [
        "✅ DAG run manual__3: success",
        "   test_auc: 0.7900",
        "   test_accuracy: 0.7500",
        "   test_logloss: 0.4100",
        "   vs production v1: test_auc 0.7800",
        "   Gates: min_auc ✅, max_auc_drop ✅",
        "   Registered: v2  →  models/staging/ctr_model/v2",
        "   Promoted to production: v2",
    ]
    assert lines[-2] == (
        "   Time: 30.0 s total = training 12.5 s (train_model) + data generation 2.5 s "
        "+ orchestration 15.0 s (of which first-use database migration 4.0 s)"
    )
    assert lines[-1] == f"   Logs: {tmp_path}"


def test_summarize_unchanged_run_says_so(tmp_path: Path) -> None:
    run = {
        "run_id": "manual__4",
        "state": "success",
        "tasks": _tasks(train_model="success"),
        "summary": {
            "unchanged_since": {"version": "v3", "run_dir": "r"},
            "model_version": "v3",
            "registered_path": "m/v3",
            "card_path": "m/v3/model_card.html",
        },
    }
    _, lines = run_report.summarize(run, total_s=5.0, generate_s=0.0, log_dir=tmp_path, lines=[])
    assert any(line.startswith("   Nothing changed since v3 (same data") for line in lines)
    assert "   Registered: v3  →  m/v3" in lines
    assert "   Model card: m/v3/model_card.html" in lines


def test_summarize_without_a_summary_shows_airflows_task_states(tmp_path: Path) -> None:
    run = {
        "run_id": "manual__5",
        "state": "success",
        "tasks": {
            "notify_completion": {"state": "success", "seconds": 0.1},
            "train_model": {"state": "success", "seconds": 5.25},
            "validate_features": {"state": "success", "seconds": None},
        },
        "summary": None,
    }
    _, lines = run_report.summarize(run, total_s=9.0, generate_s=0.0, log_dir=tmp_path, lines=[])
    assert "   Tasks: validate_features ?, train_model 5.2 s, notify_completion 0.1 s" in lines


def test_summarize_without_a_run_reports_the_rejection(tmp_path: Path) -> None:
    lines = [
        "Traceback (most recent call last):",
        "airflow.sdk.exceptions.ParamValidationError: Invalid input for param min_auc: 1.5 "
        "is greater than the maximum of 1",
        "",
    ]
    status, out = run_report.summarize(
        None, total_s=3.0, generate_s=0.0, log_dir=tmp_path, lines=lines
    )
    assert status == 1
    assert (
        "No DAG run was created: airflow.sdk.exceptions.ParamValidationError: Invalid input "
        "for param min_auc" in "\n".join(out)
    )


def test_task_states_folds_mapped_tasks_into_the_worst_state() -> None:
    rows = [
        {"task_id": "tune_worker", "state": "success", "start_date": "2026-01-01T00:00:00Z",
         "end_date": "2026-01-01T00:00:04Z"},
        {"task_id": "tune_worker", "state": "failed", "start_date": "2026-01-01T00:00:00Z",
         "end_date": "2026-01-01T00:00:09Z"},
    ]  # fmt: skip
    assert run_report.task_states(rows) == {"tune_worker": {"state": "failed", "seconds": 9.0}}
    assert run_report.task_states(None) == {}


def test_format_gates_accepts_the_shapes_a_summary_may_use() -> None:
    assert run_report.format_gates({"min_auc": True, "drop": False}) == "min_auc ✅, drop ❌"
    assert (
        run_report.format_gates([{"name": "min_auc", "passed": False, "message": "x"}])
        == "min_auc ❌"
    )
    assert run_report.format_gates({"champion": {"passed": False, "message": "worse"}}) == (
        "champion ❌ (worse)"
    )
    assert run_report.format_gates(None) is None
