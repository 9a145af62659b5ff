"""dags/deploy_model.py: the chain, the Asset it follows, its params."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest


def test_deploy_model_chain_and_asset(parsed: dict[str, Any]) -> None:
    assert parsed["import_errors"] == {}
    dag = parsed["dags"]["deploy_model"]
    tasks = dag["tasks"]
    chain = [
        "check_candidate",
        "start_canary",
        "wait_for_evidence",
        "decide",
        "approve",
        "promote",
        "finish",
    ]
    for up, down in itertools.pairwise(chain):
        assert down in tasks[up]["downstream"], (up, down)
    (uri,) = dag["assets"]
    training = parsed["dags"]["training_pipeline"]["tasks"]["register_model"]["outlets"]
    assert training == [uri] and uri.startswith("file:///") and uri.endswith("/models/staging")
    assert dag["params"]["approval"] == "manual" and dag["params"]["canary_traffic"] == 0.1
    assert all(t["has_failure_callback"] for t in tasks.values())


def test_a_failed_approval_or_promotion_fails_the_run_and_finish_still_runs(
    parsed: dict[str, Any],
) -> None:
    """finish is start_canary's teardown: it runs whatever the tasks between did (the
    canary goes off), and a leaf teardown does not decide the run's state, so a failed
    decide/approve/promote fails the run instead of finish's success hiding it."""
    tasks = parsed["dags"]["deploy_model"]["tasks"]
    finish = tasks["finish"]
    assert finish["is_teardown"] and finish["trigger_rule"] == "all_done_setup_success"
    assert finish["on_failure_fail_dagrun"]  # a canary left on fails the run too
    assert tasks["start_canary"]["is_setup"] and "finish" in tasks["start_canary"]["downstream"]
    leaves = [k for k, t in tasks.items() if not t["downstream"]]
    assert leaves == ["finish"]
    # every task between start_canary and finish is an ordinary, run-deciding task
    for name in ("wait_for_evidence", "decide", "approve", "promote"):
        assert not tasks[name]["is_setup"] and not tasks[name]["is_teardown"], name
        assert tasks[name]["trigger_rule"] == "all_success", name


def test_deploy_model_params_reject_bad_values(run_probe: Any, tmp_path: Any) -> None:
    code = r"""
import json, sys
sys.path.insert(0, %(dags)r)
from airflow.dag_processing.dagbag import DagBag
from airflow.sdk.exceptions import ParamValidationError
from airflow.serialization.serialized_objects import DagSerialization
dag = DagBag(dag_folder=%(dags)r + "/deploy_model.py").dags["deploy_model"]
sdag = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag))
out = {}
for conf in %(confs)r:
    try:
        sdag.params.deep_merge(conf).validate()
        out[json.dumps(conf)] = None
    except ParamValidationError as exc:
        out[json.dumps(conf)] = str(exc)
print(json.dumps(out))
"""
    from tests.dags.conftest import DAGS

    confs = [
        {"canary_traffic": 1.0},
        {"approval": "maybe"},
        {"version": "3"},
        {"min_impressions": 0},
        {"version": "v3", "approval": "auto"},
    ]
    out = run_probe(code % {"dags": str(DAGS), "confs": confs}, tmp_path)
    rejected = [json.loads(k) for k, v in out.items() if v is not None]
    assert rejected == confs[:4]


@pytest.mark.parametrize("dag_file", ["deploy_model.py", "watch_production.py"])
def test_deploy_dag_files_import_light(run_probe: Any, tmp_path: Any, dag_file: str) -> None:
    from tests.dags.test_dag_files import DAGS, PROBE

    result = run_probe(PROBE % {"files": [dag_file], "dags": str(DAGS)}, tmp_path)
    assert result["heavy"] == [] and result["calls"] == []
