"""The pipeline's steps on hosts that share no directory: features and runs in a bucket.

Each "host" is its own base directory ($CTR_PIPELINE_HOME), the one before deleted:
validate and train start on host A, which dies after an epoch; the retry of train on
host B resumes from the bucket's checkpoint; evaluate and register run on host C, which
downloads the complete run itself (no step reads a local file another step wrote), into
the registry in the bucket; a register retried on host D finds that version (the run is
known by its URL, not by a host's copy of it). tests/services/test_workers_without_shared_disk.py
does the same with real Celery workers.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from ml.data.generate.writer import generate_features
from ml.monitoring.profile import PROFILE_FILE
from ml.pipeline import steps
from ml.registry.model_registry import ModelRegistry
from ml.training.remote_run import RemoteRun
from testkit.airflow import small_config


class Killed(Exception):
    """Stands for the worker killed during train_model."""


def _host(root: Path, name: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = root / name
    (home / "config").mkdir(parents=True)
    (home / "config" / "small.yaml").write_text(small_config(epochs=3))
    monkeypatch.setenv("CTR_PIPELINE_HOME", str(home))
    return home


@pytest.mark.slow
def test_train_dies_on_one_host_resumes_on_another_and_registers_on_a_third(
    s3_env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, params: Any, pipeline_run: Any
) -> None:
    host_a = _host(tmp_path, "a", monkeypatch)
    monkeypatch.setenv("CTR_PIPELINE_REGISTRY", f"{s3_env}/models")
    generate_features(f"{s3_env}/features", rows=3000, seed=7)
    p = params(
        epochs=3,
        features_path=f"{s3_env}/features",
        config_overrides={"output": {"runs_dir": f"{s3_env}/runs"}, "training": {"patience": 5}},
    )
    run = pipeline_run()
    features_path = steps.validate(p, run)["features_path"]
    assert features_path == f"{s3_env}/features"

    pushes: list[int] = []
    real_push = RemoteRun.push_checkpoint

    def dies_after_the_first_epoch(self: RemoteRun) -> None:
        real_push(self)
        pushes.append(1)
        raise Killed

    with monkeypatch.context() as dying:
        dying.setattr(RemoteRun, "push_checkpoint", dies_after_the_first_epoch)
        with pytest.raises(Killed):
            steps.train(p, run, features_path)
    shutil.rmtree(host_a)

    _host(tmp_path, "b", monkeypatch)
    run_dir = steps.train(p, run, features_path)["run_dir"]
    assert run_dir.startswith(f"{s3_env}/runs/ctr_model_")
    info = RemoteRun(run_dir).read_json("run.json")
    assert info["resumed_from_epoch"] == 1 and info["features_dir"] == features_path

    host_c = _host(tmp_path, "c", monkeypatch)
    metrics = steps.evaluate(p, run, run_dir)["metrics"]
    assert metrics["run_dir"] == run_dir and metrics["epochs_run"] == 3
    assert RemoteRun(run_dir).exists("test_predictions.npz")  # evaluate's output, uploaded
    registered = steps.register(p, run, run_dir, metrics)
    assert registered["model_version"] == "v1"
    assert not (host_c / "models").exists()  # the registry is in the bucket
    registry = ModelRegistry()
    shown = registry.show("ctr_model", "v1", "staging")
    assert shown["metadata"]["source"]["run_dir"] == run_dir  # the run's URL, not C's copy
    profile = json.loads((registry.path_of("ctr_model", "v1") / PROFILE_FILE).read_text())
    assert profile["source"] == {"features_dir": features_path, "split": "train", "rows": 2100}

    # register_model retried on host D: the same version, not a second one.
    _host(tmp_path, "d", monkeypatch)
    assert steps.register(p, run, run_dir, metrics)["model_version"] == "v1"
    again = registry.register(run_dir, "ctr_model")  # the URL itself, as the CLI takes it
    assert (again.version, again.created) == ("v1", False)
    assert registry.list_models("staging") == {"ctr_model": ["v1"]}
