"""ml.tuning.trial: a trial is a training run without test; pruning; the worker's identity."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from ml.config import Config
from ml.data.validate import validate_data
from ml.training import run_dir as rd
from ml.tuning import study as st
from ml.tuning.trial import (
    TrialContext,
    owner_alive,
    pruning_callback,
    run_trial,
    worker_identity,
)


def _study(pruner: optuna.pruners.BasePruner | None = None) -> optuna.Study:
    return optuna.create_study(direction="maximize", pruner=pruner)


def test_pruning_callback_reports_each_epoch_and_raises_when_the_pruner_says_so() -> None:
    study = _study(optuna.pruners.ThresholdPruner(lower=0.9, n_warmup_steps=2))
    trial = study.ask()
    callback = pruning_callback(trial, "val_auc")
    callback(1, {"val_auc": 0.6, "val_logloss": 0.5})  # warm-up: not pruned
    callback(2, {"val_auc": float("nan"), "val_logloss": 0.5})  # not reported
    with pytest.raises(optuna.TrialPruned, match=r"pruned after epoch 3: val_auc 0\.6100"):
        callback(3, {"val_auc": 0.61, "val_logloss": 0.5})
    assert study.get_trials()[0].intermediate_values == {1: 0.6, 3: 0.61}


def test_pruning_callback_follows_the_metric() -> None:
    study = optuna.create_study(direction="minimize", pruner=optuna.pruners.NopPruner())
    trial = study.ask()
    pruning_callback(trial, "val_logloss")(1, {"val_auc": 0.6, "val_logloss": 0.45})
    assert study.get_trials()[0].intermediate_values == {1: 0.45}


def _ctx(cfg: Config, name: str = "s") -> TrialContext:
    data = validate_data(cfg.data.features_dir, cfg.features, cfg.data.numeric_nan)
    return TrialContext(name, cfg, data, lambda _line: None)


def test_run_trial_trains_without_the_test_split_into_the_study_dir(
    home: Path, cfg: Config
) -> None:
    study = _study()
    study.enqueue_trial({"model.name": "deepfm", "model.dropout": 0.1}, user_attrs={})
    study.optimize(lambda t: run_trial(t, _ctx(cfg)), n_trials=1)
    (trial,) = study.get_trials()
    assert trial.state == TrialState.COMPLETE
    run = home / trial.user_attrs["run_dir"]
    assert run.parent == home / "experiments" / "tuning" / "s"
    assert rd.is_complete(run)
    metrics = json.loads((run / rd.METRICS_JSON).read_text())
    assert trial.value == pytest.approx(metrics["val_auc"])
    assert metrics["rows"].keys() == {"train", "val"}  # the test split was never read
    assert not any(k.startswith("test_") for k in metrics)
    assert metrics["model"] == "deepfm"
    assert trial.user_attrs["worker"] == worker_identity()
    assert trial.user_attrs["result"]["epochs_run"] == 2
    assert json.loads((run / rd.RUN_JSON).read_text())["tuning"] == {"study": "s", "trial": 0}


def test_the_same_trial_config_reuses_its_finished_run(home: Path, cfg: Config) -> None:
    study = _study()
    params = {"model.name": "deepfm", "model.dropout": 0.1, "training.learning_rate": 0.01}
    for _ in range(2):
        study.enqueue_trial(params)
    study.optimize(lambda t: run_trial(t, _ctx(cfg)), n_trials=2)
    first, second = study.get_trials()
    assert first.user_attrs["run_dir"] == second.user_attrs["run_dir"]
    assert first.value == second.value


def test_a_pruned_trial_leaves_a_resumable_run(home: Path, cfg: Config) -> None:
    study = _study(optuna.pruners.ThresholdPruner(lower=0.9999, n_warmup_steps=0))
    cfg4 = cfg.replace(training={"epochs": 4})
    study.optimize(lambda t: run_trial(t, _ctx(cfg4)), n_trials=1)
    (trial,) = study.get_trials()
    assert trial.state == TrialState.PRUNED and trial.last_step == 1
    run = home / trial.user_attrs["run_dir"]
    assert not rd.is_complete(run) and (run / rd.CHECKPOINT_LAST).is_file()


def test_trial_0_trains_the_configs_own_values(home: Path, cfg: Config) -> None:
    ref, _ = st.prepare(cfg, cfg.data.features_dir)
    study = st.load(ref, cfg)
    study.optimize(lambda t: run_trial(t, _ctx(cfg, ref.name)), n_trials=1)
    (trial,) = study.get_trials()
    run = home / trial.user_attrs["run_dir"]
    # The learning rate lies outside the space: not a parameter, trained as configured.
    assert "training.learning_rate" not in trial.params
    recorded = json.loads((run / rd.RUN_JSON).read_text())["config_digest"]
    assert recorded == cfg.digest()


def test_owner_alive_tells_running_dead_and_foreign_processes() -> None:
    me = worker_identity()
    assert owner_alive(me) is True
    proc = subprocess.Popen(["true"])
    gone = worker_identity(proc.pid)
    proc.wait()
    assert owner_alive(gone) is False
    assert owner_alive({**me, "host": socket.gethostname() + "-other"}) is None
    assert owner_alive(None) is None
    # The same pid, started at another time: a reused pid, not our worker.
    assert owner_alive({**me, "start": int(me["start"]) + 1}) is False
    assert me["pid"] == os.getpid()


def test_auto_choice_is_queued_as_a_trial_of_the_space_reusing_its_run(
    home: Path, cfg: Config
) -> None:
    from ml.training.job import train
    from ml.tuning.report import trial_line
    from ml.tuning.trial import enqueue_auto_choice

    auto_cfg = cfg.replace(model={"name": "auto"}, training={"learning_rate": 0.03})
    run = home / "experiments" / "chosen"  # the candidate auto chose, as auto trains it
    chosen = auto_cfg.replace(model={"name": "deepfm", "dropout": 0.1})
    train(chosen, run_dir=run, evaluate_test=False, log=lambda _: None)
    metrics = {
        "auto": {
            "chosen": "deepfm",
            "candidates": [{"family": "dcnv2", "run_dir": "elsewhere"},
                           {"family": "deepfm", "run_dir": str(run)}],
        }
    }  # fmt: skip
    study = _study()
    note = enqueue_auto_choice(study, 0, auto_cfg, metrics)
    assert note.startswith("queued auto's choice (deepfm: model.dropout=0.1, model.name=deepfm)")
    assert enqueue_auto_choice(study, 0, auto_cfg, metrics) == ""  # once per study
    study.optimize(lambda t: run_trial(t, _ctx(auto_cfg)), n_trials=1)
    (trial,) = study.get_trials()
    assert trial.params["model.name"] == "deepfm" and trial.params["model.dropout"] == 0.1
    assert trial.user_attrs["result"]["reused"] and trial.user_attrs["auto_choice_of"] == 0
    assert trial.value == pytest.approx(json.loads((run / rd.METRICS_JSON).read_text())["val_auc"])
    assert trial_line(trial, "val_auc").endswith("(model.name auto's choice in trial 0)")


def test_auto_choice_outside_the_space_is_not_queued(home: Path, cfg: Config) -> None:
    from ml.training.job import train
    from ml.tuning.trial import enqueue_auto_choice

    auto_cfg = cfg.replace(model={"name": "auto"})
    run = home / "experiments" / "chosen"  # hidden units [8]: not a key of the space
    train(auto_cfg.replace(model={"name": "deepfm", "hidden_units": [8]}), run_dir=run,
          evaluate_test=False, log=lambda _: None)  # fmt: skip
    metrics = {
        "auto": {"chosen": "deepfm", "candidates": [{"family": "deepfm", "run_dir": str(run)}]}
    }
    study = _study()
    note = enqueue_auto_choice(study, 0, auto_cfg, metrics)
    assert "cannot express" in note and "deepfm" in note
    assert not study.get_trials()
