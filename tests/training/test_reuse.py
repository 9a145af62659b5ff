"""ml.training.reuse: reuse, resume or start anew, by config and data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ml.config import Config
from ml.errors import TrainingError
from ml.training import run_dir as rd
from ml.training.reuse import choose_run_dir


def _finished(run: Path, cfg: Config, data: str) -> Path:
    run.mkdir(parents=True)
    info = {"config_digest": cfg.digest(), "data_fingerprint": {"digest": data}}
    (run / rd.RUN_JSON).write_text(json.dumps(info))
    (run / rd.METRICS_JSON).write_text("{}")
    rd.mark_complete(run)
    return run


def test_no_run_dir_and_no_key_starts_anew(cfg: Config) -> None:
    choice = choose_run_dir(cfg, None, None, "d" * 64, True)
    assert choice.out is None and not choice.reused and choice.resume_state is None


def test_keyed_finished_run_is_reused_only_with_the_same_data(cfg: Config) -> None:
    runs = Path(cfg.output.runs_dir)
    _finished(runs / "ctr_model_20240101_000000_0000000001", cfg, "d")
    assert choose_run_dir(cfg, None, "0000000001", "d", True).reused
    other = choose_run_dir(cfg, None, "0000000001", "e", True)
    assert other.out is None and "data digest" in other.notes[0]


def test_explicit_finished_run_of_other_inputs_is_an_error(cfg: Config, home: Path) -> None:
    run = _finished(home / "run", cfg, "d")
    with pytest.raises(TrainingError, match=r"finished run of other inputs.*data digest"):
        choose_run_dir(cfg, run, None, "e", True)
