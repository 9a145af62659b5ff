"""Studies: their names, creating or resuming one, and counting its trials.

A study's name is derived from what it tunes: the config *without* its ``tuning``
section (:meth:`ml.config.Config.digest`), the data fingerprint's digest and the metric
(``<experiment_name>-<metric>-<12 hex digits>``). Running ``tune`` again on the same
config and data, or asking for more trials, therefore resumes the same study; a new
config or new data starts another. ``--new-study`` starts a fresh one beside it
(``<name>-2``, ``-3``...), which later runs then resume.

Trial 0 of a new study is the config as it is (its values enqueued), so the best trial
by the validation metric is never worse than the shipped defaults on validation; with
``model.name: auto`` (the shipped default) trial 0 is the automatic choice itself (its
candidates train in that trial, ``ml.training.auto``), and the family it chose, with its
size-aware settings, is then queued in the space's terms, reusing that candidate's run
(:func:`ml.tuning.trial.enqueue_auto_choice`).
"""

from __future__ import annotations

import hashlib
import os
import re
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ml.errors import TuningError
from ml.fsutil import utc_now
from ml.tuning.storage import StorageSpec, unreachable

if TYPE_CHECKING:
    import optuna

    from ml.config import Config

#: The pruner keeps a trial while its best metric so far is in the best PRUNER_PERCENTILE
#: percent of the complete trials' at the same epoch (so it stops the worst quarter),
#: once PRUNER_STARTUP trials completed, from epoch PRUNER_WARMUP on. (The median from
#: epoch 2 pruned 23 of 30 trials on the default world, most of them slow starters.)
PRUNER_PERCENTILE = 75.0
PRUNER_STARTUP = 5
PRUNER_WARMUP = 4
#: User attributes of a trial.
DEFAULTS_ATTR = "defaults"  # trial 0: the config's own values
DEFAULT_KEYS_ATTR = "default_keys"
ERROR_ATTR = "error"  # why the trial failed (a failure of the trial, not of its worker)
RETRY_OF_ATTR = "retry_of"  # the trial whose worker died, re-run with these parameters


@dataclass(frozen=True)
class StudyRef:
    """A study by name, in a storage (what the DAG passes from task to task, minus the
    storage's URL: each process reads that from its own environment)."""

    name: str
    storage: StorageSpec

    def describe(self) -> str:
        return f"{self.name} ({self.storage.describe()})"


@dataclass(frozen=True)
class Counts:
    """A study's trials by state; ``errors`` are failures of the trial itself."""

    complete: int = 0
    pruned: int = 0
    failed: int = 0
    errors: int = 0
    running: int = 0
    waiting: int = 0

    @property
    def finished(self) -> int:
        """Complete or pruned: what the target number of trials counts."""
        return self.complete + self.pruned

    def to_dict(self) -> dict[str, int]:
        """The counts a summary shows (``finished`` first; no errors or waiting)."""
        keys = ("finished", "complete", "pruned", "failed", "running")
        return {k: getattr(self, k) for k in keys}


def base_name(cfg: Config, data_digest: str) -> str:
    """``<experiment>-<metric>-<digest>`` of the config without ``tuning`` and the data."""
    blob = f"{cfg.digest()}\n{data_digest}\n{cfg.tuning.metric}"
    digest = hashlib.sha256(blob.encode()).hexdigest()[:12]
    return f"{cfg.experiment_name}-{cfg.tuning.metric}-{digest}"


def resolve(cfg: Config, data_digest: str, *, new: bool, storage: StorageSpec) -> StudyRef:
    """The study to use: the newest of this config and data, or a fresh one if ``new``."""
    base = base_name(cfg, data_digest)
    pattern = re.compile(re.escape(base) + r"(?:-(\d+))?\Z")
    numbers = [
        int(m.group(1) or 1) for name in _names(storage) if (m := pattern.match(name)) is not None
    ]
    if not numbers:
        return StudyRef(base, storage)
    n = max(numbers) + 1 if new else max(numbers)
    return StudyRef(base if n == 1 else f"{base}-{n}", storage)


def _names(storage: StorageSpec) -> list[str]:
    try:
        return storage.study_names()
    except Exception as exc:
        raise_storage_error(storage, exc)
        raise


def raise_storage_error(storage: StorageSpec, exc: Exception) -> None:
    """Re-raise a database error as ServiceUnavailableError (others pass through)."""
    from sqlalchemy.exc import SQLAlchemyError

    if storage.url and isinstance(exc, SQLAlchemyError):
        raise unreachable(storage.url, exc) from None


def sampler(seed: int) -> optuna.samplers.BaseSampler:
    """TPE with the constant liar (parallel workers spread out instead of sampling alike)."""
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(seed=seed, constant_liar=True)


def pruner() -> optuna.pruners.BasePruner:
    import optuna

    return optuna.pruners.PercentilePruner(
        PRUNER_PERCENTILE, n_startup_trials=PRUNER_STARTUP, n_warmup_steps=PRUNER_WARMUP
    )


def create(ref: StudyRef, cfg: Config, data_digest: str) -> tuple[optuna.Study, list[str]]:
    """Create the study (or load it); a new one gets the config's own values as trial 0.

    Returns:
        The study and notes for the log (trial 0's values outside the space).
    """
    import optuna

    _quiet_optuna()
    try:
        study = optuna.create_study(
            study_name=ref.name,
            storage=ref.storage.open(ref.name),
            sampler=sampler(cfg.seed),
            pruner=pruner(),
            direction=cfg.tuning.direction,
            load_if_exists=True,
        )
        notes: list[str] = []
        if not study.get_trials(deepcopy=False):
            params, outside = cfg.tuning.space.defaults(cfg)
            study.set_user_attr("config_digest", cfg.digest())
            study.set_user_attr("data_digest", data_digest)
            study.set_user_attr("metric", cfg.tuning.metric)
            study.set_user_attr("created_at", utc_now())
            study.enqueue_trial(
                params, user_attrs={DEFAULTS_ATTR: True, DEFAULT_KEYS_ATTR: sorted(params)}
            )
            notes = [
                "trial 0 is model.name auto's choice (its candidate families train in it, "
                "the best on validation is the trial's value)"
                if key.startswith("model.name=auto ")
                else f"trial 0 trains the config's own {key}, outside the search space"
                for key in outside
            ]
    except Exception as exc:
        raise_storage_error(ref.storage, exc)
        raise
    return study, notes


def load(ref: StudyRef, cfg: Config, slot: int = 0) -> optuna.Study:
    """An existing study with this worker's sampler and the pruner.

    Raises:
        TuningError: no such study (create it first).
        ServiceUnavailableError: the database cannot be reached.
    """
    import optuna

    _quiet_optuna()
    try:
        study = optuna.load_study(study_name=ref.name, storage=ref.storage.open(ref.name))
        # Seeded by the config, the worker's slot and how far the study got, so a
        # resumed study or a second worker never replays another's random draws.
        seed = cfg.seed + 7919 * slot + 104_729 * len(study.get_trials(deepcopy=False))
        return optuna.load_study(
            study_name=ref.name,
            storage=ref.storage.open(ref.name),
            sampler=sampler(seed),
            pruner=pruner(),
        )
    except KeyError:
        raise TuningError(
            f"no study {ref.describe()}: create it first (ctr-pipeline tune, or the DAG's "
            "tuning.create_study task)"
        ) from None
    except Exception as exc:
        raise_storage_error(ref.storage, exc)
        raise


def counts(study: optuna.Study) -> Counts:
    from optuna.trial import TrialState

    by_state: dict[Any, int] = {}
    errors = 0
    for t in study.get_trials(deepcopy=False):
        by_state[t.state] = by_state.get(t.state, 0) + 1
        errors += t.state == TrialState.FAIL and ERROR_ATTR in t.user_attrs
    return Counts(
        complete=by_state.get(TrialState.COMPLETE, 0),
        pruned=by_state.get(TrialState.PRUNED, 0),
        failed=by_state.get(TrialState.FAIL, 0),
        errors=errors,
        running=by_state.get(TrialState.RUNNING, 0),
        waiting=by_state.get(TrialState.WAITING, 0),
    )


def first_error(study: optuna.Study) -> str | None:
    """The error of the first trial that failed by itself, as ``trial N: Type: message``."""
    for t in study.get_trials(deepcopy=False):
        if ERROR_ATTR in t.user_attrs:
            return f"trial {t.number}: {t.user_attrs[ERROR_ATTR]}"
    return None


def best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    """The best complete trial, or None when none completed."""
    from optuna.trial import TrialState

    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return None
    return study.best_trial


def _quiet_optuna() -> None:
    """Our own lines say what happened; Optuna's per-trial INFO/WARNING logs would
    repeat them (failed trials with a full traceback)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)


def prepare(
    cfg: Config,
    features_dir: str | os.PathLike[str],
    *,
    new: bool = False,
    storage: StorageSpec | None = None,
    digest: str | None = None,
) -> tuple[StudyRef, list[str]]:
    """Name, create (or resume) the study of ``cfg`` on the features; trial 0 queued.

    ``digest`` is the features' fingerprint digest when the caller has it (else hashed).

    Returns:
        The study and notes for the log (keys not tuned for some models, trial 0's
        values outside the space).

    Raises:
        TuningError: the config has no search space.
        FeatureValidationError: the features are missing or unreadable.
    """
    from ml.data.lineage import fingerprint

    if not len(cfg.tuning.space):
        raise TuningError(
            "the config has no tuning.space: add the keys to search, e.g. "
            "tuning: {space: {training.learning_rate: {low: 0.001, high: 0.05, log: true}}} "
            "(see docs/tuning.md and config/model_config.yaml)"
        )
    if digest is None:
        digest = str(fingerprint(features_dir, cfg.features)["digest"])
    ref = resolve(cfg, digest, new=new, storage=storage or StorageSpec.from_env())
    _, notes = create(ref, cfg, digest)
    return ref, [*applicability_notes(cfg), *notes]


def applicability_notes(cfg: Config) -> list[str]:
    """Which ``model.*`` keys of the space some trials' models do not use (not tuned there)."""
    space = cfg.tuning.space
    names = next((p.choices for p in space if p.key == "model.name"), None)
    models = [str(m) for m in names] if names is not None else [cfg.model.name]
    notes = []
    for p in space:
        skip = [m for m in models if p.key in space.inapplicable(m)]
        if skip:
            notes.append(
                f"tuning.space key {p.key} does not apply to model {', '.join(skip)}: "
                "those trials do not sample it"
            )
    return notes
