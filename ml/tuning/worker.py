"""A tuning worker: pull trials from the study until it holds enough finished ones.

Any number of workers (processes of ``ctr-pipeline tune --parallel K``, or the DAG's
mapped ``tune_worker`` tasks on any Airflow workers) run :func:`run_worker` on one study.
Each loops:

1. reap trials left RUNNING by dead workers: with a database, Optuna's heartbeat fails
   stale ones and queues their parameters again; otherwise (and also with a database,
   sooner) a RUNNING trial whose recorded process is gone from this host is marked FAIL
   and its parameters queued again, so its run resumes from its last checkpoint;
2. stop when the study holds ``target`` finished (complete or pruned) trials, or when
   ``target`` trials failed by themselves (the failure budget), or at the deadline;
3. if the trials running elsewhere will reach the target, wait for them; otherwise run
   one trial (a queued one first: trial 0, or a dead worker's).

A trial that raises (NaN loss included) is recorded FAIL with its error and the study
goes on; a :class:`~ml.errors.RetryableError` (disk full, database gone) or an interrupt
stops the worker after queueing the trial's parameters again, so a retried worker loses
nothing. Finished trials are in the storage the moment they finish: killing a worker
never loses them. When the study ends without one complete trial and the failure budget
is spent, :func:`run_worker` raises :class:`~ml.errors.TuningError` with the first
trial's error.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from ml.data.lineage import ValidatedData
from ml.errors import RetryableError, TuningError
from ml.tuning import study as st
from ml.tuning.trial import WORKER_ATTR, TrialContext, owner_alive, run_trial

if TYPE_CHECKING:
    import optuna

    from ml.config import Config

#: Seconds between looks at the study while other workers finish the last trials.
POLL_S = 1.0
#: A RUNNING trial that never recorded its worker is presumed dead after this long.
UNCLAIMED_S = 120.0

LogFn = Callable[[str], None]


class _TrialFailed(TuningError):
    """A trial's own failure (recorded; the study goes on)."""


@dataclass(frozen=True)
class WorkerResult:
    """What one worker did, and the study's trials when it stopped."""

    ran: int
    counts: st.Counts
    reason: str


def run_worker(
    ref: st.StudyRef,
    cfg: Config,
    features_dir: str | Path,
    *,
    target: int,
    slot: int = 0,
    timeout: float | None = None,
    log: LogFn = print,
    train_log: LogFn | None = None,
    on_trial: Callable[[optuna.trial.FrozenTrial], None] | None = None,
    data: ValidatedData | None = None,
) -> WorkerResult:
    """Run trials of ``ref`` until it holds ``target`` finished ones (see module doc).

    Args:
        ref: the study (created beforehand).
        cfg: the base config (the study's: same digest, with its tuning section).
        features_dir: the data every trial trains on.
        target: finished trials the study should hold.
        slot: this worker's number (seeds its sampler).
        timeout: start no trial after this many seconds.
        log: the worker's own lines; ``train_log`` the training job's (default: none).
        on_trial: called with each trial this worker finished.
        data: ``features_dir`` as this run already validated it (else validated here,
            once for every trial of this worker).

    Raises:
        TuningError: every trial failed (the first one's error in the message).
        ServiceUnavailableError: the database became unreachable.
        RetryableError: a trial hit an environment failure (its parameters are queued).
    """
    import ml.training.job  # noqa: F401  (torch: imported once, not inside trial 0's time)

    study = st.load(ref, cfg, slot)
    if data is None or not data.current(features_dir):
        from ml.data.validate import validate_data

        data = validate_data(features_dir, cfg.features, cfg.data.numeric_nan)
    ctx = TrialContext(ref.name, cfg, data, train_log or (lambda _line: None))
    deadline = time.monotonic() + timeout if timeout else None
    current: list[int] = []  # the number of the trial being run
    objective = _objective(ctx, current)

    def finished(_: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if on_trial is not None:
            on_trial(trial)

    ran, reason = 0, ""
    try:
        while True:
            reap_dead(study, ref, log)
            c = st.counts(study)
            reason = _stop_reason(c, target, deadline)
            if reason:
                break
            if c.finished + c.running >= target:  # the others will get there: wait
                time.sleep(POLL_S)
                continue
            current.clear()
            study.optimize(objective, n_trials=1, catch=(_TrialFailed,), callbacks=[finished])
            ran += 1
    except BaseException as exc:
        if current:
            _requeue_after_interrupt(study, current[0], log)
        if isinstance(exc, Exception):
            st.raise_storage_error(ref.storage, exc)
        raise
    c = st.counts(study)
    if c.complete == 0 and c.errors >= target:
        raise TuningError(
            f"every trial of study {ref.name} failed ({c.errors} of {c.errors + c.finished}); "
            f"the first: {st.first_error(study)}"
        )
    return WorkerResult(ran, c, reason)


def _objective(ctx: TrialContext, current: list[int]) -> Callable[[optuna.Trial], float]:
    """The Optuna objective: one trial; its own failure is recorded as ``_TrialFailed``."""

    def objective(trial: optuna.Trial) -> float:
        import optuna

        current[:] = [trial.number]
        try:
            return run_trial(trial, ctx)
        except (optuna.TrialPruned, RetryableError):
            raise
        except Exception as exc:
            message = f"{type(exc).__name__}: {exc}"
            trial.set_user_attr(st.ERROR_ATTR, message)
            raise _TrialFailed(message) from exc

    return objective


def _stop_reason(c: st.Counts, target: int, deadline: float | None) -> str:
    if c.finished >= target:
        return f"the study holds {c.finished} finished trials (target {target})"
    if c.errors >= target:
        return f"{c.errors} trials failed (the failure budget is the target, {target})"
    if deadline is not None and time.monotonic() > deadline:
        return "the timeout passed"
    return ""


def reap_dead(study: optuna.Study, ref: st.StudyRef, log: LogFn) -> list[int]:
    """Fail the RUNNING trials whose worker is gone and queue their parameters again.

    Returns:
        The numbers of the trials reaped.
    """
    import warnings

    import optuna
    from optuna.trial import TrialState

    if ref.storage.url:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)  # the heartbeat's verdict
    dead = [
        t for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)) if _is_dead(t)
    ]
    reaped: list[int] = []
    if not dead:
        return reaped
    with ref.storage.reap_lock(ref.name):
        trials = study.get_trials(deepcopy=False)
        for t in dead:
            fresh = trials[t.number]
            if fresh.state != TrialState.RUNNING:
                continue  # another worker reaped it
            try:
                study.tell(t.number, state=TrialState.FAIL)
            except (ValueError, RuntimeError, optuna.exceptions.UpdateFinishedTrialError):
                continue
            _requeue(study, fresh)
            owner = fresh.user_attrs.get(WORKER_ATTR) or {}
            log(
                f"♻️  trial {t.number} was left RUNNING by pid {owner.get('pid', '?')} on "
                f"{owner.get('host', '?')}, which is gone: marked FAIL, its parameters queued "
                "again"
            )
            reaped.append(t.number)
    return reaped


def _is_dead(trial: optuna.trial.FrozenTrial) -> bool:
    owner = trial.user_attrs.get(WORKER_ATTR)
    if owner is None and trial.datetime_start is not None:
        age = (datetime.now() - trial.datetime_start).total_seconds()
        return age > UNCLAIMED_S
    return owner_alive(owner) is False


def _requeue(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    keep = (st.DEFAULTS_ATTR, st.DEFAULT_KEYS_ATTR)
    attrs = {k: v for k, v in trial.user_attrs.items() if k in keep}
    study.enqueue_trial(dict(trial.params), user_attrs={**attrs, st.RETRY_OF_ATTR: trial.number})


def _requeue_after_interrupt(study: optuna.Study, number: int, log: LogFn) -> None:
    """The worker is stopping mid-trial: fail that trial (if still running) and queue its
    parameters again, unless the trial failed by itself."""
    from optuna.trial import TrialState

    try:
        trial = study.get_trials(deepcopy=False)[number]
        if trial.state == TrialState.RUNNING:
            study.tell(number, state=TrialState.FAIL)
        elif trial.state != TrialState.FAIL or st.ERROR_ATTR in trial.user_attrs:
            return
        _requeue(study, trial)
        log(f"♻️  trial {number} was interrupted: its parameters are queued again")
    except Exception as exc:  # the storage itself may be what failed; the retry reaps it
        log(f"⚠️  could not queue trial {number} again ({exc}); a later worker will reap it")
