"""Issue 22: ``training_pipeline`` on two Celery workers that share no directory.

The trial (``testkit.celery_hosts``, run in the background from conftest's
``hosts_trial``): PostgreSQL + Celery, each worker with its own ``CTR_PIPELINE_HOME``,
features, run directories and registry in a bucket. Triggered over REST, ``train_model``
starts on worker A, whose host then hangs mid-training (SIGSTOP) and is killed; the
retry on worker B resumes from the checkpoint in the bucket; A (restarted, the only
consumer of the default queue) evaluates, registers and promotes; ``ctr-pipeline serve``
from a fourth directory serves the promoted version. No step can read a local file
another step wrote: no two of them share a project directory, and every location
handed from one task to the next is a URL.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from testkit import services as kit

pytestmark = [pytest.mark.services, pytest.mark.slow, pytest.mark.timeout(1200)]


def _tree(home: Path) -> set[str]:
    """The top-level entries of a home, and what is under ``.cache``."""
    out = {p.name for p in home.iterdir()}
    cache = home / ".cache"
    if cache.is_dir():
        out |= {f".cache/{p.name}" for p in cache.iterdir()}
    return out


def test_train_resumes_on_another_worker_and_a_third_directory_serves_it(
    hosts_trial: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ml.registry.model_registry import ModelRegistry
    from ml.training.remote_run import RemoteRun
    from testkit.celery_hosts import EPOCHS, WORKER_A, WORKER_B

    result = hosts_trial
    deployment, stack = result.deployment, result.stack
    rest = stack.rest
    assert rest is not None
    assert result.state == "success", rest.failure_report(kit.DAG_ID, result.run_id)
    # The first try on A (B was not up yet); the retry on B, A's host being gone.
    assert result.train_workers == {1: WORKER_A, 2: WORKER_B}, result.train_workers
    tis = rest.task_instances(kit.DAG_ID, result.run_id)
    assert tis["train_model"]["try_number"] == 2
    assert all(tis[t]["state"] == "success" for t in kit.TASKS), tis
    # Everything but training ran on A (restarted after the kill); B never saw them.
    logs = {w: (stack.services.log_dir / f"{w}.log").read_text() for w in (WORKER_A, WORKER_B)}
    for task in ("validate_features", "evaluate_model", "register_model"):
        assert task in logs[WORKER_A] and task not in logs[WORKER_B], task
    assert re.search(rf"{WORKER_A}: pid \d+ exited \(killed by SIGKILL\)", stack.text)

    # Every location handed from task to task is a URL in the bucket.
    features = rest.xcom(kit.DAG_ID, result.run_id, "validate_features", "features_path")
    run_dir = rest.xcom(kit.DAG_ID, result.run_id, "train_model", "run_dir")
    assert features == deployment.features
    assert run_dir.startswith(f"{deployment.runs}/ctr_model_"), run_dir
    assert rest.xcom(kit.DAG_ID, result.run_id, "register_model", "model_version") == "v1"

    for key, value in deployment.s3.env().items():
        monkeypatch.setenv(key, value)
    run = RemoteRun(run_dir)
    info = run.read_json("run.json")
    assert info["resumed_from_epoch"] >= 1, info  # B went on from A's last upload
    assert run.read_json("metrics.json")["epochs_run"] == EPOCHS
    registry = ModelRegistry(deployment.registry)
    assert registry.list_models("staging") == {"ctr_model": ["v1"]}
    assert registry.current_version("ctr_model") == "v1"  # auto_promote
    shown = registry.show("ctr_model", "v1", "staging")
    # The run is known by its URL (the same on every host), not by A's local copy.
    assert shown["metadata"]["source"]["run_dir"] == run_dir
    assert "data_profile.json" in shown["files"]  # profiled from the bucket, in place

    # Served from a directory no worker ever saw.
    assert result.ready["control"] == {"version": "v1", "stage": "production"}, result.ready
    assert result.prediction["version"] == "v1" and len(result.prediction["probabilities"]) == 1

    # No project directory holds data, runs or models: configs, caches and each host's
    # own run summary (the dag-processor's: it ran train_model's retry callback).
    homes = deployment.homes
    assert _tree(homes["services"]) <= {"config", "airflow_home", "pycache", "experiments"}
    for host in ("services", "a", "b"):
        tree = _tree(homes[host])
        assert not tree & {"data", "models"}, (host, tree)
        assert not (homes[host] / "experiments" / "runs").exists(), host
    for host in ("a", "b"):
        assert ".cache/runs" in _tree(homes[host]), host  # its own working copy of the run
    print(
        f"two hosts: healthy after {result.healthy_s:.0f} s; run {result.run_id} succeeded "
        f"{result.frozen_to_success_s:.0f} s after A froze (resumed after epoch "
        f"{info['resumed_from_epoch']}), {result.trial_s:.0f} s after the trigger"
    )
