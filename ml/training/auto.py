"""``model.name: auto``: train candidate families within a time budget, keep the best on
validation.

The candidates run cheapest first (:data:`CANDIDATES`): the logistic regression (always
trained, whatever the budget: it is the floor every other family must beat; fitted to
its optimum with its L2 chosen on validation, :mod:`ml.training.linear`, in seconds),
then a factorization machine, then the deep families. Each is the config with ``model.name``
set and size-aware settings (:func:`candidate_config`, rules in its docstring); each
trains through the ordinary training job into ``<run>/candidates/<family>/`` (so an
interrupted choice resumes and a finished candidate is reused like any run). The one
with the best validation metric (:func:`selection_metric`; ties go to the cheaper one)
is kept. The budget is in seconds (``model.auto_budget``; null: :func:`auto_budget`):
once it is spent the remaining candidates are skipped, and a candidate still training
then stops after its current epoch, keeping its best epoch so far. Every decision is
logged with its reason, and :class:`AutoChoice` (the table: family, validation AUC and
log loss, epochs, seconds, why skipped) goes into the run's metrics, hence the run
summary, the version's metadata, the model card and the notifications.

With the same seed and data, every candidate trains to the same metrics; only a budget
that runs out (slow or loaded hardware) changes which candidates ran.

This module does not train by itself: :func:`choose` takes the function that trains one
candidate (the training job passes its own), so tests can give it a stand-in.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ml.config import Config
from ml.errors import TrainingError
from ml.fsutil import atomic_write_json
from ml.training import run_dir as rd
from ml.training.sizing import SMALL_VAL_ROWS

#: Candidate families, cheapest first (logreg always trains); of the deep ones, FinalMLP
#: first: it leads the published FuxiCTR benchmarks on small sparse sets (Mao et al.,
#: AAAI 2023: test AUC on Frappe 0.9859 and MovieLens 0.9705 vs DCN-V2's 0.9839 and 0.9675),
#: then DCN-V2 (the former single default) while the budget lasts.
CANDIDATES = ("logreg", "fm", "finalmlp", "dcnv2")
#: ``model.auto_budget: null``: this many seconds per 100,000 train rows, at least
#: AUTO_BUDGET_MIN_S (a family's training time grows with the rows). At 100k rows (70k
#: train rows: 63 s) under twice what the former single default (dcnv2) takes to train
#: there on two CPU cores (36 s; docs/training.md, "Automatic model choice").
AUTO_BUDGET_S_PER_100K = 90.0
AUTO_BUDGET_MIN_S = 30.0
#: Embedding sizes for the candidates are powers of two in [EMBEDDING_MIN, model.embedding_dim].
EMBEDDING_MIN = 4
#: The linear candidate's learning rate is this times ``training.learning_rate`` (used only
#: where it trains in mini-batches: ``ml.training.linear``).
LINEAR_LR_FACTOR = 10.0

#: ``(candidate config, its run directory, deadline) -> its metrics`` (metrics.json's
#: keys: ``val_auc``, ``val_logloss``, ``epochs_run``, ``n_params``, ``rows``...).
TrainCandidate = Callable[[Config, Path, float | None], dict[str, Any]]
Log = Callable[[str], None]


@dataclass
class Candidate:
    """One row of the candidates table."""

    family: str
    settings: dict[str, Any] = field(default_factory=dict)
    val_auc: float | None = None
    val_logloss: float | None = None
    epochs: int | None = None
    best_epoch: int | None = None
    seconds: float | None = None
    run_dir: str | None = None
    #: Why it did not train (None: it trained).
    skipped: str | None = None
    #: Why it stopped before early stopping ended it ("" when it did not).
    cut_short: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class AutoChoice:
    """What ``model.name: auto`` did: the family kept and the table of candidates."""

    chosen: str
    metric: str
    budget_s: float
    seconds: float
    candidates: list[Candidate]
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "chosen": self.chosen,
            "metric": self.metric,
            "budget_s": round(self.budget_s, 1),
            "seconds": round(self.seconds, 2),
            "reason": self.reason,
            "candidates": [c.to_dict() for c in self.candidates],
        }


def auto_budget(configured: float | None, train_rows: int) -> float:
    """Seconds for all the candidates: ``model.auto_budget``, or for null
    :data:`AUTO_BUDGET_S_PER_100K` per 100,000 train rows, at least
    :data:`AUTO_BUDGET_MIN_S` (a family's training time grows with the rows)."""
    if configured is not None:
        return float(configured)
    return max(AUTO_BUDGET_MIN_S, AUTO_BUDGET_S_PER_100K * train_rows / 100_000)


def selection_metric(val_rows: int) -> str:
    """The validation metric the candidates are compared by: ``val_auc`` from 10,000
    validation rows (steady there), ``val_logloss`` below (the same rule as
    ``training.monitor: auto``, :func:`ml.training.sizing.auto_monitor`). Every candidate
    is calibrated on validation, so the log loss compares rankings and calibration alike."""
    return "val_auc" if val_rows >= SMALL_VAL_ROWS else "val_logloss"


def auto_embedding_dim(configured: int, train_rows: int, ids: int) -> int:
    """The embedding size of the factorised candidates: the largest power of two in
    [EMBEDDING_MIN, ``configured``] whose embedding tables hold no more parameters than
    the train split has rows (``ids * dim <= train_rows``, ``ids`` counting every field's
    vocabulary, out-of-vocabulary buckets and numeric bins).

    More free parameters than examples is the textbook condition for a model that can
    memorise its training set; with long-tailed ids most rows of a large table are seen
    a handful of times and learn mostly noise. The rule shrinks the tables on small data
    and leaves ``model.embedding_dim`` as it is once the data is large enough for it.
    """
    if ids <= 0:
        return configured
    dim = EMBEDDING_MIN
    while dim * 2 <= configured and ids * dim * 2 <= train_rows:
        dim *= 2
    return min(dim, configured)


def candidate_config(
    cfg: Config, family: str, train_rows: int, ids: int
) -> tuple[Config, dict[str, Any]]:
    """``cfg`` for one candidate, and the settings that differ from it (for the table).

    - every family keeps the config's training settings, including the size-aware batch
      size, weight decay, patience and stopping rule (``null``/``auto``);
    - ``logreg``: fitted exactly, its L2 chosen on validation for ``training.weight_decay:
      null`` (:mod:`ml.training.linear`), in one process whatever
      ``training.distributed.nproc`` (the exact fit needs every row in one process, and
      takes seconds); where it trains in mini-batches instead (streaming), the learning
      rate times :data:`LINEAR_LR_FACTOR` (a convex model has no co-adapting layers to
      destabilise, and the shipped rate, chosen for deep models, leaves it still
      improving at the epoch cap);
    - the factorised families: :func:`auto_embedding_dim`.
    """
    settings: dict[str, Any] = {}
    model: dict[str, Any] = {"name": family, "auto_budget": None}
    training: dict[str, Any] = {}
    if family == "logreg":
        training["learning_rate"] = cfg.training.learning_rate * LINEAR_LR_FACTOR
        training["distributed"] = {"nproc": 1}
    else:
        dim = auto_embedding_dim(cfg.model.embedding_dim, train_rows, ids)
        model["embedding_dim"] = dim
        settings["embedding_dim"] = dim
    return cfg.replace(model=model, training=training), settings


def choose(
    cfg: Config,
    out: Path,
    train_candidate: TrainCandidate,
    *,
    train_rows: int,
    val_rows: int,
    log: Log,
    clock: Callable[[], float] = time.perf_counter,
) -> tuple[AutoChoice, Path]:
    """Train the candidates into ``out/candidates/<family>`` and pick the best.

    Args:
        cfg: the ``model.name: auto`` config.
        out: the auto run's directory.
        train_candidate: trains one candidate config into a directory by a deadline
            (a ``clock()`` value) and returns its metrics.
        train_rows, val_rows: the splits' sizes (for the budget and the metric).
        log: receives the decisions.
        clock: seconds, monotonic (tests pass a fake one).

    Returns:
        The choice and the chosen candidate's run directory.

    Raises:
        TrainingError: no candidate produced a finite validation metric.
    """
    budget = auto_budget(cfg.model.auto_budget, train_rows)
    metric = selection_metric(val_rows)
    start = clock()
    deadline = start + budget
    log(_announcement(cfg, budget, metric, train_rows))
    table: list[Candidate] = []
    ids = 0
    for family in CANDIDATES:
        row = Candidate(family)
        table.append(row)
        if family != "logreg" and (used := clock() - start) >= budget:
            row.skipped = f"budget spent ({used:.0f} s of {budget:.0f} s)"
            log(f"   ⏭️  {family}: skipped, {row.skipped}")
            continue
        began = clock()
        run = rd.candidate_dir(out, family)
        ccfg, row.settings = candidate_config(cfg, family, train_rows, ids)
        metrics = train_candidate(ccfg, run, None if family == "logreg" else deadline)
        if family == "logreg":
            row.settings.update(_linear_settings(ccfg, metrics))
        _record(row, metrics, clock() - began, run, log)
        if family == "logreg":
            # one weight per id (+ one per numeric column + the bias): the rows of every
            # embedding table, for auto_embedding_dim
            ids = int(metrics.get("n_params") or 0) - len(cfg.features.numeric) - 1
    best = _best(table, metric, val_rows)
    if best is None:
        raise TrainingError(
            f"model.name auto: no candidate produced a finite {metric}; check the data, or "
            "set model.name to one family to see its training log"
        )
    runner_up = [c for c in table if c is not best and getattr(c, metric) is not None]
    reason = f"best {metric} {_fmt(getattr(best, metric))}" + (
        " (vs " + ", ".join(f"{c.family} {_fmt(getattr(c, metric))}" for c in runner_up) + ")"
        if runner_up
        else ""
    )
    seconds = clock() - start
    log(f"🧭 Chose {best.family}: {reason}; {seconds:.0f} s of {budget:.0f} s")
    choice = AutoChoice(best.family, metric, budget, seconds, table, reason)
    assert best.run_dir is not None
    return choice, Path(best.run_dir)


def _announcement(cfg: Config, budget: float, metric: str, train_rows: int) -> str:
    return (
        f"🧭 Choosing the model family (model.name auto): {', '.join(CANDIDATES)}, cheapest "
        f"first, best {metric} kept; budget {budget:.0f} s"
        + (
            " (model.auto_budget)"
            if cfg.model.auto_budget is not None
            else f" ({AUTO_BUDGET_S_PER_100K:.0f} s per 100k train rows: {train_rows:,})"
        )
    )


def _linear_settings(ccfg: Config, metrics: dict[str, Any]) -> dict[str, Any]:
    """How the logreg was fitted, for the table: exactly (the kept ``C`` and every ``C``
    tried), or in mini-batches (its learning rate)."""
    fit = metrics.get("linear_fit")
    if fit is None:
        return {"fit": "mini-batch", "learning_rate": ccfg.training.learning_rate}
    if "path" not in fit:
        return {"fit": "exact"}
    tried = ", ".join(f"{c}: {_fmt(_finite(v))}" for c, v in fit["path"].items())
    return {"fit": "exact", "C": fit["C"], "C_tried": tried}


def _record(
    row: Candidate, metrics: dict[str, Any], seconds: float, run_dir: Path, log: Log
) -> None:
    """Fill ``row`` from a trained candidate's metrics, and log it."""
    row.seconds = round(seconds, 2)
    row.run_dir = str(run_dir)
    row.val_auc = _finite(metrics.get("val_auc"))
    row.val_logloss = _finite(metrics.get("val_logloss"))
    row.epochs = metrics.get("epochs_run")
    row.best_epoch = metrics.get("best_epoch")
    row.cut_short = str(metrics.get("cut_short") or "")
    log(
        f"   {row.family}: val AUC {_fmt(row.val_auc)}, val log loss {_fmt(row.val_logloss)}, "
        f"{row.epochs} epochs, {row.seconds:.1f} s"
        + (f" ({row.cut_short})" if row.cut_short else "")
        + (f"; {_settings(row.settings)}" if row.settings else "")
    )


def auc_margin(val_rows: int) -> float:
    """How far below the best validation AUC a candidate may be and still be compared by
    log loss on a small validation split: ``1/sqrt(val_rows)``, about two standard errors
    of an AUC there (0.04 at 600 rows, 0.01 at 10,000)."""
    return 1.0 / math.sqrt(max(val_rows, 1))


def _best(table: list[Candidate], metric: str, val_rows: int) -> Candidate | None:
    """The trained candidate with the best ``metric``; the earlier (cheaper) on a tie.

    By log loss (a small validation split) only among the candidates whose val AUC is
    within :func:`auc_margin` of the best: a model that predicts little more than the
    base rate can have the lowest log loss on a few hundred rows while it ranks nothing,
    and calibration mends a good ranking's log loss but never a bad ranking."""
    scored = [c for c in table if getattr(c, metric) is not None]
    aucs = [c.val_auc for c in scored if c.val_auc is not None]
    if metric == "val_logloss" and aucs:
        floor = max(aucs) - auc_margin(val_rows)
        scored = [c for c in scored if c.val_auc is not None and c.val_auc >= floor]
    if not scored:
        return None
    sign = 1.0 if metric == "val_auc" else -1.0
    best = scored[0]
    for c in scored[1:]:
        if sign * getattr(c, metric) > sign * getattr(best, metric):
            best = c
    return best


def _finite(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _settings(settings: dict[str, Any]) -> str:
    return ", ".join(
        f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in settings.items()
    )


def write_run(
    out: Path, chosen: Path, choice: AutoChoice, run_info: dict[str, Any], wall_s: float
) -> dict[str, Any]:
    """Make ``out`` the complete run of the chosen candidate (``chosen``): its checkpoint
    and config (what serving loads: the chosen family's own), its metrics with the
    ``auto`` table added, and ``run_info`` (the auto config's digest, so a rerun of the
    same auto config and data reuses the whole choice). Returns the metrics."""
    import shutil

    for name in (rd.MODEL_BEST, rd.CONFIG_YAML):
        shutil.copy2(chosen / name, out / name)
    metrics = rd.read_metrics(chosen)
    trained = [c for c in choice.candidates if c.skipped is None]
    metrics["auto"] = choice.to_dict()
    metrics["chosen_train_time_s"] = metrics.get("train_time_s")
    metrics["train_time_s"] = round(sum(float(c.seconds or 0.0) for c in trained), 4)
    metrics["wall_time_s"] = round(wall_s, 4)
    atomic_write_json(out / rd.METRICS_JSON, metrics)
    atomic_write_json(out / rd.RUN_JSON, run_info)
    rd.mark_complete(out)
    return metrics
