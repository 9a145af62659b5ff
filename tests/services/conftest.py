"""Start real Airflow deployments for the service tests and talk to them over REST API v2.

Each stack gets its own temp ``CTR_PIPELINE_HOME`` (tiny generated features, a 2-epoch
config, ``airflow_home/`` inside), free loopback ports for the API server and both log
servers (so a developer's ``make airflow`` on 8080/8793/8794 is never touched), and,
for PostgreSQL + Celery, its own database, Redis DB number and Celery queues.

The SQLite stack and its one successful run are shared (session scope) by the e2e test
and the browser test; it is stopped right after the last test that uses it, and that
stop asserts no process of it is left.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import secrets
import socket
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
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
#: The conf of the good run: gates low enough for 4000 rows and 2 epochs.
GOOD_CONF = {"epochs": EPOCHS, "min_auc": 0.5, "min_accuracy": 0.5}
#: Redis database number reserved for tests (the postgres-celery profile uses 6).
TEST_REDIS_DB = 13


def _load_services() -> Any:
    path = REPO / "scripts" / "airflow_services.py"
    spec = importlib.util.spec_from_file_location("ctr_airflow_services", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


SERVICES = _load_services()


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
    down = [
        f"{name} on {host}:{port}" for name, host, port in endpoints if not reachable(host, port)
    ]
    if down:
        msg = f"{', '.join(down)} not reachable; start it (CI: see .ci/run)"
        if os.environ.get("CTR_REQUIRE_SERVICES") == "1":
            pytest.fail(msg)
        pytest.skip(msg)


# --- REST API v2 ---------------------------------------------------------------------


class AirflowRest:
    """A minimal REST API v2 client that logs in like a user of SimpleAuthManager."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.http = httpx.Client(base_url=base_url, timeout=60)

    def login(self, username: str, password: str | None) -> None:
        if password is None:  # SIMPLE_AUTH_MANAGER_ALL_ADMINS: the token needs no login
            resp = self.http.get("/auth/token")
        else:
            resp = self.http.post("/auth/token", json={"username": username, "password": password})
        assert resp.status_code in (200, 201), f"login failed: {resp.status_code} {resp.text}"
        self.http.headers["Authorization"] = f"Bearer {resp.json()['access_token']}"

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
                raise AssertionError(
                    f"DAG {dag_id} not parsed after {timeout} s; import errors: {errors}"
                )
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

    def wait_run(
        self, dag_id: str, run_id: str, timeout: float, services: Any = None
    ) -> dict[str, Any]:
        """Poll until the run finishes; fail early (with states) if a service dies."""
        deadline = time.monotonic() + timeout
        while True:
            run = self.run(dag_id, run_id)
            if run["state"] in ("success", "failed"):
                return run
            if services is not None:
                services.raise_if_dead()
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


# --- stacks ---------------------------------------------------------------------------


@dataclass
class Stack:
    """A running deployment plus the project home its tasks use."""

    services: Any
    rest: AirflowRest
    home: Path
    stopped: bool = False
    outside_before: dict[str, float] = field(default_factory=dict)
    versions_before: list[str] = field(default_factory=list)
    run_seconds: float = 0.0

    @property
    def registry_dir(self) -> Path:
        return self.home / "models"

    def registered_versions(self, name: str = "ctr_model") -> list[str]:
        from ml.registry.model_registry import ModelRegistry

        listed = ModelRegistry(base_dir=str(self.registry_dir)).list_models("staging")
        return list(listed.get(name, []))

    def stop(self) -> list[Any]:
        """Stop every service; return the processes left (must be none)."""
        if self.stopped:
            return []
        self.stopped = True
        self.rest.close()
        return list(self.services.stop())


def prepare_home(home: Path, epochs: int = EPOCHS, rows: int = ROWS, **training: Any) -> None:
    """Tiny features and the default config (shorter training) under ``home``."""
    from ml.config import load_config, write_config
    from ml.data.generate import generate_features

    generate_features(home / "data" / "features" / "v1", rows=rows, seed=7)
    cfg = load_config(REPO / "config" / "model_config.yaml")
    cfg = cfg.replace(training={"epochs": epochs, "batch_size": 512, "num_threads": 1, **training})
    (home / "config").mkdir(parents=True, exist_ok=True)
    write_config(cfg, home / "config" / "model_config.yaml")


def stack_env(home: Path, **extra: str) -> dict[str, str]:
    """Settings every test deployment gets: free ports, a small footprint, no schedule."""
    return {
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__CORE__PARALLELISM": "2",
        # Fast hand-offs between the five tasks.
        "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
        # Manual runs only: an unpaused @weekly DAG would start its own run at once.
        "CTR_TRAINING_SCHEDULE": "none",
        # Bytecode for dags/ and ml/ goes to the temp dir, not into the checkout.
        "PYTHONPYCACHEPREFIX": str(home / "pycache"),
        "OMP_NUM_THREADS": "1",
        **extra,
    }


@contextlib.contextmanager
def running_stack(
    home: Path,
    profile: str,
    *,
    extra_env: dict[str, str],
    celery_workers: list[str] | None = None,
    triggerer: bool = True,
) -> Iterator[Stack]:
    """Start a deployment on ``home``, log in; always stop it (asserting nothing is left)."""
    services = SERVICES.AirflowServices(
        profile=profile,
        home=home,
        port=free_port(),
        extra_env=extra_env,
        celery_workers=celery_workers,
        triggerer=triggerer,
    )
    stack = Stack(services=services, rest=AirflowRest(services.base_url), home=home)
    try:
        services.prepare()
        services.start()
        services.wait_healthy(timeout=240)
        stack.rest.login("admin", services.admin_password())
        yield stack
    finally:
        left = stack.stop()
        assert not left, f"processes left after stop: {[p.pid for p in left]}"


def run_pipeline(stack: Stack, conf: dict[str, Any], timeout: float = 300) -> str:
    """Unpause, trigger with ``conf``, wait for success; return the run id."""
    stack.rest.wait_dag(DAG_ID)
    stack.rest.unpause(DAG_ID)
    resp = stack.rest.trigger(DAG_ID, conf)
    assert resp.status_code == 200, f"trigger failed: {resp.status_code} {resp.text}"
    run_id = str(resp.json()["dag_run_id"])
    run = stack.rest.wait_run(DAG_ID, run_id, timeout=timeout, services=stack.services)
    assert run["state"] == "success", stack.rest.failure_report(DAG_ID, run_id)
    return run_id


# --- the shared SQLite stack ------------------------------------------------------------

_SHARED: dict[str, Any] = {}


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
    return [
        REPO / "airflow_home",
        REPO / "data",
        REPO / "experiments",
        REPO / "models",
        REPO / "logs",
        REPO / "dags",
        REPO / "config",
        Path.home() / "airflow",
    ]


@pytest.fixture(scope="session")
def sqlite_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """SQLite + LocalExecutor (the ``make airflow`` profile) on temp dirs and free ports."""
    home = tmp_path_factory.mktemp("sqlite-stack")
    prepare_home(home)
    before = snapshot(outside_roots())
    exits = contextlib.ExitStack()
    _SHARED["sqlite_stack"] = exits
    stack = exits.enter_context(running_stack(home, "sqlite-local", extra_env=stack_env(home)))
    stack.outside_before = before
    yield stack
    _close_shared()


@pytest.fixture(scope="session")
def sqlite_run(sqlite_stack: Stack) -> str:
    """One successful ``training_pipeline`` run on the SQLite stack (its run id)."""
    sqlite_stack.versions_before = sqlite_stack.registered_versions()
    start = time.monotonic()
    run_id = run_pipeline(sqlite_stack, GOOD_CONF)
    sqlite_stack.run_seconds = time.monotonic() - start
    return run_id


def _close_shared() -> None:
    exits = _SHARED.pop("sqlite_stack", None)
    if exits is not None:
        exits.close()


@pytest.hookimpl(trylast=True)  # after -m/-k deselection
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    users = [i.nodeid for i in items if "sqlite_stack" in getattr(i, "fixturenames", ())]
    _SHARED["last_user"] = users[-1] if users else None


def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    # Stop the shared stack right after the last test that needs it, rather than leave an
    # idle scheduler running through the rest of the suite.
    if item.nodeid == _SHARED.get("last_user"):
        _close_shared()


def new_token() -> str:
    return secrets.token_hex(4)


@pytest.fixture(scope="session")
def kit() -> Any:
    """This module: the helpers above for the test files (conftest is not importable)."""
    return sys.modules[__name__]
