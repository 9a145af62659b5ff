"""The DAG files: no import errors, the spec's tasks and edges, params, schedule, retries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

DAGS = Path(__file__).resolve().parents[2] / "dags"

PROBE = r"""
import json, time
from airflow.dag_processing.dagbag import DagBag
from airflow.sdk.exceptions import ParamValidationError
from airflow.serialization.serialized_objects import DagSerialization

bag = DagBag(dag_folder=%(dags)r)
out = {"import_errors": {k: str(v) for k, v in bag.import_errors.items()},
       "dag_ids": sorted(bag.dags),
       "parse_s": {s.file: s.duration.total_seconds() for s in bag.dagbag_stats}}
dags = {}
for dag_id, dag in bag.dags.items():
    info = {"tasks": {}, "params": {k: dag.params[k] for k in dag.params},
            "timetable": type(dag.timetable).__name__,
            "schedule": dag.schedule if isinstance(dag.schedule, (str, type(None))) else "assets",
            "catchup": dag.catchup, "max_active_runs": dag.max_active_runs,
            "assets": [a.uri for a in dag.schedule] if isinstance(dag.schedule, list) else [],
            "bad_params": {}}
    for t in dag.tasks:
        info["tasks"][t.task_id] = {
            "downstream": sorted(t.downstream_task_ids), "retries": t.retries,
            "retry_delay_s": t.retry_delay.total_seconds(),
            "timeout_s": t.execution_timeout.total_seconds() if t.execution_timeout else None,
            "has_failure_callback": bool(t.on_failure_callback),
            "outlets": [getattr(o, "uri", None) for o in t.outlets]}
    # What create_dagrun does on every trigger (CLI, REST API, UI, dags test).
    sdag = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag))
    for conf in %(bad)s:
        try:
            sdag.params.deep_merge(conf).validate()
            info["bad_params"][json.dumps(conf)] = None
        except ParamValidationError as exc:
            info["bad_params"][json.dumps(conf)] = str(exc)
    dags[dag_id] = info
out["dags"] = dags
print(json.dumps(out, default=str))
"""

BAD_CONFS: list[dict[str, Any]] = [
    {"min_auc": 1.5},
    {"min_auc": -0.1},
    {"min_auc": "high"},
    {"min_accuracy": 2},
    {"max_auc_drop": -1},
    {"model_name": "bad name!"},
    {"model_name": ""},
    {"model_name": "-starts-with-dash"},
    {"auto_promote": "yes"},
    {"epochs": 0},
    {"epochs": 1.5},
    {"config_path": ""},
    {"features_path": 3},
]


def _probe(run_probe: Any, home: Path, extra: dict[str, str] | None = None) -> dict[str, Any]:
    code = PROBE % {"dags": str(DAGS), "bad": repr(BAD_CONFS)}
    result: dict[str, Any] = run_probe(code, home, extra)
    return result


@pytest.fixture(scope="module")
def parsed(run_probe: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _probe(run_probe, tmp_path_factory.mktemp("dagbag"))


def test_dagbag_has_no_import_errors(parsed: dict[str, Any]) -> None:
    assert parsed["import_errors"] == {}
    assert parsed["dag_ids"] == ["feature_engineering_pipeline", "training_pipeline"]


def test_training_pipeline_tasks_and_downstream_ids(parsed: dict[str, Any]) -> None:
    tasks = parsed["dags"]["training_pipeline"]["tasks"]
    downstream = {task_id: t["downstream"] for task_id, t in tasks.items()}
    # validate >> train >> evaluate >> register >> notify, plus the XCom edges of the
    # spec's data-flow table (run_dir: train -> register, metrics: evaluate -> notify).
    assert downstream == {
        "validate_features": ["train_model"],
        "train_model": ["evaluate_model", "register_model"],
        "evaluate_model": ["notify_completion", "register_model"],
        "register_model": ["notify_completion"],
        "notify_completion": [],
    }


def test_training_pipeline_defaults(parsed: dict[str, Any]) -> None:
    dag = parsed["dags"]["training_pipeline"]
    assert dag["params"] == {
        "config_path": "config/model_config.yaml",
        "features_path": "data/features/v1",
        "model_name": "ctr_model",
        "min_auc": 0.65,
        "min_accuracy": 0.6,
        "max_auc_drop": 0.005,
        "auto_promote": False,
        "epochs": None,
    }
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


@pytest.mark.parametrize("conf", BAD_CONFS, ids=lambda c: next(iter(c)))
def test_bad_param_is_rejected_naming_the_param(
    parsed: dict[str, Any], conf: dict[str, Any]
) -> None:
    import json

    message = parsed["dags"]["training_pipeline"]["bad_params"][json.dumps(conf)]
    name = next(iter(conf))
    assert message is not None, f"{conf} was accepted"
    assert f"Invalid input for param {name}" in message


def test_feature_pipeline_updates_the_features_asset(parsed: dict[str, Any]) -> None:
    feature = parsed["dags"]["feature_engineering_pipeline"]
    assert feature["tasks"]["generate_features"]["downstream"] == ["save_features"]
    (uri,) = feature["tasks"]["save_features"]["outlets"]
    assert uri.startswith("file:///") and uri.endswith("/data/features/v1")


def test_training_schedule_asset_waits_for_features(run_probe: Any, tmp_path: Path) -> None:
    parsed = _probe(run_probe, tmp_path, {"CTR_TRAINING_SCHEDULE": "asset"})
    dag = parsed["dags"]["training_pipeline"]
    assert dag["timetable"] == "AssetTriggeredTimetable"
    (uri,) = dag["assets"]
    assert uri == (tmp_path / "data" / "features" / "v1").as_uri()
    # The producer's outlet is the very same Asset.
    assert parsed["dags"]["feature_engineering_pipeline"]["tasks"]["save_features"]["outlets"] == [
        uri
    ]


def test_training_schedule_bad_value_is_an_import_error_naming_the_variable(
    run_probe: Any, tmp_path: Path
) -> None:
    parsed = _probe(run_probe, tmp_path, {"CTR_TRAINING_SCHEDULE": "every tuesday"})
    (error,) = [e for f, e in parsed["import_errors"].items() if f.endswith("training_pipeline.py")]
    assert "CTR_TRAINING_SCHEDULE='every tuesday' is not a schedule" in error
