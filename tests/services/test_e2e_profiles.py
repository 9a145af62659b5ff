"""End to end over the real REST API, once per deployment profile.

For SQLite + LocalExecutor (``make airflow``) and for PostgreSQL + CeleryExecutor + Redis
+ FAB: the shared stacks (see conftest) are logged in to through the profile's own auth
helper; unpause and trigger ``training_pipeline`` with a small conf, wait for success,
check the registry gained a version and the task logs (fetched over REST) hold the spec's
lines, and that a bad conf is refused with HTTP 400 and creates no run. The production
profile also shows its users (an admin and a read-only viewer, FAB) and Optuna's
database.
"""

from __future__ import annotations

import contextlib
import re
import stat
from typing import Any

import httpx
import psutil
import pytest

from scripts.services_processes import read_pid_file, recorded_processes
from testkit import services as kit

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


def check_successful_run(stack: kit.Stack, run_id: str) -> dict[str, dict[str, Any]]:
    """Registry and logs after a good run; returns the task instances."""
    assert stack.registered_versions() == ["v1"]
    assert (stack.registry_dir / "staging" / "ctr_model" / "v1").is_dir()
    rest = stack.rest
    assert rest is not None
    tis = rest.task_instances(kit.DAG_ID, run_id)
    assert sorted(tis) == sorted(kit.TASKS + kit.TUNING_TASKS)
    assert tis["tuning.create_study"]["state"] == "success"
    assert tis["tuning.tune_worker"]["state"] == "skipped"  # tuning_trials=0
    for task_id in kit.TASKS:
        ti = tis[task_id]
        assert ti["state"] == "success", (task_id, ti["state"])
        text = rest.task_log(kit.DAG_ID, run_id, task_id, ti["try_number"])
        for pattern in EXPECTED_LOG_LINES[task_id]:
            assert re.search(pattern, text), f"{task_id} log lacks {pattern!r}:\n{text[-3000:]}"
    return tis


def check_bad_conf_refused(stack: kit.Stack) -> None:
    rest = stack.rest
    assert rest is not None
    resp = rest.trigger(kit.DAG_ID, {**kit.GOOD_CONF, "min_auc": 1.5})
    assert resp.status_code == 400, resp.text
    assert "min_auc" in resp.text and "1.5" in resp.text, resp.text
    confs = [r.get("conf") or {} for r in rest.runs(kit.DAG_ID)]
    assert not [c for c in confs if c.get("min_auc") == 1.5]


def test_e2e_postgres_celery_runs_pipeline_over_rest(
    pg_stack: kit.Stack, pg_run: str, pg_crash: Any, pg_make_run: Any
) -> None:
    stack = pg_stack
    env = stack.info["env"]
    services = stack.services
    db_url = f"postgresql+psycopg2://postgres@127.0.0.1:5432/{env['CTR_AIRFLOW_DB']}"
    assert services.env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert services.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == db_url
    assert services.env["AIRFLOW__CELERY__RESULT_BACKEND"] == f"db+{db_url}"
    workers = [name for name in stack.pids() if name.startswith("celery-worker")]
    assert workers == ["celery-worker-1", "celery-worker-2", "celery-worker-3"]
    tis = check_successful_run(stack, pg_run)
    # One setting routes the training tasks to the GPU queue; only workers 2 and 3
    # consume it.
    default_queue, gpu_queue = stack.info["queues"][:2]
    training = {"train_model", "tuning.tune_worker"}
    assert {tis[t]["queue"] for t in training} == {gpu_queue}
    others = {t: ti["queue"] for t, ti in tis.items() if t not in training}
    assert set(others.values()) == {default_queue}, others
    check_bad_conf_refused(stack)
    gpu_logs = [
        (services.log_dir / f"{name}.log").read_text(errors="replace")
        for name, queue in zip(workers, stack.info["queues"], strict=True)
        if queue == gpu_queue
    ]
    assert len(gpu_logs) == 2
    assert any("train_model" in log for log in gpu_logs), "train_model ran on no gpu worker"
    default_log = (services.log_dir / "celery-worker-1.log").read_text(errors="replace")
    assert "validate_features" in default_log and "train_model" not in default_log
    # The worker-crash trial and make run on PostgreSQL (test_worker_crash.py,
    # test_run_pipeline_postgres.py) run beside the remaining tests.
    pg_crash.start()
    pg_make_run.start()
    print(f"postgres-celery: healthy after {stack.info['healthy_s']:.1f} s")


def test_production_profile_users_are_fab_admin_and_read_only_viewer(pg_stack: kit.Stack) -> None:
    services = pg_stack.services
    auth = services.auth
    assert auth.kind == "fab"
    # Generated passwords, printed once by `up`, stored for the owner only.
    stored = auth.passwords()
    assert sorted(stored) == ["admin", "viewer"]
    assert stat.S_IMODE(auth.passwords_file.stat().st_mode) == 0o600
    for user, role in (("admin", "Admin"), ("viewer", "Viewer")):
        assert f"user {user} ({role}), password {stored[user]}  (shown once" in pg_stack.text
    viewer = kit.AirflowRest(services.base_url, services.api_token("viewer"))
    try:
        assert viewer.http.get(f"/api/v2/dags/{kit.DAG_ID}").status_code == 200
        patch = viewer.http.patch(f"/api/v2/dags/{kit.DAG_ID}", json={"is_paused": True})
        assert patch.status_code == 403, patch.text
        assert viewer.trigger(kit.DAG_ID, kit.GOOD_CONF).status_code == 403
    finally:
        viewer.close()
    # A wrong password gets no token.
    bad = httpx.post(
        f"{services.base_url}/auth/token", json={"username": "admin", "password": "nope"}
    )
    assert bad.status_code in (400, 401), bad.text


def test_production_profile_has_optuna_storage_beside_airflow(pg_stack: kit.Stack) -> None:
    import optuna

    storage = pg_stack.services.env["CTR_TUNING_STORAGE"]
    optuna_db = pg_stack.info["env"]["CTR_OPTUNA_DB"]
    assert storage == f"postgresql+psycopg2://postgres@127.0.0.1:5432/{optuna_db}"
    assert f"Tuning storage:  {storage}" in pg_stack.text
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(storage=storage, study_name="probe", load_if_exists=True)
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=1)
    assert len(optuna.load_study(study_name="probe", storage=storage).trials) >= 1


def test_e2e_sqlite_local_runs_pipeline_over_rest(sqlite_stack: kit.Stack, sqlite_run: str) -> None:
    stack = sqlite_stack
    assert stack.services.env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert stack.services.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == (
        f"sqlite:///{stack.home}/airflow_home/airflow.db"
    )
    assert stack.info["versions_before"] == []
    check_successful_run(stack, sqlite_run)
    check_bad_conf_refused(stack)
    # Parsing, running, logging and serving the UI all stayed inside the temp dirs.
    after = kit.snapshot(kit.outside_roots())
    before = stack.info["outside_before"]
    changed = sorted(p for p, m in after.items() if before.get(p) != m)
    assert not changed, f"the deployment wrote outside its temp dirs: {changed[:20]}"
    check_dev_profile_is_private(stack)
    print(f"sqlite-local: run {sqlite_run} succeeded in {stack.info['run_seconds']:.1f} s")


def check_dev_profile_is_private(stack: kit.Stack) -> None:
    """Issue 28.4: every socket of the dev deployment (API server, task and triggerer log
    servers) listens on the loopback; the password file and service logs are 0600."""
    svc = stack.services
    listening = set()
    recorded = read_pid_file(svc.pid_file)  # the supervising `up` process wrote it
    assert recorded, svc.pid_file
    for proc in recorded_processes(recorded):
        with contextlib.suppress(psutil.Error):
            listening |= {
                (c.laddr.ip, c.laddr.port)
                for c in proc.net_connections()
                if c.status == psutil.CONN_LISTEN
            }
    ports = {int(svc.env[k]) for k in ("AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT",)}
    assert ports <= {port for _, port in listening}, listening  # the log server is up
    assert {ip for ip, _ in listening} == {"127.0.0.1"}, listening
    private = [svc.auth.passwords_file, *sorted(svc.log_dir.glob("*.log"))]
    assert {str(p): p.stat().st_mode & 0o777 for p in private} == {str(p): 0o600 for p in private}
