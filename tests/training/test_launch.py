"""ml.training.launch: torchrun's command, results and errors back from the ranks, and
two-rank DDP training on the CPU (gloo) against one process (a killed two-rank run
resuming on one process: test_worker.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from ml.config import Config
from ml.errors import FeatureValidationError, TrainingError, WorkerFailedError
from ml.training import run_dir as rd
from ml.training.job import train
from ml.training.launch import _outcome, torchrun_command


def _quiet(_: str) -> None:
    pass


def test_torchrun_command_runs_this_module_on_n_processes(tmp_path: Path) -> None:
    cmd = torchrun_command(4, tmp_path / "spec.json")
    assert cmd[1:5] == ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node=4"]
    assert cmd[-3:] == ["ml.training.worker", "--spec", str(tmp_path / "spec.json")]


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
    cfg = cfg.replace(training={"epochs": 1})
    one = train(cfg, run_dir=home / "one", log=_quiet, progress=False)
    lines: list[str] = []
    two_cfg = cfg.replace(training={"distributed": {"nproc": 2}})
    two = train(two_cfg, run_dir=home / "two", log=lines.append, progress=False)
    assert lines[0] == "🚀 Launching 2 training processes with torchrun (gloo)"
    assert any("on 2 processes (gloo)" in line for line in lines)
    assert rd.is_complete(two.run_dir) and two.run_dir == home / "two"
    assert two.metrics["distributed"] == {"nproc": 2, "backend": "gloo"}
    assert two.metrics["rows"] == one.metrics["rows"] and two.metrics["epochs_run"] == 1
    # the same global batch, a different split of the rows: the same AUC within noise
    # (loose on 3,000 rows; the 0.002 figure is benchmarks/bench_training.py's)
    assert abs(two.metrics["val_auc"] - one.metrics["val_auc"]) < 0.05
    best = torch.load(two.run_dir / "model_best.pt", weights_only=True)
    plain = torch.load(one.run_dir / "model_best.pt", weights_only=True)
    assert best["state_dict"].keys() == plain["state_dict"].keys()  # no "module." prefix
    assert best["config"] == plain["config"]
