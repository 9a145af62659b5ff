"""Tuning over the REST API in the PostgreSQL + Celery profile: two mapped workers, RDB.

On the shared PostgreSQL + Celery stack (three Celery workers of concurrency 1, two on the
default queue, ``CTR_TUNING_STORAGE`` pointing at the profile's own Optuna database):
``training_pipeline`` is triggered with ``tuning_trials=3, tuning_parallel=2`` for a
model name of its own, so the two mapped ``tune_worker`` tasks can run at once on two
Celery workers, sharing the study through the database. The REST client logs in through
the profile's own auth helper (``AirflowServices.api_token``).
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from testkit.tuning import tuning_config

pytestmark = [pytest.mark.services, pytest.mark.slow, pytest.mark.timeout(1200)]

CONF = {
    "config_path": "config/tune.yaml",
    "model_name": "tuned_model",
    "tuning_trials": 3,
    "tuning_parallel": 2,
    "min_auc": 0.0,
    "min_accuracy": 0.0,
    "baseline_tolerance": None,
}


def _mapped(stack: Any, kit: Any, run_id: str, task_id: str) -> list[dict[str, Any]]:
    resp = stack.rest.http.get(
        f"/api/v2/dags/{kit.DAG_ID}/dagRuns/{run_id}/taskInstances", params={"limit": 100}
    )
    assert resp.status_code == 200, resp.text
    return sorted(
        (ti for ti in resp.json()["task_instances"] if ti["task_id"] == task_id),
        key=lambda ti: ti["map_index"],
    )


def _mapped_log(stack: Any, kit: Any, run_id: str, ti: dict[str, Any]) -> str:
    resp = stack.rest.http.get(
        f"/api/v2/dags/{kit.DAG_ID}/dagRuns/{run_id}/taskInstances/{ti['task_id']}/logs/"
        f"{ti['try_number']}",
        params={"full_content": True, "map_index": ti["map_index"]},
    )
    assert resp.status_code == 200, resp.text
    return "\n".join(str(e.get("event", "")) for e in resp.json()["content"] if isinstance(e, dict))


def test_tuning_runs_mapped_workers_with_rdb_storage(kit: Any, pg_stack: Any) -> None:
    import optuna

    storage_url = pg_stack.services.env.get("CTR_TUNING_STORAGE")
    assert storage_url and storage_url.startswith("postgresql"), storage_url
    (pg_stack.home / "config" / "tune.yaml").write_text(tuning_config(epochs=1))
    run_id = kit.run_pipeline(pg_stack, CONF, timeout=900)
    workers = _mapped(pg_stack, kit, run_id, "tuning.tune_worker")
    assert [(w["map_index"], w["state"]) for w in workers] == [(0, "success"), (1, "success")]
    logs = [_mapped_log(pg_stack, kit, run_id, w) for w in workers]
    assert all(f"Tuning worker {i} on study " in log for i, log in enumerate(logs)), logs
    assert any("🧪 trial   0  COMPLETE" in log for log in logs), logs
    tis = pg_stack.rest.task_instances(kit.DAG_ID, run_id)
    notify = pg_stack.rest.task_log(
        kit.DAG_ID, run_id, "notify_completion", tis["notify_completion"]["try_number"]
    )
    assert "🔎 Tuned: best trial" in notify
    assert pg_stack.registered_versions("tuned_model") == ["v1"]
    # This run's study only: the shared database also holds other tests' studies.
    study_name = pg_stack.rest.xcom(kit.DAG_ID, run_id, "tuning.create_study", "study")
    trials = optuna.load_study(study_name=study_name, storage=storage_url).get_trials()
    finished = [t for t in trials if t.state.is_finished() and t.state.name != "FAIL"]
    assert len(finished) >= 3  # in the database, not in journal files
    # The workers shared the one study: the trials each says it ran add up to the
    # study's, and every trial records the process that ran it. (Which worker ran how
    # many depends on timing: a late worker may find the study already full.)
    stops = [re.search(r"Tuning worker \d+ stops after (\d+) trial", log) for log in logs]
    assert all(stops), logs
    ran = [int(m.group(1)) for m in stops if m]
    assert sum(ran) == len(trials), (ran, [(t.number, t.state.name) for t in trials])
    assert all("pid" in t.user_attrs.get("worker", {}) for t in finished), finished
