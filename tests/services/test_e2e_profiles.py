"""End to end over the real REST API, once per deployment profile.

For SQLite + LocalExecutor (``make airflow``) and for PostgreSQL + CeleryExecutor + Redis:
start the services on loopback ports, log in, unpause and trigger ``training_pipeline``
with a small conf, wait for success, check the registry gained a version and the task
logs (fetched over REST) hold the spec's lines, check a bad conf is refused with HTTP 400
and creates no run, stop everything and check no process is left.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.services, pytest.mark.slow, pytest.mark.timeout(900)]

#: Lines the spec promises in each task's log (regular expressions).
EXPECTED_LOG_LINES = {
    "validate_features": [
        r"✅ train data: data/features/v1/train/data\.parquet \(\d+(\.\d+)? [KMG]?B\)",
        r"✅ val data: data/features/v1/val/data\.parquet \(",
        r"✅ test data: data/features/v1/test/data\.parquet \(",
    ],
    "train_model": [
        r"🚀 Running training command\.\.\.",
        r"Epoch 1/2: Train Loss: \d+\.\d{4}, Val AUC: \d+\.\d{4}",
        r"Epoch 2/2: Train Loss: \d+\.\d{4}, Val AUC: \d+\.\d{4}",
        r"✅ Training complete",
    ],
    "evaluate_model": [
        r"📊 Model Metrics:",
        r"test_accuracy: \d+\.\d{4}",
        r"test_auc: \d+\.\d{4}",
    ],
    "register_model": [
        r"✅ Model registered: ctr_model v1 \(staging\)",
        r"Path: models/staging/ctr_model/v1",
    ],
    "notify_completion": [r"🎉 Training Pipeline Complete!"],
}


def check_successful_run(kit: Any, stack: Any, run_id: str) -> dict[str, dict[str, Any]]:
    """Registry and logs after a good run; returns the task instances."""
    assert stack.registered_versions() == ["v1"]
    assert (stack.registry_dir / "staging" / "ctr_model" / "v1").is_dir()

    tis = stack.rest.task_instances(kit.DAG_ID, run_id)
    assert sorted(tis) == sorted(kit.TASKS + kit.TUNING_TASKS)
    assert tis["tuning.create_study"]["state"] == "success"
    assert tis["tuning.tune_worker"]["state"] == "skipped"  # tuning_trials=0
    for task_id in kit.TASKS:
        ti = tis[task_id]
        assert ti["state"] == "success", (task_id, ti["state"])
        text = stack.rest.task_log(kit.DAG_ID, run_id, task_id, ti["try_number"])
        for pattern in EXPECTED_LOG_LINES[task_id]:
            assert re.search(pattern, text), f"{task_id} log lacks {pattern!r}:\n{text[-3000:]}"
    return tis


def check_bad_conf_refused(kit: Any, stack: Any) -> None:
    before = stack.rest.runs(kit.DAG_ID)
    resp = stack.rest.trigger(kit.DAG_ID, {**kit.GOOD_CONF, "min_auc": 1.5})
    assert resp.status_code == 400, resp.text
    assert "min_auc" in resp.text and "1.5" in resp.text, resp.text
    assert len(stack.rest.runs(kit.DAG_ID)) == len(before)


def _drop_test_resources(kit: Any, db_url: str, redis_db: int, queues: list[str]) -> None:
    kit.SERVICES.drop_postgres_database(db_url)
    import redis

    client = redis.Redis(host="127.0.0.1", port=6379, db=redis_db)
    for queue in queues:
        for key in client.scan_iter(match=f"*{queue}*"):
            client.delete(key)


def test_e2e_postgres_celery_runs_pipeline_over_rest(kit: Any, tmp_path: Path) -> None:
    kit.require_backing_services(("PostgreSQL", "127.0.0.1", 5432), ("Redis", "127.0.0.1", 6379))
    token = kit.new_token()
    db_name = f"ctr_pipeline_test_{token}"
    default_queue = f"ctr_test_{token}"
    gpu_queue = f"ctr_test_{token}_gpu"
    db_url = f"postgresql+psycopg2://postgres@127.0.0.1:5432/{db_name}"
    kit.prepare_home(tmp_path)
    env = kit.stack_env(
        tmp_path,
        CTR_AIRFLOW_DB=db_name,
        CTR_CELERY_BROKER_URL=f"redis://127.0.0.1:6379/{kit.TEST_REDIS_DB}",
        AIRFLOW__CELERY__WORKER_CONCURRENCY="1",
        # Queues of our own, so no other Celery worker on this broker takes our tasks.
        AIRFLOW__OPERATORS__DEFAULT_QUEUE=default_queue,
        CTR_TRAIN_QUEUE=gpu_queue,
    )
    start = time.monotonic()
    try:
        with kit.running_stack(
            tmp_path,
            "postgres-celery",
            extra_env=env,
            celery_workers=[default_queue, gpu_queue],
            triggerer=False,
        ) as stack:
            services = stack.services
            assert services.env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
            assert services.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == db_url
            assert services.env["AIRFLOW__CELERY__RESULT_BACKEND"] == f"db+{db_url}"
            assert [s.name for s in services.services][-2:] == [
                "celery-worker-1",
                "celery-worker-2",
            ]
            healthy_s = time.monotonic() - start
            run_id = kit.run_pipeline(stack, kit.GOOD_CONF)
            tis = check_successful_run(kit, stack, run_id)
            # One setting routes train_model to the GPU queue; only worker 2 consumes it.
            assert tis["train_model"]["queue"] == gpu_queue
            others = {t: ti["queue"] for t, ti in tis.items() if t != "train_model"}
            assert set(others.values()) == {default_queue}, others
            check_bad_conf_refused(kit, stack)
            worker2_log = (services.log_dir / "celery-worker-2.log").read_text(errors="replace")
            assert "train_model" in worker2_log, "train_model did not run on the gpu worker"
        print(
            f"postgres-celery: healthy after {healthy_s:.1f} s, whole test "
            f"{time.monotonic() - start:.1f} s"
        )
    finally:
        if os.environ.get("CTR_KEEP_TEST_DB") != "1":
            _drop_test_resources(kit, db_url, kit.TEST_REDIS_DB, [default_queue, gpu_queue])


def test_e2e_sqlite_local_runs_pipeline_over_rest(
    kit: Any, sqlite_stack: Any, sqlite_run: str
) -> None:
    stack = sqlite_stack
    assert stack.services.env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert stack.services.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == (
        f"sqlite:///{stack.home}/airflow_home/airflow.db"
    )
    assert stack.versions_before == []
    check_successful_run(kit, stack, sqlite_run)
    check_bad_conf_refused(kit, stack)
    # Parsing, running, logging and serving the UI all stayed inside the temp dirs.
    after = kit.snapshot(kit.outside_roots())
    changed = sorted(p for p, m in after.items() if stack.outside_before.get(p) != m)
    assert not changed, f"the deployment wrote outside its temp dirs: {changed[:20]}"
    print(f"sqlite-local: run {sqlite_run} succeeded in {stack.run_seconds:.1f} s")
