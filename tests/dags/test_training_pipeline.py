"""dags/training_pipeline.py: no import errors, the spec's tasks and edges, params, retries."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from testkit.airflow import BAD_CONFS, parse_dags

DAGS = Path(__file__).resolve().parents[2] / "dags"


def test_dagbag_has_no_import_errors(parsed: dict[str, Any]) -> None:
    assert parsed["import_errors"] == {}
    assert parsed["dag_ids"] == [
        "deploy_model",
        "feature_engineering_pipeline",
        "training_pipeline",
        "watch_production",
    ]


def test_training_pipeline_tasks_and_downstream_ids(parsed: dict[str, Any]) -> None:
    tasks = parsed["dags"]["training_pipeline"]["tasks"]
    downstream = {task_id: t["downstream"] for task_id, t in tasks.items()}
    # validate >> train >> evaluate >> register >> notify, plus the XCom edges of the
    # spec's data-flow table (run_dir: train -> register, metrics: evaluate -> notify),
    # and the tuning group between validate and train (docs/tuning.md).
    assert downstream == {
        "validate_features": ["train_model", "tuning.create_study"],
        # train_model pulls `study` itself (so `tasks test train_model` runs alone) and
        # still waits for the whole group through `tuning >> train_model`.
        "tuning.create_study": ["tuning.tune_worker"],
        "tuning.tune_worker": ["train_model"],
        "train_model": ["evaluate_model", "register_model"],
        "evaluate_model": ["notify_completion", "register_model"],
        "register_model": ["notify_completion"],
        "notify_completion": [],
    }


def test_training_pipeline_defaults(parsed: dict[str, Any]) -> None:
    dag = parsed["dags"]["training_pipeline"]
    from ml.pipeline.params import param_specs

    # Generated from the one table of params; the spec's four keep the spec's defaults.
    assert dag["params"] == {s.name: s.default for s in param_specs()}
    spec_params = {k: dag["params"][k] for k in ("model_name", "min_auc", "min_accuracy")}
    assert spec_params == {"model_name": "ctr_model", "min_auc": 0.65, "min_accuracy": 0.6}
    assert dag["catchup"] is False
    assert dag["schedule"] == "@weekly"
    assert dag["max_active_runs"] == 1


def test_train_model_retries_with_delay_and_timeout(parsed: dict[str, Any]) -> None:
    tasks = parsed["dags"]["training_pipeline"]["tasks"]
    train = tasks["train_model"]
    assert train["retries"] == 2
    assert train["retry_delay_s"] == 60
    assert train["timeout_s"] == 2 * 3600
    assert all(t["has_failure_callback"] for t in tasks.values())


def test_tune_worker_retries_so_a_killed_worker_resumes_the_study(parsed: dict[str, Any]) -> None:
    worker = parsed["dags"]["training_pipeline"]["tasks"]["tuning.tune_worker"]
    assert worker["retries"] == 2 and worker["retry_delay_s"] == 30


@pytest.mark.parametrize("conf", BAD_CONFS, ids=lambda c: next(iter(c)))
def test_bad_param_is_rejected_naming_the_param(
    parsed: dict[str, Any], conf: dict[str, Any]
) -> None:
    message = parsed["dags"]["training_pipeline"]["bad_params"][json.dumps(conf)]
    name = next(iter(conf))
    assert message is not None, f"{conf} was accepted"
    assert f"Invalid input for param {name}" in message


@pytest.mark.slow
def test_training_schedule_asset_waits_for_the_features_asset(
    run_probe: Any, tmp_path: Path
) -> None:
    parsed = parse_dags(run_probe, DAGS, tmp_path, {"CTR_TRAINING_SCHEDULE": "asset"})
    dag = parsed["dags"]["training_pipeline"]
    assert dag["timetable"] == "AssetTriggeredTimetable"
    (uri,) = dag["assets"]
    assert uri == (tmp_path / "data" / "features" / "v1").as_uri()
    # The producer's outlet is the very same Asset.
    outlets = parsed["dags"]["feature_engineering_pipeline"]["tasks"]["save_features"]["outlets"]
    assert outlets == [uri]


@pytest.mark.slow
def test_training_schedule_asset_uri_is_configurable(run_probe: Any, tmp_path: Path) -> None:
    mine = (tmp_path / "my" / "clicks").as_uri()
    parsed = parse_dags(
        run_probe,
        DAGS,
        tmp_path,
        {"CTR_TRAINING_SCHEDULE": "asset", "CTR_FEATURES_ASSET_URI": mine},
    )
    assert parsed["dags"]["training_pipeline"]["assets"] == [mine]


@pytest.mark.slow
def test_training_schedule_bad_value_is_an_import_error_naming_the_variable(
    run_probe: Any, tmp_path: Path
) -> None:
    parsed = parse_dags(run_probe, DAGS, tmp_path, {"CTR_TRAINING_SCHEDULE": "every tuesday"})
    (error,) = [e for f, e in parsed["import_errors"].items() if f.endswith("training_pipeline.py")]
    assert "CTR_TRAINING_SCHEDULE='every tuesday' is not a schedule" in error
