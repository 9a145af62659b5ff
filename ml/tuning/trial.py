"""One trial: an ordinary training run of the config with the trial's values.

The run goes through :func:`ml.training.job.train` with ``evaluate_test=False`` (a
trial never reads the test split) into its own run directory under the study's
directory, keyed by the trial config's digest: a trial retried after its worker died
resumes that run from its last epoch checkpoint, and a trial whose config another trial
already trained reuses the finished run. A lock per run directory keeps two workers out
of the same one. After every epoch the validation metric is reported to the pruner
(``on_epoch_end``), which may stop the trial (:class:`optuna.TrialPruned`).

Each trial records its worker (host, pid, process start time) so that another worker on
the same host can tell when that process is gone (:func:`owner_alive`).
"""

from __future__ import annotations

import math
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ml.data.lineage import ValidatedData
from ml.errors import TrainingError
from ml.fsutil import display_path
from ml.training import run_dir as rd
from ml.tuning.space import apply
from ml.tuning.storage import FlockLock, study_dir
from ml.tuning.study import DEFAULT_KEYS_ATTR, DEFAULTS_ATTR

if TYPE_CHECKING:
    import optuna

    from ml.config import Config

WORKER_ATTR = "worker"
RUN_DIR_ATTR = "run_dir"
RESULT_ATTR = "result"  # best_epoch, epochs_run, seconds, cpu_seconds, resumed_from_epoch...
#: A trial queued as ``model.name: auto``'s choice: the auto trial's number, and the
#: chosen candidate's finished run it reuses.
AUTO_CHOICE_ATTR = "auto_choice_of"
REUSE_RUN_ATTR = "reuse_run_dir"


@dataclass(frozen=True)
class TrialContext:
    """What every trial of one worker shares."""

    study_name: str
    cfg: Config  # the base config (with its tuning section)
    data: ValidatedData  # validated and fingerprinted once per worker
    log: Callable[[str], None]  # the training job's lines


def trial_values(trial: optuna.Trial, cfg: Config) -> dict[str, Any]:
    """The trial's ``{SECTION.KEY: value}`` (trial 0: only the config's in-space values)."""
    space = cfg.tuning.space
    if trial.user_attrs.get(DEFAULTS_ATTR):
        keys = set(trial.user_attrs.get(DEFAULT_KEYS_ATTR) or ())
        only = type(space)(tuple(p for p in space if p.key in keys))
        return only.suggest(trial, cfg)
    return space.suggest(trial, cfg)


def trial_run_dir(study_name: str, cfg: Config) -> Path:
    """The run directory of ``cfg`` in the study (the newest of its key, or a new one)."""
    root = study_dir(study_name)
    key = run_key(study_name, cfg)
    found = rd.runs_for_key(root, cfg.experiment_name, key)
    return found[-1] if found else rd.new_run_dir(root, cfg.experiment_name, key=key)


def run_key(study_name: str, cfg: Config) -> str:
    return rd.run_key(f"tuning:{study_name}", logical_date=None, run_id=cfg.digest())


def run_trial(trial: optuna.Trial, ctx: TrialContext) -> float:
    """Train the trial's config; return its best-epoch validation metric.

    Raises:
        optuna.TrialPruned: the pruner stopped it.
        TrainingError: it diverged (NaN loss) or produced no finite metric.
    """
    from ml.training.job import train

    metric = ctx.cfg.tuning.metric
    trial.set_user_attr(WORKER_ATTR, worker_identity())
    cfg = apply(ctx.cfg, trial_values(trial, ctx.cfg))
    start, cpu = time.perf_counter(), time.process_time()
    locks = study_dir(ctx.study_name) / ".locks"
    locks.mkdir(parents=True, exist_ok=True)
    with FlockLock(str(locks / f"{run_key(ctx.study_name, cfg)}.lock")):
        out = _reusable(trial, cfg, ctx) or trial_run_dir(ctx.study_name, cfg)
        trial.set_user_attr(RUN_DIR_ATTR, display_path(out))
        result = train(
            cfg,
            features_dir=ctx.data.root,
            data=ctx.data,
            run_dir=out,
            evaluate_test=False,
            provenance={"tuning": {"study": ctx.study_name, "trial": trial.number}},
            log=ctx.log,
            progress=False,
            on_epoch_end=pruning_callback(trial, metric),
        )
    value = float(result.metrics[metric])
    # One write for all of it: every write is an append under the journal's lock.
    info = {
        "best_epoch": result.metrics.get("best_epoch"),
        "epochs_run": result.metrics.get("epochs_run"),
        "seconds": round(time.perf_counter() - start, 3),
        "cpu_seconds": round(time.process_time() - cpu, 3),  # all threads of the process
        "resumed_from_epoch": result.resumed_from_epoch,
        "reused": result.reused,
    }
    if isinstance(result.metrics.get("auto"), dict):  # model.name auto: trial 0's choice
        info["model_choice"] = result.metrics["auto"].get("chosen")
    trial.set_user_attr(RESULT_ATTR, info)
    if not math.isfinite(value):
        raise TrainingError(f"the trial's {metric} is {value}")
    if "model_choice" in info:
        note = enqueue_auto_choice(trial.study, trial.number, ctx.cfg, result.metrics)
        if note:
            ctx.log(note)
    return value


def enqueue_auto_choice(
    study: optuna.Study, number: int, cfg: Config, metrics: dict[str, Any]
) -> str:
    """After ``model.name: auto``'s trial ``number`` (trial 0): queue the family it chose,
    with its size-aware settings, as a trial of the search space, so that the sampler
    learns which family and settings won (trial 0 itself has no ``model.name``
    parameter: ``auto`` is not in the space). That trial reuses the chosen candidate's
    finished run (no second training). Queued only when the space can express the
    candidate's config exactly, and once per study. Returns a line for the log."""
    from ml.config import load_config

    choice = metrics.get("auto") or {}
    chosen = choice.get("chosen")
    row = next((c for c in choice.get("candidates", []) if c.get("family") == chosen), None)
    if row is None or not row.get("run_dir"):
        return ""
    if any(AUTO_CHOICE_ATTR in t.user_attrs for t in study.get_trials(deepcopy=False)):
        return ""
    run = Path(row["run_dir"])
    chosen_cfg = load_config(run / rd.CONFIG_YAML)
    space = cfg.tuning.space
    params, outside = space.defaults(chosen_cfg)
    if apply(cfg, space.values(params)).digest() != chosen_cfg.digest():
        return (
            f"auto chose {chosen}, whose settings the search space cannot express "
            f"({'; '.join(outside) or 'a key outside the space'}): not queued as a trial"
        )
    study.enqueue_trial(
        params,
        user_attrs={
            DEFAULTS_ATTR: True,
            DEFAULT_KEYS_ATTR: sorted(params),
            AUTO_CHOICE_ATTR: number,
            REUSE_RUN_ATTR: str(run),
        },
    )
    return (
        f"queued auto's choice ({chosen}: "
        + ", ".join(f"{k}={v}" for k, v in sorted(params.items()) if k.startswith("model."))
        + f") as a trial of the space; it reuses trial {number}'s run of it"
    )


def _reusable(trial: optuna.Trial, cfg: Config, ctx: TrialContext) -> Path | None:
    """The finished candidate run an auto-choice trial reuses, when it still matches."""
    reuse = trial.user_attrs.get(REUSE_RUN_ATTR)
    if not reuse:
        return None
    path = Path(reuse)
    same = rd.mismatch(path, config_digest=cfg.digest(), data_digest=ctx.data.digest) is None
    return path if rd.is_complete(path) and same else None


def pruning_callback(trial: optuna.Trial, metric: str) -> Callable[[int, dict[str, Any]], None]:
    """Report ``metric`` after every epoch; raise :class:`optuna.TrialPruned` when the
    pruner says the trial cannot catch up."""
    import optuna

    def on_epoch_end(epoch: int, record: dict[str, Any]) -> None:
        value = float(record[metric])
        if not math.isfinite(value):
            return
        trial.report(value, epoch)
        if trial.should_prune():
            raise optuna.TrialPruned(f"pruned after epoch {epoch}: {metric} {value:.4f}")

    return on_epoch_end


def worker_identity(pid: int | None = None) -> dict[str, Any]:
    """``{"host", "pid", "start"}`` of this process (start: kernel start time, so a
    reused pid is told apart)."""
    pid = pid or os.getpid()
    return {"host": socket.gethostname(), "pid": pid, "start": _start_ticks(pid)}


def _stat(pid: int) -> list[str] | None:
    """``/proc/<pid>/stat`` fields after the command name (state first), or None."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _start_ticks(pid: int) -> int | None:
    fields = _stat(pid)
    return int(fields[19]) if fields else None  # field 22: starttime


def owner_alive(owner: Any) -> bool | None:
    """Whether the process in a trial's ``worker`` attribute still runs: True/False on
    this host, None (unknown) for another host or a missing record."""
    if not isinstance(owner, dict) or owner.get("host") != socket.gethostname():
        return None
    pid = owner.get("pid")
    if not isinstance(pid, int):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by another user
    fields = _stat(pid)
    if fields is None:  # no /proc: the signal said it exists
        return True
    start = owner.get("start")
    return fields[0] != "Z" and (start is None or int(fields[19]) == start)
