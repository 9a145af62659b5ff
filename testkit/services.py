"""Real Airflow deployments for the service tests and ``benchmarks/bench_dag.py``.

A stack is started with ``make airflow``'s own command line
(``python -m scripts.airflow_services up``, foreground, supervising) on a temporary
``CTR_PIPELINE_HOME`` (tiny generated features, a 2-epoch config, ``airflow_home/``
inside), with free loopback ports for the API server and both log servers (so a
developer's ``make airflow`` on 8080/8793/8794 is never touched) and, for PostgreSQL +
Celery, its own databases, Redis DB number and Celery queues. Stopping it sends SIGINT
(Ctrl-C) and checks that nothing of it is left.

The REST client logs in through the profile's own auth helper
(``AirflowServices.api_token``), so a change of auth manager does not break its users.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
DAG_ID = "training_pipeline"
TASKS = (
    "validate_features",
    "train_model",
    "evaluate_model",
    "register_model",
    "notify_completion",
)
#: The tuning group's tasks (ml/pipeline/tuning.py): with tuning_trials=0, create_study
#: succeeds at once and the mapped tune_worker, expanded over nothing, is skipped.
TUNING_TASKS = ("tuning.create_study", "tuning.tune_worker")
#: Tiny data and a short training run keep a whole DAG run around a minute on 2 cores.
ROWS = 4000
EPOCHS = 2
#: The conf of a good run: gates low enough for 4000 rows and 2 epochs.
#: 2 epochs on 4000 rows do not reach the logistic-regression baseline: that gate is off.
GOOD_CONF = {"epochs": EPOCHS, "min_auc": 0.5, "min_accuracy": 0.5, "baseline_tolerance": None}
#: Redis database number reserved for tests (the postgres-celery profile uses 6).
TEST_REDIS_DB = 13
READY_LINE = "Press Ctrl-C to stop every service."


def free_port() -> int:
    """A currently free TCP port (bound on all interfaces, as Airflow's log servers bind)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("0.0.0.0", 0))
        return int(sock.getsockname()[1])


def reachable(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=2):
        return True
    return False


def require_backing_services(*endpoints: tuple[str, str, int]) -> None:
    """Skip (or fail when ``CTR_REQUIRE_SERVICES=1``, as CI sets it) if one is down."""
    down = [f"{n} on {h}:{p}" for n, h, p in endpoints if not reachable(h, p)]
    if down:
        import pytest

        msg = f"{', '.join(down)} not reachable; start it (CI: see .ci/run)"
        if os.environ.get("CTR_REQUIRE_SERVICES") == "1":
            pytest.fail(msg)
        pytest.skip(msg)


def new_token() -> str:
    return secrets.token_hex(4)


def snapshot(roots: list[Path]) -> dict[str, float]:
    """path -> mtime of every file under ``roots`` except sources and bytecode.

    Sources are left out because other work in the checkout edits them; the deployment
    writes bytecode under ``PYTHONPYCACHEPREFIX`` (its temp dir), never here.
    """
    out: dict[str, float] = {}
    for root in roots:
        if root.is_file():
            out[str(root)] = root.stat().st_mtime
        elif root.is_dir():
            for p in root.rglob("*"):
                if p.suffix in (".py", ".pyc") or "__pycache__" in p.parts:
                    continue
                with contextlib.suppress(OSError):
                    if p.is_file():
                        out[str(p)] = p.stat().st_mtime
    return out


def outside_roots() -> list[Path]:
    """Where a deployment that ignored its temp dirs would write (db, logs, runs, models)."""
    repo = REPO
    return [
        repo / "airflow_home",
        repo / "data",
        repo / "experiments",
        repo / "models",
        repo / "logs",
        repo / "dags",
        repo / "config",
        Path.home() / "airflow",
    ]


# --- REST API v2 ---------------------------------------------------------------------


class AirflowRest:
    """A minimal REST API v2 client (``Authorization: Bearer <token>``)."""

    def __init__(self, base_url: str, token: str | None = None) -> None:
        self.base_url = base_url
        self.http = httpx.Client(base_url=base_url, timeout=60)
        if token:
            self.http.headers["Authorization"] = f"Bearer {token}"

    def close(self) -> None:
        self.http.close()

    def wait_dag(self, dag_id: str, timeout: float = 120) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            resp = self.http.get(f"/api/v2/dags/{dag_id}")
            if resp.status_code == 200:
                return dict(resp.json())
            if time.monotonic() > deadline:
                errors = self.http.get("/api/v2/importErrors").text
                raise AssertionError(f"DAG {dag_id} not parsed after {timeout} s: {errors}")
            time.sleep(1)

    def unpause(self, dag_id: str) -> None:
        resp = self.http.patch(f"/api/v2/dags/{dag_id}", json={"is_paused": False})
        assert resp.status_code == 200, resp.text
        assert resp.json()["is_paused"] is False

    def trigger(self, dag_id: str, conf: dict[str, Any]) -> httpx.Response:
        return self.http.post(
            f"/api/v2/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf}
        )

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        resp = self.http.get(f"/api/v2/dags/{dag_id}/dagRuns", params={"limit": 100})
        assert resp.status_code == 200, resp.text
        return list(resp.json()["dag_runs"])

    def run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        resp = self.http.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
        assert resp.status_code == 200, resp.text
        return dict(resp.json())

    def task_instances(self, dag_id: str, run_id: str) -> dict[str, dict[str, Any]]:
        resp = self.http.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances")
        assert resp.status_code == 200, resp.text
        return {ti["task_id"]: ti for ti in resp.json()["task_instances"]}

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str) -> Any:
        """One XCom value (deserialized) of an unmapped task."""
        resp = self.http.get(
            f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}",
            params={"deserialize": True, "stringify": False},
        )
        assert resp.status_code == 200, resp.text
        return resp.json()["value"]

    def wait_run(
        self, dag_id: str, run_id: str, timeout: float, stack: Stack | None = None
    ) -> dict[str, Any]:
        """Poll until the run finishes; fail early (with states) if the stack died."""
        deadline = time.monotonic() + timeout
        while True:
            run = self.run(dag_id, run_id)
            if run["state"] in ("success", "failed"):
                return run
            if stack is not None:
                stack.raise_if_dead()
            if time.monotonic() > deadline:
                states = {k: v["state"] for k, v in self.task_instances(dag_id, run_id).items()}
                raise AssertionError(
                    f"run {run_id} still {run['state']} after {timeout} s: {states}"
                )
            time.sleep(2)

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int) -> str:
        """The task's log as text: one line per structured log event."""
        resp = self.http.get(
            f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}",
            params={"full_content": True},
        )
        assert resp.status_code == 200, resp.text
        content = resp.json()["content"]
        return "\n".join(
            str(e.get("event", "")) if isinstance(e, dict) else str(e) for e in content
        )

    def failure_report(self, dag_id: str, run_id: str) -> str:
        """Every task's state and the log of each one that did not succeed."""
        out = []
        for task_id, ti in self.task_instances(dag_id, run_id).items():
            out.append(f"{task_id}: {ti['state']}")
            if ti["state"] != "success" and ti["try_number"]:
                out.append(self.task_log(dag_id, run_id, task_id, ti["try_number"])[-4000:])
        return "\n".join(out)


# --- project homes and stacks ------------------------------------------------------------


def prepare_home(home: Path, epochs: int = EPOCHS, rows: int = ROWS, **training: Any) -> None:
    """Tiny features and the default config (shorter training) under ``home``."""
    from ml.config import load_config, write_config
    from ml.data.generate.writer import generate_features

    generate_features(home / "data" / "features" / "v1", rows=rows, seed=7)
    cfg = load_config(REPO / "config" / "model_config.yaml")
    # Tiny data, two epochs: a higher learning rate than the shipped one learns something.
    short = {"epochs": epochs, "batch_size": 512, "num_threads": 1, "learning_rate": 0.01}
    cfg = cfg.replace(training={**short, **training})
    (home / "config").mkdir(parents=True, exist_ok=True)
    write_config(cfg, home / "config" / "model_config.yaml")


def stack_env(home: Path, **extra: str) -> dict[str, str]:
    """Settings every test deployment gets: free ports, a small footprint, no schedule.

    ``CTR_*`` knobs of the profiles where they exist; ``AIRFLOW__*`` settings that the
    profiles do not set pass through the environment.
    """
    return {
        "CTR_WORKER_LOG_PORT": str(free_port()),
        "CTR_TRIGGER_LOG_PORT": str(free_port()),
        "CTR_AIRFLOW_API_WORKERS": "1",
        "CTR_AIRFLOW_PARALLELISM": "2",
        # Fast hand-offs between the five tasks.
        "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
        # Manual runs only: an unpaused @weekly DAG would start its own run at once.
        "CTR_TRAINING_SCHEDULE": "none",
        # deploy_model's deferred wait counts the outcomes every 2 s, not every minute.
        "CTR_EVIDENCE_POLL_S": "2",
        # Bytecode for dags/ and ml/ goes to the temp dir, not into the checkout.
        "PYTHONPYCACHEPREFIX": str(home / "pycache"),
        "OMP_NUM_THREADS": "1",
        **extra,
    }


@dataclass
class Stack:
    """A running ``up`` (the supervisor) plus the project home its tasks use."""

    proc: subprocess.Popen[str]
    services: Any  # scripts.services_stack.AirflowServices: env, paths, auth (not started here)
    home: Path
    output: list[str] = field(default_factory=list)
    rest: AirflowRest | None = None
    tag: str = ""
    stopped: bool = False
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return "".join(self.output)

    def raise_if_dead(self) -> None:
        if self.proc.poll() is not None:
            raise AssertionError(f"`up` exited ({self.proc.returncode}):\n{self.text[-4000:]}")

    def pids(self) -> dict[str, int]:
        """Service name -> current pid (from the pid file: restarts change them)."""
        from scripts.services_processes import read_pid_file

        data = read_pid_file(self.services.pid_file) or {}
        return {p["name"]: p["pid"] for p in data.get("processes", [])}

    @property
    def registry_dir(self) -> Path:
        """The model registry the stack's tasks write (``<home>/models``)."""
        return self.home / "models"

    def registered_versions(self, name: str = "ctr_model") -> list[str]:
        from ml.registry.model_registry import ModelRegistry

        listed = ModelRegistry(base_dir=str(self.registry_dir)).list_models("staging")
        return list(listed.get(name, []))

    def stop(self, timeout: float = 120) -> tuple[int | None, list[Any]]:
        """Ctrl-C the supervisor; return its exit status and any process left of ours."""
        from scripts.services_processes import owned_processes

        if self.stopped:
            return 0, []
        self.stopped = True
        if self.rest is not None:
            self.rest.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        time.sleep(0.5)  # the reader thread drains the last lines
        left = owned_processes(self.tag) if self.tag else []
        for proc in left:
            with contextlib.suppress(Exception):
                proc.kill()
        return self.proc.returncode, left


def start_stack(
    home: Path,
    profile: str,
    *,
    env: dict[str, str],
    worker_queues: list[str] | None = None,
    worker_homes: list[Path] | None = None,
    triggerer: bool = True,
    ignore_sigint: bool = False,
    timeout: float = 300,
) -> Stack:
    """``python -m scripts.airflow_services up`` on ``home``; returns once it is healthy.

    Args:
        worker_homes: ``--worker-home``: the Nth Celery worker's own ``CTR_PIPELINE_HOME``.
        ignore_sigint: Start it with SIGINT ignored, as ``nohup`` or ``cmd &`` in a
            script do; ``up`` must still stop on Ctrl-C.
    """
    from scripts.services_processes import read_pid_file
    from scripts.services_stack import AirflowServices

    port = free_port()
    cmd = [sys.executable, "-m", "scripts.airflow_services", "up", "--profile", profile]
    cmd += ["--home", str(home), "--port", str(port), "--timeout", str(timeout)]
    for queues in worker_queues or []:
        cmd += ["--worker-queues", queues]
    for worker_home in worker_homes or []:
        cmd += ["--worker-home", str(worker_home)]
    if not triggerer:
        cmd.append("--no-triggerer")
    full_env = {**os.environ, **env, "PYTHONPATH": str(REPO)}
    if ignore_sigint:
        # What a script's `cmd &` does: the shell ignores SIGINT and exec keeps it ignored.
        cmd = ["sh", "-c", 'trap "" INT; exec "$@"', "sh", *cmd]
    proc = subprocess.Popen(
        cmd,
        cwd=str(REPO),
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    services = AirflowServices(
        profile=profile,
        home=home,
        port=port,
        extra_env=env,
        celery_workers=worker_queues,
        worker_env=[{"CTR_PIPELINE_HOME": str(h)} for h in worker_homes or []] or None,
        triggerer=triggerer,
    )
    stack = Stack(proc=proc, services=services, home=home)
    assert proc.stdout is not None
    stdout = proc.stdout
    threading.Thread(target=lambda: stack.output.extend(stdout), daemon=True).start()
    deadline = time.monotonic() + timeout + 60
    while READY_LINE not in stack.text:
        if proc.poll() is not None or time.monotonic() > deadline:
            stack.stop(timeout=30)
            raise AssertionError(f"`up` did not get ready:\n{stack.text[-6000:]}")
        time.sleep(0.5)
    stack.tag = (read_pid_file(services.pid_file) or {}).get("tag", "")
    stack.rest = AirflowRest(services.base_url, services.api_token("admin"))
    return stack


def run_pipeline(stack: Stack, conf: dict[str, Any], timeout: float = 300) -> str:
    """Unpause, trigger with ``conf``, wait for success; return the run id."""
    rest = stack.rest
    assert rest is not None
    rest.wait_dag(DAG_ID)
    rest.unpause(DAG_ID)
    resp = rest.trigger(DAG_ID, conf)
    assert resp.status_code == 200, f"trigger failed: {resp.status_code} {resp.text}"
    run_id = str(resp.json()["dag_run_id"])
    run = rest.wait_run(DAG_ID, run_id, timeout=timeout, stack=stack)
    assert run["state"] == "success", rest.failure_report(DAG_ID, run_id)
    return run_id


def make_run(
    home: Path, env: dict[str, str], conf: dict[str, Any], *, profile: str | None = None
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """``make run`` (``python -m scripts.run_pipeline``) on ``home``: its output and summary."""
    import json

    summary = home / f"make-run-{new_token()}.json"
    cmd = [sys.executable, "-m", "scripts.run_pipeline", "--home", str(home)]
    cmd += ["--summary-json", str(summary), "--conf", json.dumps(conf)]
    if profile:
        cmd += ["--profile", profile]
    proc = subprocess.run(
        cmd,
        cwd=str(REPO),
        env={**os.environ, **env, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    data = json.loads(summary.read_text()) if summary.is_file() else {}
    return proc, data


def postgres_env(home: Path, token: str, **extra: str) -> dict[str, str]:
    """A postgres-celery deployment of its own: databases, Redis DB, queues."""
    return stack_env(
        home,
        CTR_AIRFLOW_DB=f"ctr_pipeline_test_{token}",
        CTR_OPTUNA_DB=f"ctr_pipeline_test_{token}_optuna",
        CTR_CELERY_BROKER_URL=f"redis://127.0.0.1:6379/{TEST_REDIS_DB}",
        CTR_CELERY_CONCURRENCY="1",
        # Queues of our own, so no other Celery worker on this broker takes our tasks.
        AIRFLOW__OPERATORS__DEFAULT_QUEUE=f"ctr_test_{token}",
        CTR_TRAIN_QUEUE=f"ctr_test_{token}_gpu",
        **extra,
    )


def drop_postgres_resources(env: dict[str, str]) -> None:
    """Drop a test deployment's databases and its Celery queues' Redis keys."""
    import redis

    from scripts.services_db import drop_postgres_database

    server = "postgresql+psycopg2://postgres@127.0.0.1:5432"
    for key in ("CTR_AIRFLOW_DB", "CTR_OPTUNA_DB"):
        if env.get(key):
            drop_postgres_database(f"{server}/{env[key]}")
    client = redis.Redis(host="127.0.0.1", port=6379, db=TEST_REDIS_DB)
    for queue in (env.get("AIRFLOW__OPERATORS__DEFAULT_QUEUE"), env.get("CTR_TRAIN_QUEUE")):
        for key in client.scan_iter(match=f"*{queue}*") if queue else ():
            client.delete(key)
