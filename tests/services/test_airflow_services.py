"""scripts/airflow_services.py without starting Airflow: profiles, env, ports, stopping."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import psutil
import pytest


def _services(kit: Any) -> Any:
    return kit.SERVICES


def test_load_env_file_expands_defaults_and_earlier_keys(kit: Any, tmp_path: Path) -> None:
    env_file = tmp_path / "x.env"
    env_file.write_text(
        textwrap.dedent(
            """\
            # comment
            export DB=${DB_NAME:-ctr_db}
            URL=postgresql://h/${DB}
            QUOTED="a b"
            HOME_DIR=$AIRFLOW_HOME/x
            """
        )
    )
    out = _services(kit).load_env_file(env_file, {"AIRFLOW_HOME": "/ah"})
    assert out == {
        "DB": "ctr_db",
        "URL": "postgresql://h/ctr_db",
        "QUOTED": "a b",
        "HOME_DIR": "/ah/x",
    }
    out = _services(kit).load_env_file(env_file, {"AIRFLOW_HOME": "/ah", "DB_NAME": "mine"})
    assert out["URL"] == "postgresql://h/mine"


def test_load_env_file_malformed_line_names_file_and_line(kit: Any, tmp_path: Path) -> None:
    env_file = tmp_path / "bad.env"
    env_file.write_text("A=1\nthis is not an assignment\n")
    with pytest.raises(_services(kit).ServicesError, match=r"bad\.env:2: expected KEY=VALUE"):
        _services(kit).load_env_file(env_file, {})


def test_load_env_file_undefined_variable_says_how_to_fix(kit: Any, tmp_path: Path) -> None:
    env_file = tmp_path / "u.env"
    env_file.write_text("A=${NOPE}/x\n")
    with pytest.raises(_services(kit).ServicesError, match=r"\$\{NOPE\} is not set; export NOPE"):
        _services(kit).load_env_file(env_file, {})


def test_profile_unknown_name_lists_choices(kit: Any) -> None:
    with pytest.raises(_services(kit).ServicesError, match="sqlite-local, postgres-celery"):
        _services(kit).profile_path("mysql-magic")


def test_sqlite_profile_env_puts_everything_under_home(kit: Any, tmp_path: Path) -> None:
    svc = _services(kit).AirflowServices(profile="sqlite-local", home=tmp_path, port=18123)
    env = svc.env
    assert env["AIRFLOW_HOME"] == str(tmp_path / "airflow_home")
    assert env["CTR_PIPELINE_HOME"] == str(tmp_path)
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == (
        f"sqlite:///{tmp_path}/airflow_home/airflow.db"
    )
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == str(kit.REPO / "dags")
    # Moving the API server moves the execution API URL with it.
    assert env["AIRFLOW__API__PORT"] == "18123"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:18123/execution/"
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] == "admin:admin"
    assert [s.name for s in svc._service_specs()] == [
        "api-server",
        "scheduler",
        "dag-processor",
        "triggerer",
    ]


def test_postgres_celery_profile_env_and_workers(kit: Any, tmp_path: Path) -> None:
    svc = _services(kit).AirflowServices(
        profile="postgres-celery",
        home=tmp_path,
        extra_env={"CTR_AIRFLOW_DB": "ctr_x", "CTR_TRAIN_QUEUE": "gpu"},
        triggerer=False,
    )
    env = svc.env
    url = "postgresql+psycopg2://postgres@127.0.0.1:5432/ctr_x"
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == url
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"] == f"db+{url}"
    assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://127.0.0.1:6379/6"
    workers = [s for s in svc._service_specs() if s.name.startswith("celery-worker")]
    # By default one worker takes the default queue and the train queue.
    assert len(workers) == 1
    assert workers[0].argv[workers[0].argv.index("--queues") + 1] == "default,gpu"


def test_check_ports_names_taken_port_and_setting(kit: Any, tmp_path: Path) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        svc = _services(kit).AirflowServices(home=tmp_path, port=port)
        with pytest.raises(
            _services(kit).ServicesError, match=rf"port {port} \(API server\).*--port"
        ):
            svc.check_ports()


_TREE = textwrap.dedent(
    """\
    import os, subprocess, sys, time
    # Like a task supervisor: a child in a process group of its own.
    subprocess.Popen([sys.executable, "-c", "import os,time; os.setpgid(0,0); time.sleep(300)"])
    # Like a process that escapes the session entirely: only the tag finds it.
    subprocess.Popen([sys.executable, "-c", "import os,time; os.setsid(); time.sleep(300)"])
    # Ignores SIGTERM: needs the SIGKILL escalation.
    subprocess.Popen([sys.executable, "-c",
        "import signal,time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(300)"])
    time.sleep(300)
    """
)


def test_stop_processes_leaves_no_process_behind(kit: Any) -> None:
    services = _services(kit)
    tag = f"ctr-test-{kit.new_token()}"
    env = {"PATH": "/usr/bin:/bin", services.TAG_VAR: tag}
    started = time.time()
    leader = subprocess.Popen([sys.executable, "-c", _TREE], env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while len(services.owned_processes(tag, [leader.pid], started)) < 4:
            assert time.monotonic() < deadline, "the process tree did not start"
            time.sleep(0.1)
        pids = [p.pid for p in services.owned_processes(tag, [leader.pid], started)]
        left = services.stop_processes(tag, [leader.pid], since=started, grace=2)
        assert left == []
        leader.wait(timeout=5)
        assert not [
            p
            for p in pids
            if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE
        ]
    finally:
        for proc in services.owned_processes(tag, [leader.pid], started):
            proc.send_signal(signal.SIGKILL)


def test_cli_down_without_pid_file_says_nothing_to_stop(
    kit: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _services(kit).main(["down", "--home", str(tmp_path)]) == 0
    assert "nothing to stop" in capsys.readouterr().out
    assert _services(kit).main(["status", "--home", str(tmp_path)]) == 1


@pytest.mark.services
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_cli_up_prints_login_and_ctrl_c_stops_everything(kit: Any, tmp_path: Path) -> None:
    import json
    import os
    import re

    services = _services(kit)
    port = kit.free_port()
    env = {
        **os.environ,
        # The profile's own knobs for the log-server ports: never a developer's 8793/8794.
        "CTR_WORKER_LOG_PORT": str(kit.free_port()),
        "CTR_TRIGGER_LOG_PORT": str(kit.free_port()),
        "CTR_AIRFLOW_API_WORKERS": "1",
        "CTR_TRAINING_SCHEDULE": "none",
        "PYTHONPYCACHEPREFIX": str(tmp_path / "pycache"),
    }
    cmd = [
        sys.executable,
        str(kit.REPO / "scripts" / "airflow_services.py"),
        "up",
        "--port",
        str(port),
        "--home",
        str(tmp_path),
    ]
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    pid_file = tmp_path / "airflow_home" / services.PID_FILE_NAME
    record: dict[str, Any] = {}
    try:
        out = []
        assert proc.stdout is not None
        for line in proc.stdout:
            out.append(line)
            if "Press Ctrl-C" in line:
                break
        text = "".join(out)
        assert "Press Ctrl-C" in text, text
        assert f"UI and REST API: http://127.0.0.1:{port}" in text
        match = re.search(r"Login: +user admin, password (\S+)", text)
        assert match, text
        stored = json.loads((tmp_path / "airflow_home" / services.PASSWORDS_FILE_NAME).read_text())
        assert stored["admin"] == match.group(1)

        rest = kit.AirflowRest(f"http://127.0.0.1:{port}")
        rest.login("admin", match.group(1))
        assert rest.wait_dag(kit.DAG_ID)["dag_id"] == kit.DAG_ID
        rest.close()

        record = json.loads(pid_file.read_text())
        assert [p["name"] for p in record["processes"]] == [
            "api-server",
            "scheduler",
            "dag-processor",
            "triggerer",
        ]
        status = subprocess.run(
            [*cmd[:2], "status", "--home", str(tmp_path)],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert status.returncode == 0, status.stdout + status.stderr
        assert "scheduler=healthy" in status.stdout

        proc.send_signal(signal.SIGINT)  # what Ctrl-C in the terminal sends
        rest_out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0, rest_out
        assert "All services stopped." in rest_out
    finally:
        if proc.poll() is None:
            proc.kill()
        if record:
            pids = [p["pid"] for p in record["processes"]]
            left = services.owned_processes(record["tag"], pids, record["started_at"])
            services.stop_processes(record["tag"], pids, since=record["started_at"], grace=1)
            assert left == [], f"left running after Ctrl-C: {[p.pid for p in left]}"
    assert not pid_file.exists()
