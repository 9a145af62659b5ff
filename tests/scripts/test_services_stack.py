"""scripts/services_stack.py without starting Airflow: profiles' environments and restarts."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from scripts.airflow_env import REPO
from scripts.services_auth import FAB_AUTH_MANAGER
from scripts.services_processes import Service, session_processes
from scripts.services_stack import AirflowServices


def test_sqlite_profile_env_puts_everything_under_home(tmp_path: Path) -> None:
    svc = AirflowServices(profile="sqlite-local", home=tmp_path, port=18123)
    env = svc.env
    assert env["AIRFLOW_HOME"] == str(tmp_path / "airflow_home")
    assert env["CTR_PIPELINE_HOME"] == str(tmp_path)
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == (
        f"sqlite:///{tmp_path}/airflow_home/airflow.db"
    )
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == str(REPO / "dags")
    # Moving the API server moves the execution API URL with it.
    assert env["AIRFLOW__API__PORT"] == "18123"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:18123/execution/"
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] == "admin:admin,viewer:viewer"
    assert svc.auth.kind == "simple"
    assert "CTR_TUNING_STORAGE" not in env or env["CTR_TUNING_STORAGE"] == ""
    assert [s.name for s in svc.service_specs()] == [
        "api-server",
        "scheduler",
        "dag-processor",
        "triggerer",
    ]


def test_api_base_url_is_set_from_the_chosen_host_and_port(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 28.3: notifications carried no `Log:`/card links under `make airflow`."""
    monkeypatch.delenv("AIRFLOW__API__BASE_URL", raising=False)
    svc = AirflowServices(home=tmp_path, port=18124)
    assert svc.env["AIRFLOW__API__BASE_URL"] == "http://127.0.0.1:18124"
    monkeypatch.setattr("socket.getfqdn", lambda: "ops-box.example.org")
    exposed = AirflowServices(home=tmp_path, port=18125, host="0.0.0.0")
    assert exposed.env["AIRFLOW__API__BASE_URL"] == "http://ops-box.example.org:18125"
    # The links the notification and card code build from it:
    monkeypatch.delenv("CTR_AIRFLOW_BASE_URL", raising=False)
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", svc.env["AIRFLOW__API__BASE_URL"])
    from dags.pipeline_notifications import api_base_url
    from ml.cards.links import card_url

    assert api_base_url() == "http://127.0.0.1:18124"  # what the DAG's `Log:` links use
    assert (card_url("ctr_model", "v3") or "").startswith("http://127.0.0.1:18124/plugin/")


def test_api_base_url_set_by_the_operator_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://airflow.example.org")
    assert AirflowServices(home=tmp_path).env["AIRFLOW__API__BASE_URL"] == (
        "https://airflow.example.org"
    )


def test_postgres_celery_profile_env_auth_storage_and_workers(tmp_path: Path) -> None:
    extra = {"CTR_AIRFLOW_DB": "ctr_x", "CTR_OPTUNA_DB": "ctr_x_optuna", "CTR_TRAIN_QUEUE": "gpu"}
    svc = AirflowServices(
        profile="postgres-celery", home=tmp_path, extra_env=extra, triggerer=False
    )
    env = svc.env
    url = "postgresql+psycopg2://postgres@127.0.0.1:5432/ctr_x"
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == url
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"] == f"db+{url}"
    assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://127.0.0.1:6379/6"
    # Optuna's database on the same server, handed to every service (and so every task).
    assert env["CTR_TUNING_STORAGE"] == "postgresql+psycopg2://postgres@127.0.0.1:5432/ctr_x_optuna"
    # Real users: FAB with an admin and a read-only viewer.
    assert env["AIRFLOW__CORE__AUTH_MANAGER"] == FAB_AUTH_MANAGER
    assert svc.auth.users() == {"admin": "Admin", "viewer": "Viewer"}
    # An orphaned task is failed (and retried) within about a minute, not Airflow's 5.
    assert int(env["AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT"]) <= 60
    workers = [s for s in svc.service_specs() if s.name.startswith("celery-worker")]
    # By default one worker takes the default queue and the train queue.
    assert len(workers) == 1
    assert workers[0].argv[workers[0].argv.index("--queues") + 1] == "default,gpu"


def test_a_celery_worker_with_a_home_of_its_own_runs_with_it(tmp_path: Path) -> None:
    from scripts.airflow_services import build_parser

    other = tmp_path / "host-b"
    args = build_parser().parse_args(["up", "--worker-home", str(other)])
    assert args.worker_home == [other]
    svc = AirflowServices(
        profile="postgres-celery",
        home=tmp_path / "services",
        celery_workers=["default", "gpu"],
        worker_env=[{}, {"CTR_PIPELINE_HOME": str(other)}],
        triggerer=False,
    )
    assert svc.worker_homes() == [other]
    first, second = (s for s in svc.service_specs() if s.name.startswith("celery-worker"))
    assert first.env is None  # the deployment's environment
    assert second.env is not None and second.env["CTR_PIPELINE_HOME"] == str(other)
    # Airflow's own settings stay the deployment's (its database, broker, AIRFLOW_HOME).
    assert {k: v for k, v in second.env.items() if k != "CTR_PIPELINE_HOME"} == {
        k: v for k, v in svc.env.items() if k != "CTR_PIPELINE_HOME"
    }
    probe = Service(
        second.name,
        [sys.executable, "-c", "import os; print(os.environ['CTR_PIPELINE_HOME'])"],
        env=second.env,
    )
    svc.services = [probe]
    svc._spawn(probe)
    assert probe.proc is not None and probe.proc.wait(timeout=30) == 0
    assert (svc.log_dir / f"{second.name}.log").read_text().strip() == str(other)


def test_restart_kills_the_leftovers_of_the_dead_service_first(tmp_path: Path) -> None:
    svc = AirflowServices(home=tmp_path)
    svc.log_dir.mkdir(parents=True)
    code = (
        "import subprocess, sys, time\n"
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'])\n"
        "time.sleep(0.5)\n"
    )
    worker = Service("fake-worker", [sys.executable, "-c", code])
    svc.services = [worker]
    svc._spawn(worker)
    first = worker.proc
    assert first is not None
    try:
        first.wait(timeout=30)
        orphans = session_processes(first.pid, since=worker.started_at)
        assert len(orphans) == 1  # the "pool child" outlived its leader
        worker.argv = [sys.executable, "-c", "import time; time.sleep(300)"]
        svc.restart(worker)
        assert worker.proc is not first and worker.proc is not None
        time.sleep(0.2)
        assert session_processes(first.pid, since=worker.started_at - 5) == []
        assert worker.proc.poll() is None
        assert svc.pid_file.is_file()
    finally:
        for proc in (worker.proc, first):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
        for orphan in session_processes(first.pid):
            orphan.kill()
    assert (svc.log_dir / "fake-worker.log").is_file()


def test_dev_profile_log_servers_on_the_loopback_and_private_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 28.4: world-readable password file and service logs; log servers on 0.0.0.0."""
    monkeypatch.delenv("CTR_LOG_SERVER_HOST", raising=False)
    monkeypatch.delenv("AIRFLOW__CORE__HOSTNAME_CALLABLE", raising=False)
    monkeypatch.setattr(os, "umask", os.umask)  # restored below
    svc = AirflowServices(home=tmp_path)
    assert svc.env["CTR_LOG_SERVER_HOST"] == "127.0.0.1"
    assert svc.env["AIRFLOW__CORE__HOSTNAME_CALLABLE"] == "scripts.airflow_launch.loopback_hostname"
    assert svc.env["CTR_SERVICES_UMASK"] == "077"
    assert svc.env["AIRFLOW__LOGGING__FILE_TASK_HANDLER_NEW_FILE_PERMISSIONS"] == "0o600"
    assert all(s.argv[1:3] == ["-m", "scripts.airflow_launch"] for s in svc.service_specs())
    # A service's log and everything it writes are private, whatever this shell's umask.
    old = os.umask(0o022)
    try:
        code = "open('written-by-the-service', 'w').write('x')"
        fake = Service("fake", [sys.executable, "-c", code])
        svc.services = [fake]
        monkeypatch.chdir(tmp_path)
        svc._spawn(fake)
        assert fake.proc is not None and fake.proc.wait(timeout=30) == 0
        svc.log_event("an event")
    finally:
        os.umask(old)
    assert _mode(tmp_path / "written-by-the-service") == 0o600
    assert _mode(svc.log_dir) == 0o700
    assert _mode(svc.log_dir / "fake.log") == 0o600
    assert _mode(svc.log_dir / "supervisor.log") == 0o600


def test_prepare_makes_the_password_file_and_what_it_creates_private(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from scripts import airflow_env

    def migrate(env: dict[str, str], **kw: Any) -> dict[str, Any]:
        (Path(env["AIRFLOW_HOME"]) / "airflow.cfg").write_text("[api]\nsecret_key = s\n")
        return {"migrated": True, "migrate_seconds": 0.0}

    monkeypatch.setattr(airflow_env, "ensure_db", migrate)
    svc = AirflowServices(home=tmp_path, extra_env={"CTR_SEED_ROWS": "500"})
    svc.auth.passwords_file.parent.mkdir(parents=True, exist_ok=True)
    svc.auth.passwords_file.write_text('{"admin": "x"}')
    svc.auth.passwords_file.chmod(0o644)  # as Airflow made it before
    old = os.umask(0o022)
    try:
        svc.prepare()
        assert os.umask(0o022) == 0o022  # restored after prepare
    finally:
        os.umask(old)
    assert _mode(svc.auth.passwords_file) == 0o600
    # Made while preparing: airflow.cfg (secret keys), the seeded config and data.
    assert _mode(svc.airflow_home / "airflow.cfg") == 0o600
    assert _mode(tmp_path / "config" / "model_config.yaml") == 0o600
    assert _mode(tmp_path / "data" / "features" / "v1" / "train" / "data.parquet") == 0o600


def test_a_celery_profile_keeps_airflows_log_server_binding(tmp_path: Path) -> None:
    svc = AirflowServices(profile="postgres-celery", home=tmp_path)
    assert not svc.env.get("CTR_LOG_SERVER_HOST")  # workers on other hosts serve their logs
    assert (
        "AIRFLOW__CORE__HOSTNAME_CALLABLE" not in svc.env
        or svc.env["AIRFLOW__CORE__HOSTNAME_CALLABLE"] != "scripts.airflow_launch.loopback_hostname"
    )


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_prepare_seeds_the_default_config_into_a_new_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `make airflow --home NEW` copies the default config as `make run` does (issue 9).
    from scripts import airflow_env

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(
        airflow_env, "ensure_db", lambda env, **kw: calls.append(kw) or {"migrated": False}
    )
    svc = AirflowServices(home=tmp_path, extra_env={"CTR_SEED_ROWS": "2000"})
    svc.prepare()
    config = tmp_path / "config" / "model_config.yaml"
    assert svc.seeded_config == config
    assert config.read_bytes() == (REPO / "config" / "model_config.yaml").read_bytes()
    # ... and the default synthetic data, so the first triggered run finds it (issue 28.6).
    assert svc.seeded_data[0].startswith("📦 No features at ")
    assert (tmp_path / "data" / "features" / "v1" / "train" / "data.parquet").is_file()
    assert calls == [{"commands": []}]  # SimpleAuthManager: no users to create
    svc.prepare()
    assert svc.seeded_config is None and svc.seeded_data == []  # there now: left alone
