"""ml.training.worker: one torchrun process; a killed two-rank run resumes on one process."""

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
from ml.training import run_dir as rd
from ml.training.job import train
from ml.training.launch import Launch, _spec, torchrun_command
from ml.training.worker import _call, _parser


def _quiet(_: str) -> None:
    pass


def test_train_options_stand_in_for_a_spec(project_home: Path) -> None:
    args = _parser().parse_args(["--model-family", "logreg", "--run-dir", "r", "--no-resume"])
    cfg, kw, out = _call(args)
    assert cfg.model.name == "logreg" and out is None
    assert kw == {"features_dir": None, "run_dir": "r", "resume": False}


def test_a_spec_carries_the_launchers_arguments(cfg: Config, tmp_path: Path) -> None:
    launch = Launch("feats", None, "run", "key1", None, True)
    raw = _spec(cfg, launch, False, {"dag_id": "d"}, None, str(tmp_path))
    (tmp_path / "spec.json").write_text(json.dumps(raw))
    got, kw, out = _call(_parser().parse_args(["--spec", str(tmp_path / "spec.json")]))
    assert got == cfg and out == str(tmp_path)
    assert kw["run_key"] == "key1" and kw["evaluate_test"] is False
    assert kw["provenance"] == {"dag_id": "d"} and kw["deadline"] is None


@pytest.mark.slow
def test_a_killed_two_rank_run_resumes_on_one_process(
    cfg: Config, home: Path, tmp_path: Path
) -> None:
    cfg = cfg.replace(training={"epochs": 8, "patience": 8})
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
    assert 1 <= epoch < 8

    resumed = train(cfg, run_dir=run, log=_quiet, progress=False)
    assert resumed.resumed_from_epoch == epoch and rd.is_complete(run)
    assert "distributed" not in resumed.metrics  # one process finished it
    assert [h["epoch"] for h in resumed.metrics["history"]] == list(
        range(1, resumed.metrics["epochs_run"] + 1)
    )
