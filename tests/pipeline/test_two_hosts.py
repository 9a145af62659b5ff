"""The pipeline's steps on hosts that share no directory: features and runs in a bucket.

Each "host" is its own base directory ($CTR_PIPELINE_HOME), the one before deleted:
validate and train start on host A, which dies after an epoch; the retry of train on
host B resumes from the bucket's checkpoint; evaluate and register run on host C, which
downloads the complete run itself (no step reads a local file another step wrote).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from ml.data.generate.writer import generate_features
from ml.pipeline import steps
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
    assert (host_c / "models" / "staging" / "ctr_model" / "v1" / "model.pt").is_file()
