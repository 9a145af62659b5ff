"""``training_pipeline`` on two Celery workers that share no directory (issue 22).

A PostgreSQL + Celery deployment (``testkit.services``) whose two workers stand for two
hosts: each has its own ``CTR_PIPELINE_HOME`` (``make airflow --worker-home``), and the
features, the run directories and the registry are URLs in one bucket (a SeaweedFS
server of its own, ``testkit.s3``). The API server, scheduler and dag-processor use a
third home that holds only the config; Airflow's own ``AIRFLOW_HOME`` (its config and
task logs) stays the deployment's, as remote logging would make it on real hosts.

Worker A consumes the default queue and the train queue, worker B only the train queue.
The trial (:func:`crash_trial`):

1. B is frozen (SIGSTOP: a host that has not joined yet), so the first try of
   ``train_model`` runs on A, then B is let go;
2. once the bucket holds the first epoch's checkpoint, A's whole session is frozen (its
   host hangs: no heartbeat, no upload, nothing consumed) and, once the retry runs on
   B, killed with SIGKILL (``make airflow`` restarts it, as a replaced host);
3. B, the only live consumer of the train queue, resumes from the bucket's checkpoint;
   A (again the only consumer of the default queue) evaluates, registers and promotes;
4. ``ctr-pipeline serve`` from a fourth directory serves the promoted version.

Signals, not queue tricks, decide where the tries run, so the placement is
deterministic. Everything here talks to the bucket with explicit credentials (never
through ``os.environ``: the trial runs in a thread of the pytest process).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from testkit import services as kit
from testkit.s3 import ACCESS_KEY, SECRET_KEY, S3Server

ROWS = 4000
#: Enough epochs that the first checkpoint comes seconds before the end (the retry
#: trains the rest): an epoch of 2,800 rows in batches of 32 takes ~0.2 s here.
EPOCHS = 15
BATCH_SIZE = 32
WORKER_A, WORKER_B = "celery-worker-1", "celery-worker-2"
#: A good run on tiny data, promoted so that serving picks it up.
CONF = {"min_auc": 0.5, "min_accuracy": 0.5, "baseline_tolerance": None, "auto_promote": True}


@dataclass
class Deployment:
    """Where everything lives: the homes, the bucket prefix, the stack's environment."""

    root: Path
    s3: S3Server
    url: str
    homes: dict[str, Path]
    env: dict[str, str]

    @property
    def features(self) -> str:
        return f"{self.url}/features"

    @property
    def runs(self) -> str:
        return f"{self.url}/runs"

    @property
    def registry(self) -> str:
        return f"{self.url}/models"

    @functools.cached_property
    def store(self) -> Any:
        """An :class:`ml.storage.store.ObjectStore` on the bucket, credentials explicit."""
        from obstore.store import S3Store

        from ml.storage.store import ObjectStore
        from ml.storage.url import ObjectUrl

        config = {
            "endpoint": self.s3.endpoint,
            "access_key_id": ACCESS_KEY,
            "secret_access_key": SECRET_KEY,
            "region": "us-east-1",
            "allow_http": True,
            "virtual_hosted_style_request": False,
        }
        store = S3Store(self.s3.bucket, config=config)  # type: ignore[arg-type]
        return ObjectStore(ObjectUrl.parse(f"s3://{self.s3.bucket}"), store)


@dataclass
class Result:
    """What the trial saw (asserted by ``tests/services/test_workers_without_shared_disk.py``)."""

    deployment: Deployment
    stack: kit.Stack
    run_id: str
    state: str
    #: train_model try -> the worker whose session ran it
    train_workers: dict[int, str] = field(default_factory=dict)
    frozen_to_success_s: float = 0.0
    #: seconds from `up` to healthy, and from the trigger to serving's answer
    healthy_s: float = 0.0
    trial_s: float = 0.0
    killed: list[int] = field(default_factory=list)
    ready: dict[str, Any] = field(default_factory=dict)
    prediction: dict[str, Any] = field(default_factory=dict)


def prepare(root: Path, s3: S3Server, token: str) -> Deployment:
    """The homes (a config each, no data), the features in the bucket, the stack's env."""
    from ml.config import load_config, write_config

    homes = {name: root / name for name in ("services", "a", "b", "serve", "scratch")}
    for home in homes.values():
        home.mkdir(parents=True, exist_ok=True)
    url = f"s3://{s3.bucket}/hosts-{token}"
    env = kit.postgres_env(
        homes["services"],
        token,
        **s3.env(),
        CTR_PIPELINE_REGISTRY=f"{url}/models",
        CTR_TASK_HEARTBEAT_TIMEOUT_S="20",
    )
    deployment = Deployment(root, s3, url, homes, env)
    # The features, written to the bucket by the CLI from a scratch home.
    cli = [sys.executable, "-m", "ml.cli", "data", "generate", "--out", deployment.features]
    subprocess.run(
        [*cli, "--rows", str(ROWS), "--seed", "7"],
        cwd=str(kit.REPO),
        env={**os.environ, **s3.env(), "CTR_PIPELINE_HOME": str(homes["scratch"])},
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    cfg = load_config(kit.REPO / "config" / "model_config.yaml").replace(
        data={"features_dir": deployment.features},
        output={"runs_dir": deployment.runs},
        model={"name": "deepfm", "embedding_dim": 8, "hidden_units": [32]},
        training={
            "epochs": EPOCHS,
            "patience": EPOCHS,  # no early stop: the retry has epochs left to train
            "batch_size": BATCH_SIZE,
            "num_threads": 1,
            "learning_rate": 0.01,
        },
    )
    for name in ("services", "a", "b"):  # each host its own copy of the config
        (homes[name] / "config").mkdir(exist_ok=True)
        write_config(cfg, homes[name] / "config" / "model_config.yaml")
    return deployment


def start(deployment: Deployment) -> kit.Stack:
    """The deployment (no triggerer: nothing defers here), healthy."""
    default = deployment.env["AIRFLOW__OPERATORS__DEFAULT_QUEUE"]
    train = deployment.env["CTR_TRAIN_QUEUE"]
    began = time.monotonic()
    stack = kit.start_stack(
        deployment.homes["services"],
        "postgres-celery",
        env=deployment.env,
        worker_queues=[f"{default},{train}", train],
        worker_homes=[deployment.homes["a"], deployment.homes["b"]],
        triggerer=False,
    )
    stack.info["healthy_s"] = time.monotonic() - began
    return stack


def _signal_session(stack: kit.Stack, worker: str, sig: signal.Signals) -> list[int]:
    from scripts.services_processes import session_processes

    procs = session_processes(stack.pids()[worker])
    for proc in procs:
        with contextlib.suppress(Exception):
            proc.send_signal(sig)
    return [p.pid for p in procs]


def _worker_of(stack: kit.Stack, pid: int | None) -> str | None:
    from scripts.services_processes import session_processes

    for name, wpid in stack.pids().items():
        if name.startswith("celery-worker") and pid in {p.pid for p in session_processes(wpid)}:
            return name
    return None


def _run_files(deployment: Deployment) -> set[str]:
    """The file names of the runs in the bucket (``COMPLETE``, ``checkpoint_last.pt``...)."""
    from ml.storage.url import ObjectUrl

    prefix = ObjectUrl.parse(deployment.runs).prefix + "/"
    return {o.key.rsplit("/", 1)[-1] for o in deployment.store.list_objects(prefix)}


def crash_trial(deployment: Deployment, stack: kit.Stack, timeout: float = 600) -> Result:
    """The run, the frozen and then killed worker, the retry, serving (see the module)."""
    from ml.training.run_dir import CHECKPOINT_LAST, COMPLETE

    rest = kit.AirflowRest(stack.services.base_url, stack.services.api_token())
    frozen: list[str] = []
    try:
        rest.wait_dag(kit.DAG_ID)
        rest.unpause(kit.DAG_ID)
        _signal_session(stack, WORKER_B, signal.SIGSTOP)
        frozen.append(WORKER_B)
        resp = rest.trigger(kit.DAG_ID, CONF)
        assert resp.status_code == 200, resp.text
        result = Result(deployment, stack, str(resp.json()["dag_run_id"]), "queued")
        result.healthy_s = float(stack.info.get("healthy_s", 0.0))
        triggered_at = time.monotonic()
        deadline = time.monotonic() + timeout

        def train() -> dict[str, Any]:
            stack.raise_if_dead()
            assert time.monotonic() < deadline, rest.failure_report(kit.DAG_ID, result.run_id)
            return rest.task_instances(kit.DAG_ID, result.run_id).get("train_model") or {}

        while not ((ti := train()).get("state") == "running" and ti.get("pid")):
            assert ti.get("state") not in ("success", "failed", "upstream_failed"), ti
            time.sleep(0.5)
        result.train_workers[1] = str(_worker_of(stack, ti["pid"]))
        _signal_session(stack, WORKER_B, signal.SIGCONT)
        frozen.remove(WORKER_B)
        # Only the bucket is watched now: under load a REST call can take longer than
        # the epochs left after the first checkpoint.
        while CHECKPOINT_LAST not in (files := _run_files(deployment)):
            assert COMPLETE not in files, f"trained before a kill: raise EPOCHS ({EPOCHS})"
            assert time.monotonic() < deadline, "no checkpoint in the bucket in time"
            time.sleep(0.1)
        _signal_session(stack, WORKER_A, signal.SIGSTOP)  # A's host hangs mid-training
        frozen.append(WORKER_A)
        frozen_at = time.monotonic()
        assert COMPLETE not in _run_files(deployment), "trained before a kill: raise EPOCHS"
        while not (
            (ti := train()).get("try_number", 1) >= 2
            and ti.get("state") == "running"
            and ti.get("pid")
        ):
            time.sleep(1.0)
        result.train_workers[int(ti["try_number"])] = str(_worker_of(stack, ti["pid"]))
        # A's host is gone for good: its processes die; the supervisor starts a new A.
        result.killed = _signal_session(stack, WORKER_A, signal.SIGKILL)
        frozen.remove(WORKER_A)
        run = rest.wait_run(kit.DAG_ID, result.run_id, timeout=timeout, stack=stack)
        result.state = str(run["state"])
        result.frozen_to_success_s = time.monotonic() - frozen_at
        if result.state == "success":
            result.ready, result.prediction = serve(deployment)
        result.trial_s = time.monotonic() - triggered_at
        return result
    finally:
        for worker in frozen:  # never leave a stopped process behind
            _signal_session(stack, worker, signal.SIGCONT)
        rest.close()


def serve(deployment: Deployment) -> tuple[dict[str, Any], dict[str, Any]]:
    """``ctr-pipeline serve`` from a home of its own: ``/readyz`` and one prediction."""
    from ml.config import load_config
    from testkit.serving import free_port, start_server, stop_server, wait_ready

    home = deployment.homes["serve"]
    port = free_port()
    env = {
        **os.environ,
        **deployment.s3.env(),
        "CTR_PIPELINE_HOME": str(home),
        "CTR_PIPELINE_REGISTRY": deployment.registry,
        "PYTHONPATH": str(kit.REPO),
    }
    log = home / "serve.log"
    proc = start_server(["--port", str(port), "--log-dir", str(home / "logs")], env, log)
    base = f"http://127.0.0.1:{port}"
    try:
        ready = wait_ready(base, proc, log)
        spec = load_config(deployment.homes["a"] / "config" / "model_config.yaml").features
        row = dict.fromkeys(spec.feature_columns)  # nulls: means and out-of-vocabulary
        body = json.dumps({"rows": [row]}).encode()
        request = urllib.request.Request(
            f"{base}/predict", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as resp:
            prediction: dict[str, Any] = json.loads(resp.read())
        return ready, prediction
    finally:
        stop_server(proc)
