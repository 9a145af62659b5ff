"""ml.tuning.worker: pull trials to the target; failures; dead workers; a killed worker."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from ml.config import Config
from ml.errors import StorageError, TrainingError, TuningError
from ml.tuning import study as st
from ml.tuning import worker as wk
from ml.tuning.trial import WORKER_ATTR, worker_identity

CHECKOUT = Path(__file__).resolve().parents[2]


def _prepared(cfg: Config) -> st.StudyRef:
    return st.prepare(cfg, cfg.data.features_dir)[0]


def _fake_trials(
    monkeypatch: pytest.MonkeyPatch, fail: set[int], exc: type = TrainingError
) -> None:
    """Trials that return 0.5 + number/100 without training; numbers in ``fail`` raise."""

    def run_trial(trial: optuna.Trial, ctx: Any) -> float:
        trial.set_user_attr(WORKER_ATTR, worker_identity())
        ctx.cfg.tuning.space.suggest(trial, ctx.cfg)
        if trial.number in fail:
            raise exc(f"the training loss is nan at epoch 1 (trial {trial.number})")
        return 0.5 + trial.number / 100

    monkeypatch.setattr(wk, "run_trial", run_trial)


def test_worker_runs_trials_until_the_target_and_a_second_finds_nothing_to_do(
    cfg: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_trials(monkeypatch, fail=set())
    ref = _prepared(cfg)
    seen: list[int] = []
    result = wk.run_worker(
        ref, cfg, cfg.data.features_dir, target=3, on_trial=lambda t: seen.append(t.number)
    )
    assert result.ran == 3 and seen == [0, 1, 2]
    assert result.counts.complete == 3 and "holds 3 finished trials" in result.reason
    again = wk.run_worker(ref, cfg, cfg.data.features_dir, target=3, slot=1)
    assert again.ran == 0
    more = wk.run_worker(ref, cfg, cfg.data.features_dir, target=4, slot=1)
    assert more.ran == 1 and more.counts.finished == 4


def test_a_failing_trial_is_recorded_and_the_study_goes_on(
    cfg: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_trials(monkeypatch, fail={1})
    ref = _prepared(cfg)
    result = wk.run_worker(ref, cfg, cfg.data.features_dir, target=3)
    assert (result.counts.complete, result.counts.failed, result.counts.errors) == (3, 1, 1)
    failed = st.load(ref, cfg).get_trials()[1]
    assert failed.state == TrialState.FAIL
    assert failed.user_attrs[st.ERROR_ATTR] == (
        "TrainingError: the training loss is nan at epoch 1 (trial 1)"
    )


def test_when_every_trial_fails_the_worker_fails_with_the_first_error(
    cfg: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_trials(monkeypatch, fail=set(range(100)))
    ref = _prepared(cfg)
    with pytest.raises(
        TuningError,
        match=r"every trial .* failed \(3 of 3\); the first: trial 0: "
        r"TrainingError: the training loss is nan at epoch 1 \(trial 0\)",
    ):
        wk.run_worker(ref, cfg, cfg.data.features_dir, target=3)
    assert len(st.load(ref, cfg).get_trials()) == 3  # the failure budget: target trials


def test_an_environment_error_stops_the_worker_and_queues_the_trial_again(
    cfg: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_trials(monkeypatch, fail={1}, exc=lambda m: StorageError(28, m))  # type: ignore[arg-type]
    ref = _prepared(cfg)
    with pytest.raises(StorageError):
        wk.run_worker(ref, cfg, cfg.data.features_dir, target=3)
    trials = st.load(ref, cfg).get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.FAIL, TrialState.WAITING]
    assert st.ERROR_ATTR not in trials[1].user_attrs  # not the trial's own failure
    assert trials[2].user_attrs[st.RETRY_OF_ATTR] == 1
    assert trials[2].system_attrs["fixed_params"] == trials[1].params
    _fake_trials(monkeypatch, fail=set())
    result = wk.run_worker(ref, cfg, cfg.data.features_dir, target=3)
    assert (
        result.counts.complete == 3 and st.load(ref, cfg).get_trials()[2].params == trials[1].params
    )


def _running(study: optuna.Study, owner: dict[str, Any] | None) -> int:
    trial = study.ask()
    if owner is not None:
        trial.set_user_attr(WORKER_ATTR, owner)
    return trial.number


def test_reap_fails_dead_workers_trials_and_queues_their_parameters(cfg: Config) -> None:
    ref = _prepared(cfg)
    study = st.load(ref, cfg)
    proc = subprocess.Popen(["true"])
    dead = worker_identity(proc.pid)
    proc.wait()
    n_dead = _running(study, dead)
    n_live = _running(study, worker_identity())
    n_far = _running(study, {**worker_identity(), "host": "elsewhere"})
    lines: list[str] = []
    assert wk.reap_dead(study, ref, lines.append) == [n_dead]
    assert wk.reap_dead(study, ref, lines.append) == []  # once only
    trials = study.get_trials()
    assert trials[n_dead].state == TrialState.FAIL
    assert trials[n_live].state == trials[n_far].state == TrialState.RUNNING
    queued = trials[-1]
    assert queued.state == TrialState.WAITING and queued.user_attrs[st.RETRY_OF_ATTR] == n_dead
    assert queued.user_attrs[st.DEFAULTS_ATTR] is True  # trial 0 stays "the defaults"
    assert f"trial {n_dead} was left RUNNING by pid {proc.pid}" in lines[0]


def test_worker_waits_for_others_running_the_last_trials(cfg: Config) -> None:
    ref = _prepared(cfg)
    _running(st.load(ref, cfg), worker_identity())  # trial 0, "running elsewhere"
    start = time.monotonic()
    result = wk.run_worker(ref, cfg, cfg.data.features_dir, target=1, timeout=1.5)
    assert result.ran == 0 and result.reason == "the timeout passed"
    assert time.monotonic() - start >= 1.5


#: A worker whose trials take half a second longer per epoch, so it can be killed mid-trial.
SLOW_WORKER = r"""
import sys, time
from ml.training import trainer
original = trainer.Trainer.checkpoint_and_early_stop
def slow(self, epoch, record):
    out = original(self, epoch, record)
    time.sleep(0.5)
    return out
trainer.Trainer.checkpoint_and_early_stop = slow
from ml.config import load_config
from ml.tuning.storage import StorageSpec
from ml.tuning.study import StudyRef
from ml.tuning.worker import run_worker
cfg = load_config(sys.argv[1])
run_worker(StudyRef(sys.argv[2], StorageSpec()), cfg, cfg.data.features_dir, target=3, log=print)
"""


def _wait_for(predicate: Any, proc: subprocess.Popen[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc.poll() is not None:
            raise AssertionError(f"worker exited early:\n{proc.communicate()[0]}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("timed out waiting for the worker")
        time.sleep(0.2)


@pytest.mark.slow
def test_a_worker_killed_mid_trial_loses_no_finished_trial_and_the_retry_resumes(
    home: Path, cfg: Config
) -> None:
    cfg = cfg.replace(training={"epochs": 3, "patience": 3})
    (home / "config" / "tune3.yaml").write_text(cfg.to_yaml() + "\n" + _tuning_yaml(cfg))
    ref = _prepared(cfg)
    env = {**os.environ, "PYTHONPATH": str(CHECKOUT), "CTR_PIPELINE_HOME": str(home)}
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_WORKER, "config/tune3.yaml", ref.name],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    study = st.load(ref, cfg)

    def one_done_one_midway() -> bool:
        trials = study.get_trials(deepcopy=False)
        done = [t for t in trials if t.state == TrialState.COMPLETE]
        mid = [t for t in trials if t.state == TrialState.RUNNING and t.intermediate_values]
        return bool(done and mid)

    _wait_for(one_done_one_midway, proc)
    proc.kill()  # SIGKILL: what a killed Airflow task looks like from the study
    proc.wait()
    before = {t.number: t.value for t in study.get_trials() if t.state == TrialState.COMPLETE}
    (killed,) = study.get_trials(states=(TrialState.RUNNING,))
    # The retry: the same worker again (as Airflow retries the mapped task).
    result = wk.run_worker(ref, cfg, cfg.data.features_dir, target=3, log=print)
    after = st.load(ref, cfg).get_trials()
    assert {n: after[n].value for n in before} == before  # no finished trial lost
    assert after[killed.number].state == TrialState.FAIL
    (retry,) = [t for t in after if t.user_attrs.get(st.RETRY_OF_ATTR) == killed.number]
    assert retry.params == killed.params and retry.state == TrialState.COMPLETE
    assert retry.user_attrs["run_dir"] == killed.user_attrs["run_dir"]
    assert (
        retry.user_attrs["result"]["resumed_from_epoch"] >= 1
    )  # from the killed trial's checkpoint
    assert result.counts.finished == 3


def _tuning_yaml(cfg: Config) -> str:
    import yaml

    return yaml.safe_dump({"tuning": cfg.to_dict()["tuning"]}, sort_keys=False)
