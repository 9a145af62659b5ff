"""The whole training_pipeline DAG under Airflow 3 on tiny data (`make run` included).

One module-scoped project home: its SQLite metadata database is migrated once, and the
runs build on each other (v1, then v2 against production v1, then a failed gate). Each
Airflow process is a subprocess with its own environment.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

CHECKOUT = Path(__file__).resolve().parents[2]
SMALL = {
    "config_path": "config/small.yaml",
    "epochs": 1,
    "min_auc": 0.0,
    "min_accuracy": 0.0,
    "baseline_tolerance": None,
}

pytestmark = pytest.mark.slow

# Runs the DAG the way an Asset-triggered run or a REST trigger with logical_date null
# does: no logical date at all.
DRIVER = r"""
import json, os, sys
from airflow.dag_processing.dagbag import DagBag
dag = DagBag(dag_folder=sys.argv[1]).dags["training_pipeline"]
dr = dag.test(logical_date=None, run_conf=json.loads(sys.argv[2]))
state = getattr(dr.state, "value", dr.state)
out = {"run_id": dr.run_id, "state": state, "logical_date": dr.logical_date}
print(json.dumps(out, default=str))
sys.stdout.flush()
os._exit(0)
"""


def _run(cmd: list[str], pipeline: Any, timeout: int = 420) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cmd,
        env=pipeline.env,
        cwd="/",  # a different working directory: every path must come from the base dir
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def make_run(pipeline: Any, conf: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "scripts.run_pipeline", "--home", str(pipeline.home), "--conf"]
    return _run([*cmd, json.dumps(conf)], pipeline)


def airflow(pipeline: Any, *args: str) -> subprocess.CompletedProcess[str]:
    return _run([str(Path(sys.executable).parent / "airflow"), *args], pipeline)


def _db(pipeline: Any) -> sqlite3.Connection:
    return sqlite3.connect(Path(pipeline.env["AIRFLOW_HOME"]) / "airflow.db")


def xcoms(pipeline: Any, run_id: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    with _db(pipeline) as con:
        for task_id, key, value in con.execute(
            "SELECT task_id, key, value FROM xcom "
            "WHERE dag_id = 'training_pipeline' AND run_id = ?",
            (run_id,),
        ):
            out.setdefault(task_id, {})[key] = json.loads(value)
    return out


def dag_runs(pipeline: Any) -> list[tuple[str, str]]:
    with _db(pipeline) as con:
        return list(
            con.execute("SELECT run_id, state FROM dag_run WHERE dag_id = 'training_pipeline'")
        )


def versions(pipeline: Any) -> list[str]:
    staging = pipeline.home / "models" / "staging" / "ctr_model"
    return (
        sorted(p.name for p in staging.iterdir() if p.name.startswith("v"))
        if staging.is_dir()
        else []
    )


@pytest.fixture(scope="module")
def first_run(pipeline: Any) -> dict[str, Any]:
    proc = make_run(pipeline, {**SMALL, "auto_promote": True})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ((run_id, state),) = dag_runs(pipeline)
    return {"stdout": proc.stdout, "run_id": run_id, "state": state}


def test_make_run_registers_v1_with_the_spec_log_lines(
    pipeline: Any, first_run: dict[str, Any]
) -> None:
    out = first_run["stdout"]
    assert first_run["state"] == "success"
    assert "Airflow metadata database migrated" in out
    for line in (
        "[validate_features] ✅ train data: data/features/v1/train/data.parquet (",
        "[validate_features] ✅ val data: data/features/v1/val/data.parquet (",
        "[validate_features] ✅ test data: data/features/v1/test/data.parquet (",
        "[train_model] 🚀 Running training command...",
        "[train_model] Epoch 1/1: Train Loss: ",
        "[train_model] ✅ Training complete",
        "[evaluate_model] 📊 Model Metrics:",
        "[evaluate_model]    test_accuracy: 0.",
        "[evaluate_model]    test_auc: 0.",
        "[register_model] ✅ Model registered: ctr_model v1 (staging)",
        "[register_model]    Path: models/staging/ctr_model/v1",
        "[register_model] 🚀 Promoted ctr_model v1 to production (auto_promote)",
        "[notify_completion] 🎉 Training Pipeline Complete!",
        "   Registered: v1  →  models/staging/ctr_model/v1",
    ):
        assert line in out, f"missing {line!r} in:\n{out}"
    assert "training " in out and "orchestration " in out
    assert versions(pipeline) == ["v1"]
    assert (pipeline.home / "models" / "production" / "ctr_model" / "current").is_symlink()


def test_xcoms_are_exactly_the_spec_keys(pipeline: Any, first_run: dict[str, Any]) -> None:
    values = xcoms(pipeline, first_run["run_id"])
    # The tuning group's own (docs/tuning.md); with tuning_trials=0: no study, no workers.
    assert values.pop("tuning.create_study") == {"return_value": [], "study": ""}
    assert {task: sorted(keys) for task, keys in values.items()} == {
        "validate_features": ["features_path"],
        "train_model": ["run_dir"],
        "evaluate_model": ["metrics"],
        "register_model": ["model_version", "registered_path"],
    }
    assert values["validate_features"]["features_path"] == "data/features/v1"
    run_dir = values["train_model"]["run_dir"]
    assert run_dir.startswith("experiments/runs/ctr_model_")
    assert (pipeline.home / run_dir / "COMPLETE").is_file()
    assert values["register_model"] == {
        "model_version": "v1",
        "registered_path": "models/staging/ctr_model/v1",
    }
    metrics = values["evaluate_model"]["metrics"]
    assert 0.0 <= metrics["test_auc"] <= 1.0 and metrics["champion"] is None


def test_register_model_updates_the_model_asset(pipeline: Any, first_run: dict[str, Any]) -> None:
    uri = (pipeline.home / "models" / "staging").as_uri()
    with _db(pipeline) as con:
        events = list(
            con.execute(
                "SELECT e.extra FROM asset_event e JOIN asset a ON a.id = e.asset_id "
                "WHERE a.uri = ? AND a.name = 'ctr_model_registered'",
                (uri,),
            )
        )
    assert {"model_name": "ctr_model", "version": "v1"} in [json.loads(e) for (e,) in events]


def test_success_is_posted_to_the_webhook(pipeline: Any, first_run: dict[str, Any]) -> None:
    (text,) = [t for t in pipeline.webhook.texts() if "Complete" in t]
    assert text.startswith("🎉 Training Pipeline Complete!")
    assert "Model: ctr_model v1 (staging)" in text
    assert "test_auc: 0." in text


def test_second_run_without_logical_date_registers_v2_against_production(
    pipeline: Any, first_run: dict[str, Any]
) -> None:
    conf = {**SMALL, "epochs": 2, "max_auc_drop": 1.0}
    proc = _run([sys.executable, "-c", DRIVER, str(CHECKOUT / "dags"), json.dumps(conf)], pipeline)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["state"] == "success"
    assert result["logical_date"] is None
    values = xcoms(pipeline, result["run_id"])
    assert values["register_model"]["model_version"] == "v2"
    assert values["evaluate_model"]["metrics"]["champion"]["version"] == "v1"
    assert versions(pipeline) == ["v1", "v2"]


def test_cleared_register_model_does_not_create_a_version(
    pipeline: Any, first_run: dict[str, Any]
) -> None:
    before = versions(pipeline)
    # Re-runs register_model inside the first DAG run, with that run's real XComs.
    proc = airflow(
        pipeline, "tasks", "test", "training_pipeline", "register_model", first_run["run_id"]
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Model already registered: ctr_model v1 (staging)" in proc.stdout + proc.stderr
    assert versions(pipeline) == before


def test_gate_failure_stops_at_evaluate_registers_nothing_and_notifies(
    pipeline: Any, first_run: dict[str, Any]
) -> None:
    before = versions(pipeline)
    # force_retrain: the inputs are v1's, which would otherwise skip to "nothing changed".
    proc = make_run(pipeline, {**SMALL, "min_auc": 0.99, "force_retrain": True})
    out = proc.stdout
    assert proc.returncode == 1, out
    assert "Failed task: evaluate_model: quality gate failed: test_auc 0." in out
    assert "below the threshold min_auc=0.9900" in out
    log_line = next(line for line in out.splitlines() if "Task log: " in line)
    task_log = Path(log_line.split("Task log: ", 1)[1].strip())
    assert task_log.name == "evaluate_model.log"
    assert "min_auc=0.9900" in task_log.read_text()
    assert "Did not complete: evaluate_model, register_model, notify_completion" in out
    assert versions(pipeline) == before
    (failure,) = [t for t in pipeline.webhook.texts() if "FAILED" in t]
    assert "❌ Training Pipeline FAILED at evaluate_model (attempt 1)" in failure
    assert "min_auc=0.9900" in failure
    link = failure.split("Log: ", 1)[1]
    assert link.startswith("http://airflow.test:8080/dags/training_pipeline/runs/")
    assert "/tasks/evaluate_model?try_number=1" in link


def test_bad_param_is_rejected_at_trigger_and_no_run_starts(
    pipeline: Any, first_run: dict[str, Any]
) -> None:
    runs = dag_runs(pipeline)
    proc = airflow(pipeline, "dags", "trigger", "training_pipeline", "-c", '{"min_auc": 1.5}')
    assert proc.returncode != 0
    assert "Invalid input for param min_auc: 1.5 is greater than the maximum of 1" in (
        proc.stdout + proc.stderr
    )
    made = make_run(pipeline, {"model_name": "bad name!"})
    assert made.returncode == 1
    assert "No DAG run was created" in made.stdout
    assert "Invalid input for param model_name" in made.stdout
    assert dag_runs(pipeline) == runs


def test_feature_pipeline_regenerates_features_and_updates_the_asset(
    pipeline: Any, first_run: dict[str, Any]
) -> None:
    proc = airflow(pipeline, "dags", "test", "feature_engineering_pipeline", "-c", '{"rows": 2000}')
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    uri = (pipeline.home / "data" / "features" / "v1").as_uri()
    with _db(pipeline) as con:
        events = list(
            con.execute(
                "SELECT e.extra FROM asset_event e JOIN asset a ON a.id = e.asset_id "
                "WHERE a.uri = ? AND a.name = 'ctr_features'",
                (uri,),
            )
        )
    (extra,) = [json.loads(e) for (e,) in events]
    assert extra["features_path"] == "data/features/v1"
    assert len(extra["digest"]) == 64
    schema = json.loads((pipeline.home / "data" / "features" / "v1" / "schema.json").read_text())
    assert sum(schema["rows"].values()) == 2000  # regenerated (the fixture had 3000 rows)


def test_dated_tasks_test_sequence_finds_the_run_its_date_trained(
    pipeline: Any, first_run: dict[str, Any]
) -> None:
    # The spec's Step 5, in Airflow 3: each `tasks test` is its own temporary DAG run.
    conf = json.dumps({**SMALL, "model_name": "dated_model"})
    outputs = {}
    for task in ("train_model", "evaluate_model", "register_model"):
        proc = airflow(
            pipeline, "tasks", "test", "training_pipeline", task, "2024-11-15", "-t", conf
        )
        outputs[task] = proc.stdout + proc.stderr
        assert proc.returncode == 0, outputs[task][-3000:]
    assert (
        "No run_dir from train_model: using this run's experiments/runs/ctr_model_20241115"
        in (outputs["evaluate_model"])
    )
    assert "Model registered: dated_model v1 (staging)" in outputs["register_model"]
    registered = json.loads(
        (pipeline.home / "models/staging/dated_model/v1/metadata.json").read_text()
    )
    assert "ctr_model_20241115_000000_" in registered["source"]["run_dir"]
