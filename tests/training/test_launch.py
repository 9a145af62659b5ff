"""ml.training.launch: torchrun's command, results and errors back from the ranks, and
two-rank DDP training on the CPU (gloo) that resumes on one process."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from ml.config import Config
from ml.errors import FeatureValidationError, TrainingError, WorkerFailedError
from ml.training import run_dir as rd
from ml.training.job import train
from ml.training.launch import Launch, _outcome, _spec, torchrun_command


def _quiet(_: str) -> None:
    pass


def test_torchrun_command_runs_this_module_on_n_processes(tmp_path: Path) -> None:
    cmd = torchrun_command(4, tmp_path / "spec.json")
    assert cmd[1:5] == ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node=4"]
    assert cmd[-3:] == ["ml.training.launch", "--spec", str(tmp_path / "spec.json")]


def test_an_error_in_a_rank_comes_back_as_its_class(tmp_path: Path) -> None:
    (tmp_path / "error-1.json").write_text(
        json.dumps({"type": "FeatureValidationError", "message": "bad", "problems": ["x"]})
    )
    (tmp_path / "error-0.json").write_text(json.dumps({"type": "NoSuch", "message": "first"}))
    with pytest.raises(TrainingError, match="first"):  # rank 0's; unknown class: TrainingError
        _outcome(tmp_path, 2, [])
    (tmp_path / "error-0.json").unlink()
    with pytest.raises(FeatureValidationError, match="bad") as info:
        _outcome(tmp_path, 2, [])
    assert info.value.problems == ["x"]


def test_processes_dying_without_an_error_are_retryable_and_quoted(tmp_path: Path) -> None:
    with pytest.raises(WorkerFailedError, match=r"status -9 .*\nKilled"):
        _outcome(tmp_path, -9, ["Killed"])


def test_more_gpu_processes_than_gpus_is_refused(cfg: Config) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    cfg = cfg.replace(training={"device": "cuda", "distributed": {"nproc": 2}})
    with pytest.raises(TrainingError, match="nproc is 2 but this machine has 0 GPU"):
        train(cfg, log=_quiet, progress=False)


def test_nproc_is_left_out_of_the_recorded_config(cfg: Config) -> None:
    two = cfg.replace(training={"distributed": {"nproc": 2}})
    assert two.training.distributed.nproc == 2
    assert two.digest() == cfg.digest() and "distributed" not in two.recorded_dict()["training"]


@pytest.mark.slow
def test_two_ranks_train_like_one_process(cfg: Config, home: Path) -> None:
    cfg = cfg.replace(training={"epochs": 2, "patience": 2})
    one = train(cfg, run_dir=home / "one", log=_quiet, progress=False)
    lines: list[str] = []
    two_cfg = cfg.replace(training={"distributed": {"nproc": 2}})
    two = train(two_cfg, run_dir=home / "two", log=lines.append, progress=False)
    assert lines[0] == "🚀 Launching 2 training processes with torchrun (gloo)"
    assert any("on 2 processes (gloo)" in line for line in lines)
    assert rd.is_complete(two.run_dir) and two.run_dir == home / "two"
    assert two.metrics["distributed"] == {"nproc": 2, "backend": "gloo"}
    assert two.metrics["rows"] == one.metrics["rows"] and two.metrics["epochs_run"] == 2
    # the same global batch, a different split of the rows: the same AUC within noise
    # (loose on 3,000 rows; the 0.002 figure is benchmarks/bench_training.py's)
    assert abs(two.metrics["val_auc"] - one.metrics["val_auc"]) < 0.05
    best = torch.load(two.run_dir / "model_best.pt", weights_only=True)
    plain = torch.load(one.run_dir / "model_best.pt", weights_only=True)
    assert best["state_dict"].keys() == plain["state_dict"].keys()  # no "module." prefix
    assert best["config"] == plain["config"]


@pytest.mark.slow
def test_a_killed_two_rank_run_resumes_on_one_process(
    cfg: Config, home: Path, tmp_path: Path
) -> None:
    cfg = cfg.replace(training={"epochs": 12, "patience": 12})
    run = home / "run"
    spec = tmp_path / "spec.json"
    two = cfg.replace(training={"distributed": {"nproc": 2}})
    launch = Launch(None, None, run, None, None, True)
    raw: dict[str, Any] = _spec(two, launch, False, {}, None, str(tmp_path))
    spec.write_text(json.dumps(raw))
    proc = subprocess.Popen(
        torchrun_command(2, spec),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not (run / rd.CHECKPOINT_LAST).is_file():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # torchrun and both ranks, mid-run
        proc.wait()
    assert not rd.is_complete(run)
    epoch = torch.load(run / rd.CHECKPOINT_LAST, weights_only=True)["trainer"]["epoch"]
    assert 1 <= epoch < 12

    resumed = train(cfg, run_dir=run, log=_quiet, progress=False)
    assert resumed.resumed_from_epoch == epoch and rd.is_complete(run)
    assert "distributed" not in resumed.metrics  # one process finished it
    assert [h["epoch"] for h in resumed.metrics["history"]] == list(
        range(1, resumed.metrics["epochs_run"] + 1)
    )
