"""SIGKILL the Celery worker in the middle of ``train_model``: the run must heal itself.

Used by ``tests/services/test_worker_crash.py`` and ``benchmarks/bench_dag.py``. On a
running postgres-celery stack (``testkit.services``): trigger ``training_pipeline`` with a
config long enough to be caught mid-training, wait for its first epoch checkpoint, then
SIGKILL every process of the worker running it (its main process, pool children, the
task supervisor and the task), as a crash of that worker's host would. Nobody touches
anything after that: ``make airflow``'s supervisor restarts the worker, the scheduler
fails the orphaned try once its heartbeat times out, Airflow retries it after the task's
``retry_delay`` and the new try resumes from the checkpoint.
"""

from __future__ import annotations

import contextlib
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from testkit.services import DAG_ID, AirflowRest, Stack

CRASH_EXPERIMENT = "ctr_crash"
CRASH_CONFIG = "config/crash.yaml"
CRASH_MODEL = "ctr_crash"
#: ~0.1 s per epoch here (4000 rows, batches of 256): the first checkpoint comes seconds
#: before the end, and the retry has little left to train.
CRASH_EPOCHS = 50
CRASH_BATCH_SIZE = 256


@dataclass
class CrashResult:
    """What one trial saw."""

    run_id: str
    #: The Celery worker that ran the killed try (e.g. ``celery-worker-2``).
    worker: str
    state: str
    kill_to_success_s: float
    killed: list[int]
    train_try: int
    train_log: str
    run_dirs: list[Path]
    #: (seconds after the kill, the states of unfinished tasks) at each change.
    timeline: list[tuple[float, str]]


def write_crash_config(home: Path, epochs: int = CRASH_EPOCHS) -> str:
    """``config/crash.yaml``: the home's config, its own experiment name, one model family
    (deepfm), no early stop."""
    from ml.config import load_config, write_config

    cfg = load_config(home / "config" / "model_config.yaml")
    # One family: `model.name: auto` (the shipped default) trains its candidates in
    # candidates/ under the run, where no top-level checkpoint_last.pt appears.
    cfg = cfg.replace(
        experiment_name=CRASH_EXPERIMENT,
        model={"name": "deepfm"},
        training={"epochs": epochs, "patience": epochs},
    )
    write_config(cfg, home / CRASH_CONFIG)
    return CRASH_CONFIG


def kill_worker(stack: Stack, worker: str) -> list[int]:
    """SIGKILL every process in the session of ``worker`` (it leads its own session)."""
    from scripts.services_processes import session_processes

    pid = stack.pids()[worker]
    procs = session_processes(pid)
    for proc in procs:
        with contextlib.suppress(Exception):
            proc.kill()
    return [p.pid for p in procs]


def worker_running(stack: Stack, rest: AirflowRest, run_id: str, task_id: str) -> str:
    """The Celery worker whose session holds the running try of ``task_id``.

    By the try's pid (the REST API reports it once the task started); failing that, the
    only worker whose log names the run (Celery logs each task it receives).
    """
    from scripts.services_processes import session_processes

    workers = {n: p for n, p in stack.pids().items() if n.startswith("celery-worker")}
    pid = rest.task_instances(DAG_ID, run_id).get(task_id, {}).get("pid")
    if pid:
        for name, wpid in workers.items():
            if pid in {p.pid for p in session_processes(wpid)}:
                return name
    log_dir = stack.services.log_dir
    named = [
        n
        for n in workers
        if run_id in (log_dir / f"{n}.log").read_text(errors="replace")
        and task_id in (log_dir / f"{n}.log").read_text(errors="replace")
    ]
    assert len(named) == 1, f"cannot tell which worker runs {task_id} (pid {pid}): {named}"
    return named[0]


def _checkpoints(home: Path) -> set[Path]:
    from ml.training.run_dir import CHECKPOINT_LAST

    return set((home / "experiments" / "runs").glob(f"{CRASH_EXPERIMENT}_*/{CHECKPOINT_LAST}"))


def _completed(home: Path) -> set[Path]:
    from ml.training.run_dir import COMPLETE

    return {
        p.parent for p in (home / "experiments" / "runs").glob(f"{CRASH_EXPERIMENT}_*/{COMPLETE}")
    }


def _run_dirs(home: Path) -> set[Path]:
    return {p for p in (home / "experiments" / "runs").glob(f"{CRASH_EXPERIMENT}_*") if p.is_dir()}


def worker_crash_trial(
    stack: Stack,
    *,
    worker: str | None = None,
    timeout: float = 900,
    rest: AirflowRest | None = None,
) -> CrashResult:
    """Trigger, kill ``worker`` after the first checkpoint, wait for the run to finish.

    Args:
        worker: The Celery worker to kill; by default the one running ``train_model``.
        rest: A client of its own (when the trial runs in a thread beside other users of
            ``stack.rest``).
    """
    rest = rest or stack.rest
    assert rest is not None
    write_crash_config(stack.home)
    before = _checkpoints(stack.home)
    dirs_before = _run_dirs(stack.home)
    conf: dict[str, Any] = {
        "config_path": CRASH_CONFIG,
        "model_name": CRASH_MODEL,
        "min_auc": 0.5,
        "min_accuracy": 0.5,
        "max_auc_drop": 1.0,
    }
    rest.wait_dag(DAG_ID)
    rest.unpause(DAG_ID)
    resp = rest.trigger(DAG_ID, conf)
    assert resp.status_code == 200, resp.text
    run_id = str(resp.json()["dag_run_id"])
    deadline = time.monotonic() + timeout
    # Which worker runs it is asked (over REST) as soon as the task starts, before its
    # first epoch: under load a REST call can take seconds, longer than the epochs left
    # after the first checkpoint. From then on only local files are watched.
    while True:
        stack.raise_if_dead()
        assert time.monotonic() < deadline, f"train_model of run {run_id} did not start in time"
        train = rest.task_instances(DAG_ID, run_id).get("train_model") or {}
        assert train.get("state") != "success", (
            f"train_model finished before the kill; raise CRASH_EPOCHS ({CRASH_EPOCHS})"
        )
        if worker is not None or (train.get("state") == "running" and train.get("pid")):
            break
        time.sleep(0.5)
    worker = worker or worker_running(stack, rest, run_id, "train_model")
    while not (_checkpoints(stack.home) - before):
        assert not (_completed(stack.home) - dirs_before), (
            f"train_model finished before the kill; raise CRASH_EPOCHS ({CRASH_EPOCHS})"
        )
        assert time.monotonic() < deadline, f"no checkpoint of run {run_id} in time"
        time.sleep(0.1)
    killed = kill_worker(stack, worker)
    killed_at = time.monotonic()
    timeline: list[tuple[float, str]] = []
    while True:
        run = rest.run(DAG_ID, run_id)
        now = time.monotonic() - killed_at
        states = {
            t: (ti["state"], ti["try_number"])
            for t, ti in rest.task_instances(DAG_ID, run_id).items()
        }
        event = ", ".join(
            f"{t}={s}#{n}"
            for t, (s, n) in states.items()
            if s not in (None, "success") or t == "train_model"
        )
        if not timeline or timeline[-1][1] != event:
            timeline.append((round(now, 1), event))
        if run["state"] in ("success", "failed"):
            break
        stack.raise_if_dead()
        assert now < timeout, f"run {run_id} still {run['state']} after {timeout} s: {timeline}"
        time.sleep(1.0)
    elapsed = time.monotonic() - killed_at
    train = rest.task_instances(DAG_ID, run_id)["train_model"]
    log = rest.task_log(DAG_ID, run_id, "train_model", train["try_number"])
    run_dirs = sorted(_run_dirs(stack.home) - dirs_before)
    return CrashResult(
        run_id=run_id,
        worker=worker,
        state=str(run["state"]),
        kill_to_success_s=elapsed,
        killed=killed,
        train_try=int(train["try_number"]),
        train_log=log,
        run_dirs=run_dirs,
        timeline=timeline,
    )


def resumed_epoch(log: str) -> int | None:
    """The epoch a try says it resumed from ("resuming after epoch N" and similar)."""
    pattern = r"resum\w* (?:after|from (?:the )?checkpoint of) epoch (\d+)"
    match = re.search(pattern, log, re.IGNORECASE)
    return int(match.group(1)) if match else None
