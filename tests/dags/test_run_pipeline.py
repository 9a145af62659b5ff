"""scripts/run_pipeline.py and scripts/airflow_env.py: the parts that need no Airflow run."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import airflow_env  # type: ignore[import-not-found]
import pytest
import run_pipeline  # type: ignore[import-not-found]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"epochs": 2, "min_auc": 0.7}', {"epochs": 2, "min_auc": 0.7}),
        # What `make run ARGS='--conf {"epochs":2}'` delivers after the shell strips quotes.
        (
            "{epochs:2,min_auc:0.7,auto_promote:true,model_name:m1}",
            {"epochs": 2, "min_auc": 0.7, "auto_promote": True, "model_name": "m1"},
        ),
        ("{}", {}),
    ],
)
def test_parse_conf_reads_json_and_the_quote_stripped_form(text: str, expected: dict) -> None:
    assert run_pipeline.parse_conf(text) == expected


@pytest.mark.parametrize("bad", ["epochs=2", "[1, 2]", "{epochs}"])
def test_parse_conf_rejects_non_objects(bad: str) -> None:
    with pytest.raises(run_pipeline.RunError, match="--conf"):
        run_pipeline.parse_conf(bad)


def test_parse_set_pairs() -> None:
    assert run_pipeline.parse_set(["epochs=2", "model_name=ctr_b", "epochs=null"]) == {
        "epochs": None,
        "model_name": "ctr_b",
    }
    with pytest.raises(run_pipeline.RunError, match="KEY=VALUE"):
        run_pipeline.parse_set(["epochs"])


def test_split_task_logs_groups_lines_by_task() -> None:
    lines = [
        "x [DAG TEST] starting task_id=validate_features map_index=-1",
        "a",
        "y [DAG TEST] starting task_id=train_model map_index=-1",
        "b",
    ]
    groups = run_pipeline.split_task_logs(lines)
    assert groups["validate_features"] == lines[:2]
    assert groups["train_model"] == lines[2:]


def test_summarize_failed_run_names_task_error_and_log(tmp_path: Path) -> None:
    (tmp_path / "evaluate_model.log").write_text(
        "Traceback (most recent call last):\n"
        "airflow.sdk.exceptions.AirflowFailException: quality gate failed: test_auc 0.61 "
        "is below the threshold min_auc=0.9900\n"
    )
    run = {
        "run_id": "manual__1",
        "state": "failed",
        "tasks": {
            "validate_features": {"state": "success", "seconds": 1.0},
            "train_model": {"state": "success", "seconds": 5.0},
            "evaluate_model": {"state": "failed", "seconds": 1.0},
            "register_model": {"state": "upstream_failed", "seconds": None},
        },
        "xcom": {},
    }
    status, lines = run_pipeline.summarize(
        run, total_s=20.0, generate_s=0.0, log_dir=tmp_path, lines=[]
    )
    text = "\n".join(lines)
    assert status == 1
    assert "Failed task: evaluate_model: quality gate failed: test_auc 0.61" in text
    assert f"Task log: {tmp_path / 'evaluate_model.log'}" in text
    assert "Did not complete: evaluate_model, register_model, notify_completion" in text


def test_summarize_success_splits_the_time(tmp_path: Path) -> None:
    run = {
        "run_id": "manual__2",
        "state": "success",
        "tasks": {"train_model": {"state": "success", "seconds": 12.5}},
        "xcom": {
            "metrics": {"test_auc": 0.79, "test_accuracy": 0.75},
            "model_version": "v2",
            "registered_path": "models/staging/ctr_model/v2",
        },
    }
    status, lines = run_pipeline.summarize(
        run, total_s=30.0, generate_s=2.5, log_dir=tmp_path, lines=[]
    )
    assert status == 0
    assert "   Registered: v2  →  models/staging/ctr_model/v2" in lines
    assert (
        "   Time: 30.0 s total = training 12.5 s (train_model) + data generation 2.5 s "
        "+ orchestration 15.0 s" in lines
    )
    data = run_pipeline.summary_data(run, total_s=30.0, generate_s=2.5, migrate_s=0.0)
    assert data["overhead_s"] == 15.0
    _, first_use = run_pipeline.summarize(
        run, total_s=30.0, generate_s=2.5, log_dir=tmp_path, lines=[], migrate_s=4.0
    )
    assert first_use[-2].endswith(
        "+ orchestration 15.0 s (of which first-use database migration 4.0 s)"
    )


def test_summarize_without_a_run_reports_the_rejection(tmp_path: Path) -> None:
    lines = [
        "Traceback (most recent call last):",
        "airflow.sdk.exceptions.ParamValidationError: Invalid input for param min_auc: 1.5 "
        "is greater than the maximum of 1",
        "",
    ]
    status, out = run_pipeline.summarize(
        None, total_s=3.0, generate_s=0.0, log_dir=tmp_path, lines=lines
    )
    assert status == 1
    assert (
        "No DAG run was created: airflow.sdk.exceptions.ParamValidationError: Invalid input "
        "for param min_auc" in "\n".join(out)
    )


def test_airflow_env_points_everything_at_the_home(tmp_path: Path) -> None:
    env = airflow_env.airflow_env(tmp_path, {"AIRFLOW__CORE__EXECUTOR": "LocalExecutor"})
    assert env["CTR_PIPELINE_HOME"] == str(tmp_path)
    assert env["AIRFLOW_HOME"] == str(tmp_path / "airflow_home")
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == str(airflow_env.DAGS_DIR)
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == (
        f"sqlite:///{tmp_path / 'airflow_home' / 'airflow.db'}"
    )
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert env["PYTHONPATH"].split(":")[:2] == [str(airflow_env.REPO), str(airflow_env.DAGS_DIR)]


def test_db_needs_migrate_detects_missing_stale_and_current(tmp_path: Path) -> None:
    env = airflow_env.airflow_env(tmp_path)
    home = Path(env["AIRFLOW_HOME"])
    assert airflow_env.db_needs_migrate(env)  # nothing there
    home.mkdir()
    with sqlite3.connect(home / "airflow.db") as con:
        con.execute("CREATE TABLE alembic_version (version_num TEXT)")
        con.execute("INSERT INTO alembic_version VALUES ('abc123')")
    stamp = {**airflow_env._stamp_key(env), "revision": "abc123"}
    (home / airflow_env.MIGRATE_STAMP).write_text(json.dumps(stamp))
    assert not airflow_env.db_needs_migrate(env)
    (home / airflow_env.MIGRATE_STAMP).write_text(json.dumps({**stamp, "airflow_version": "2.9"}))
    assert airflow_env.db_needs_migrate(env)  # migrated by another Airflow
    (home / airflow_env.MIGRATE_STAMP).write_text(json.dumps(stamp))
    (home / "airflow.db").unlink()
    assert airflow_env.db_needs_migrate(env)  # database deleted


def test_shell_output_exports_the_settings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert airflow_env.main(["--home", str(tmp_path), "--shell"]) == 0
    out = capsys.readouterr().out
    assert f"export AIRFLOW_HOME={tmp_path / 'airflow_home'}" in out
    assert "export AIRFLOW__CORE__LOAD_EXAMPLES=False" in out
