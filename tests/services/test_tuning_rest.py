"""Tuning over the REST API in the PostgreSQL + Celery profile: two mapped workers, RDB.

The stack of test_e2e_profiles.py's PostgreSQL test (its own metadata database, Redis DB
number and queue) with two Celery workers of concurrency 1 on the default queue, and
``CTR_TUNING_STORAGE`` pointing at a PostgreSQL database of its own: ``training_pipeline``
is triggered with ``tuning_trials=3, tuning_parallel=2``, so the two mapped
``tune_worker`` tasks run at once, one on each Celery worker, sharing the study through
the database. Logged in through the profile's own auth helper (``running_stack``).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from testkit.tuning import tuning_config

pytestmark = [pytest.mark.services, pytest.mark.slow, pytest.mark.timeout(900)]

CONF = {
    "config_path": "config/tune.yaml",
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


def test_tuning_runs_mapped_workers_on_two_celery_workers_with_rdb_storage(
    kit: Any, tmp_path: Path
) -> None:
    import optuna

    kit.require_backing_services(("PostgreSQL", "127.0.0.1", 5432), ("Redis", "127.0.0.1", 6379))
    token = kit.new_token()
    db_name = f"ctr_pipeline_test_{token}"
    queue = f"ctr_test_{token}"
    db_url = f"postgresql+psycopg2://postgres@127.0.0.1:5432/{db_name}"
    storage_url = f"postgresql+psycopg2://postgres@127.0.0.1:5432/ctr_optuna_test_{token}"
    kit.prepare_home(tmp_path)
    (tmp_path / "config" / "tune.yaml").write_text(tuning_config(epochs=3))
    kit.SERVICES.ensure_postgres_database(storage_url)
    env = kit.stack_env(
        tmp_path,
        CTR_AIRFLOW_DB=db_name,
        CTR_CELERY_BROKER_URL=f"redis://127.0.0.1:6379/{kit.TEST_REDIS_DB}",
        AIRFLOW__CELERY__WORKER_CONCURRENCY="1",
        AIRFLOW__OPERATORS__DEFAULT_QUEUE=queue,
        CTR_TUNING_STORAGE=storage_url,
    )
    start = time.monotonic()
    try:
        with kit.running_stack(
            tmp_path,
            "postgres-celery",
            extra_env=env,
            celery_workers=[queue, queue],
            triggerer=False,
        ) as stack:
            run_id = kit.run_pipeline(stack, CONF, timeout=600)
            workers = _mapped(stack, kit, run_id, "tuning.tune_worker")
            assert [(w["map_index"], w["state"]) for w in workers] == [
                (0, "success"),
                (1, "success"),
            ]
            logs = [_mapped_log(stack, kit, run_id, w) for w in workers]
            assert all(f"Tuning worker {i} on study " in log for i, log in enumerate(logs)), logs
            assert all(storage_url in log for log in logs)  # the database, not journal files
            assert any("🧪 trial   0  COMPLETE" in log for log in logs), logs
            for i in (1, 2):
                worker_log = (stack.services.log_dir / f"celery-worker-{i}.log").read_text(
                    errors="replace"
                )
                assert "tune_worker" in worker_log, f"celery-worker-{i} ran no tune_worker"
            tis = stack.rest.task_instances(kit.DAG_ID, run_id)
            notify = stack.rest.task_log(
                kit.DAG_ID, run_id, "notify_completion", tis["notify_completion"]["try_number"]
            )
            assert "🔎 Tuned: best trial" in notify
            assert stack.registered_versions() == ["v1"]
        (study_name,) = optuna.study.get_all_study_names(storage_url)
        trials = optuna.load_study(study_name=study_name, storage=storage_url).get_trials()
        finished = [t for t in trials if t.state.is_finished() and t.state.name != "FAIL"]
        assert len(finished) >= 3
        # Both mapped workers ran trials, at the same time, through the one database.
        assert len({t.user_attrs["worker"]["pid"] for t in finished}) == 2
        print(f"tuning over postgres-celery: {time.monotonic() - start:.1f} s")
    finally:
        if os.environ.get("CTR_KEEP_TEST_DB") != "1":
            kit.SERVICES.drop_postgres_database(db_url)
            kit.SERVICES.drop_postgres_database(storage_url)
            import redis

            client = redis.Redis(host="127.0.0.1", port=6379, db=kit.TEST_REDIS_DB)
            for key in client.scan_iter(match=f"*{queue}*"):
                client.delete(key)
