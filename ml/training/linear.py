"""The logistic regression (``model.name: logreg``, and ``auto``'s logreg candidate) fitted
to the optimum of its convex objective, its L2 penalty chosen on validation.

The objective is scikit-learn's ``LogisticRegression(C)``, per train row: the mean log
loss plus ``|w|^2 / (2 C n)`` on every weight but the bias (``n`` train rows), which is
also what Adam's coupled weight decay ``1 / (C n)`` aims at (:func:`linear_weight_decay`).
Mini-batch Adam with early stopping does not reach that optimum: it stops where the
validation metric peaked, a point between the start and the optimum, and takes tens of
epochs to get there (the default world at 70k train rows: 59 epochs for its best ``C``,
24 s for the whole path). Here the model is
fitted exactly (:func:`fit_exact`): the train split as a sparse one-hot matrix of the
:class:`~ml.models.logreg.LogReg`'s own columns (one per id of every field, the
out-of-vocabulary id and the numeric bins included, then the scaled numerics), scikit-learn's
L-BFGS to a tight tolerance, and the coefficients loaded into the module, which then
checkpoints, calibrates, serves and scores like any model. On the four synthetic worlds
at 100k rows that is 0.2-0.6 s per ``C``, and +0.0001 to +0.0043 test AUC over the Adam
fits' path (docs/training.md, "The logistic regression, fitted exactly").

With ``training.weight_decay: null`` the penalty is chosen on validation
(:func:`l2_path`, the training monitor), every ``C`` of the path one record of the run's
history; a configured weight decay is one exact fit at that penalty.

The exact fit needs the whole train split in one process: while streaming
(``data.streaming``), under torchrun, when its one-hot matrix would not fit in memory, or
when resuming a run that trained in mini-batches, the logreg trains in mini-batches like
every family (:func:`use_exact_fit` logs why), with the penalty of the path's first ``C``
when ``training.weight_decay`` is null (:func:`start_weight_decay`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from ml.config import Config
from ml.errors import TrainingError
from ml.models.logreg import LogReg
from ml.training.data_mode import HEADROOM, available_memory
from ml.training.tensors import EncodedSplit
from ml.training.trainer import LogFn, Split, Trainer

#: ``C = 10 ** (q / 4)`` (quarter decades). The path starts at ``C = 10 ** (LINEAR_C_START
#: / 4)`` and its neighbours half a decade away, steps outward by half a decade while the
#: end keeps winning, within [LINEAR_C_MIN, LINEAR_C_MAX], then tries the quarter decades
#: either side of the best (:func:`l2_path`).
LINEAR_C_START = -4  # C = 0.1
LINEAR_C_MIN = -12  # C = 0.001
LINEAR_C_MAX = 4  # C = 10
_COARSE = 2  # half a decade, in quarter decades
#: scikit-learn's L-BFGS stops when the largest gradient entry of its (mean) objective is
#: below this (its default is 1e-4).
EXACT_TOL = 1e-6
EXACT_MAX_ITER = 1000
#: Bytes per non-zero of the one-hot matrix (float64 value, int32 column), and how many
#: copies of it a fit may hold at once (the matrix, scikit-learn's working arrays).
_BYTES_PER_ENTRY = 12
_COPIES = 2


def linear_weight_decay(c: float, train_rows: int) -> float:
    """The per-row L2 penalty (Adam's coupled weight decay) of scikit-learn's
    ``LogisticRegression(C=c)``: the gradient of ``mean loss + wd |w|^2 / 2`` is zero
    where that of ``c * sum of losses + |w|^2 / 2`` is, for ``wd = 1 / (c * rows)``."""
    return 1.0 / (c * max(train_rows, 1))


def start_weight_decay(train_rows: int) -> float:
    """The mini-batch logreg's weight decay for ``training.weight_decay: null``: the
    path's first ``C`` (0.1), the path itself needing the exact fit."""
    return linear_weight_decay(10 ** (LINEAR_C_START / 4), train_rows)


def l2_path(
    fit: Callable[[float], float | None], *, maximize: bool
) -> tuple[float, dict[float, float | None]]:
    """Choose ``C`` on validation: ``fit(C)`` fits at ``C`` and returns its validation
    metric (None: not finite or not fitted). ``C = 10 ** (q / 4)`` from ``q =
    LINEAR_C_START`` and its neighbours half a decade away, then half a decade further
    out while the end of the tried range is the best, within [LINEAR_C_MIN,
    LINEAR_C_MAX], then the quarter decades either side of the best; returns the best
    ``C`` (the first tried on a tie) and every ``C``'s metric, in the order of ``C``."""
    scores: dict[int, float | None] = {}

    def key(q: int) -> tuple[bool, float]:
        v = scores[q]
        return (v is not None, (v if maximize else -v) if v is not None else 0.0)

    def tried(q: int) -> None:
        if q not in scores and LINEAR_C_MIN <= q <= LINEAR_C_MAX:
            scores[q] = fit(10 ** (q / 4))

    for q in (LINEAR_C_START, LINEAR_C_START - _COARSE, LINEAR_C_START + _COARSE):
        tried(q)
    while True:
        best = max(scores, key=key)  # the first of the best on a tie (max keeps it)
        step = _COARSE if best == max(scores) else -_COARSE if best == min(scores) else 0
        if step == 0 or best + step in scores or not LINEAR_C_MIN <= best + step <= LINEAR_C_MAX:
            break
        tried(best + step)
    best = max(scores, key=key)
    for q in (best - 1, best + 1):  # a finer grid where it matters: cheap with an exact fit
        tried(q)
    best = max(scores, key=key)
    return 10 ** (best / 4), {10 ** (q / 4): v for q, v in sorted(scores.items())}


def use_exact_fit(
    cfg: Config,
    train: Split,
    log: LogFn,
    streaming: bool,
    distributed: bool,
    state: dict[str, Any] | None,
) -> bool:
    """Whether this run's logreg is fitted exactly (module doc); logs the choice for a
    logreg, and says nothing for the other families."""
    if cfg.model.name != "logreg":
        return False
    why = ""
    if distributed:
        why = "under torchrun: each process holds a share of the rows, the exact fit all"
    elif streaming or not isinstance(train, EncodedSplit):
        why = "streaming: the exact fit needs the train split in memory"
    elif state is not None and any("C" not in r for r in state["trainer"]["early_stop"]["history"]):
        why = "as the resumed run trained"
    else:
        need = _COPIES * len(train) * (train.n_cat + train.n_num) * _BYTES_PER_ENTRY
        room = available_memory()
        if need > HEADROOM * room:
            why = f"the exact fit would need ~{need / 1e9:.1f} GB, {room / 1e9:.1f} GB available"
    if why:
        log(f"Logistic regression: mini-batch Adam ({why})")
        return False
    log(
        "Logistic regression: exact fit (L-BFGS to the optimum of the penalised log loss, "
        "scikit-learn), L2 "
        + (
            "chosen on validation"
            if cfg.training.weight_decay is None
            else f"from training.weight_decay {cfg.training.weight_decay:g}"
        )
        + "; learning rate, batch size and patience unused"
    )
    return True


@dataclass(frozen=True)
class ExactFit:
    """How one exact fit went: L-BFGS iterations, whether it met the tolerance, and the
    mean train log loss at the optimum."""

    iterations: int
    converged: bool
    train_loss: float


def design_matrix(model: LogReg, data: EncodedSplit) -> Any:
    """``data`` as the LogReg's features: a CSR matrix (rows, ids + numerics), a 1 in
    the column of each row's id in every field (the table row the module looks up:
    the id plus its field's offset), then the scaled numerics."""
    import scipy.sparse as sp

    cat, num, _ = data.unpack(data.data.cpu())
    n = len(data)
    blocks = []
    if model.weights is not None:
        offsets: torch.Tensor = model.weights.offsets  # type: ignore[assignment]
        cols = (cat.numpy().astype(np.int64) + offsets.cpu().numpy()).ravel()
        rows = np.repeat(np.arange(n), cat.shape[1])
        ids = int(model.weights.table.weight.shape[0])
        blocks.append(sp.csr_matrix((np.ones(cols.size), (rows, cols)), shape=(n, ids)))
    if model.numeric is not None:
        blocks.append(sp.csr_matrix(num.numpy().astype(np.float64)))
    if not blocks:
        return sp.csr_matrix((n, 0))
    return sp.hstack(blocks, format="csr")


def fit_exact(model: LogReg, x: Any, y: npt.NDArray[np.float64], weight_decay: float) -> ExactFit:
    """Set ``model``'s weights to the minimum of ``mean log loss + weight_decay * |w|^2 /
    2`` (``w``: every weight but the bias) on ``(x, y)`` (``x`` from
    :func:`design_matrix`): scikit-learn's ``LogisticRegression(C = 1 / (weight_decay *
    rows))`` by L-BFGS (no penalty for a weight decay of 0), its coefficients copied into
    the module.

    Raises:
        ValueError: ``y`` holds one class only (scikit-learn's message).
    """
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    c = 1.0 / (weight_decay * len(y)) if weight_decay > 0 else math.inf
    # one BLAS thread: the sparse products are single-threaded, and a second thread on
    # a busy machine slows lbfgs down (ml.evaluation.baseline)
    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter("ignore", ConvergenceWarning)  # reported as converged=False
        lr = LogisticRegression(C=c, tol=EXACT_TOL, max_iter=EXACT_MAX_ITER).fit(x, y)
    coef, bias = np.asarray(lr.coef_[0], np.float64), float(lr.intercept_[0])
    with torch.no_grad():
        rest = coef
        if model.weights is not None:
            table = model.weights.table.weight  # (ids, 1)
            table.copy_(torch.from_numpy(rest[: table.shape[0]]).view(-1, 1))
            rest = rest[table.shape[0] :]
        if model.numeric is not None:
            model.numeric.weight.copy_(torch.from_numpy(rest).view(1, -1))
        model.bias.fill_(bias)
    z = np.asarray(x @ coef) + bias
    loss = float(np.mean(np.logaddexp(0.0, z) - y * z))
    iterations = int(lr.n_iter_[0])
    return ExactFit(iterations, iterations < EXACT_MAX_ITER, loss)


def fit_path(
    trainer: Trainer, train: EncodedSplit, val: Split, weight_decay: float | None
) -> dict[str, Any]:
    """Fit ``trainer.model`` (a LogReg) exactly at ``weight_decay``, or, for None, along
    :func:`l2_path` chosen by the trainer's monitor. Each fit is one record of the
    trainer's history (``epoch`` counts the fits; ``C``, ``weight_decay``, ``iterations``
    besides an epoch's keys) and is kept in ``model_best.pt`` when its metric is the
    best, as an epoch would be; a resumed run's fits are not repeated. Returns
    ``{"method", "C", "weight_decay", "path": {C: metric}}`` for metrics.json.

    Raises:
        TrainingError: the train split holds one class only.
    """
    model = trainer.model
    assert isinstance(model, LogReg)
    n = len(train)
    x, y = design_matrix(model, train), train.y.cpu().numpy().astype(np.float64)
    if np.unique(y).size < 2:
        raise TrainingError(
            f"the train split holds only label {y[0]:g} ({n:,} rows): a logistic regression "
            "needs both clicks and non-clicks; check the data's label column"
        )
    done = {float(r["weight_decay"]): r for r in trainer.early.history if "C" in r}
    monitor = trainer.early.monitor

    def fit(decay: float) -> float | None:
        if decay in done:
            return _finite(done[decay][monitor])
        late = trainer.deadline is not None and time.perf_counter() >= trainer.deadline
        if trainer.epoch and late:  # the first fit always runs, as a first epoch does
            trainer.cut_short = f"time budget spent after {trainer.epoch} fit(s)"
            return None
        record = _fit_record(trainer, model, (x, y), decay, val)
        epoch = trainer.epoch = record["epoch"]
        trainer.checkpoint_and_early_stop(epoch, record)
        if trainer.on_epoch_end is not None:
            trainer.on_epoch_end(epoch, record)
        done[decay] = record
        return _finite(record[monitor])

    if weight_decay is None:
        _, path = l2_path(
            lambda c: fit(linear_weight_decay(c, n)), maximize=trainer.early.mode == "max"
        )
    else:
        path = {1.0 / (weight_decay * n) if weight_decay > 0 else math.inf: fit(weight_decay)}
    trainer.early.stopped = False  # the end of the path is no early stop
    best = trainer.early.best_epoch
    kept = next((r for r in trainer.early.history if r["epoch"] == best), None)
    if kept is None:
        return {"method": "exact"}
    trainer.weight_decay = float(kept["weight_decay"])
    trainer.log(
        f"Logreg: kept C {kept['C'] or math.inf:.3g}, the best {monitor} "
        f"({float(kept[monitor]):.4f}) of {sum(v is not None for v in path.values())} fit(s)"
    )
    return {
        "method": "exact",
        "C": kept["C"],
        "weight_decay": kept["weight_decay"],
        "path": {f"{c:.4g}": v for c, v in path.items()},
    }


def _fit_record(
    trainer: Trainer, model: LogReg, xy: tuple[Any, Any], decay: float, val: Split
) -> dict[str, Any]:
    """One exact fit at ``decay`` and its history record (the next epoch's), logged."""
    start = time.perf_counter()
    got = fit_exact(model, xy[0], xy[1], decay)
    fit_s = time.perf_counter() - start
    val_m = trainer.evaluate(val)
    n = len(xy[1])
    c = 1.0 / (decay * n) if decay > 0 else None  # None: no penalty (C infinite)
    record = {
        "epoch": trainer.epoch + 1,
        "C": c,
        "weight_decay": decay,
        "iterations": got.iterations,
        "train_loss": got.train_loss,
        "val_auc": val_m["auc"],
        "val_logloss": val_m["logloss"],
        "val_accuracy": val_m["accuracy"],
        "train_samples": n,
        "train_s": round(fit_s, 4),
        "epoch_s": round(time.perf_counter() - start, 4),
    }
    trainer.log(
        f"Logreg C {'inf' if c is None else f'{c:.3g}'} (weight decay {decay:.2g}): "
        f"{got.iterations} L-BFGS iterations"
        + ("" if got.converged else f" (the cap, {EXACT_MAX_ITER}: not converged)")
        + f", Train Loss: {got.train_loss:.4f}, Val AUC: {val_m['auc']:.4f}, "
        f"Val LogLoss: {val_m['logloss']:.4f}, {record['epoch_s']:.1f}s"
    )
    return record


def _finite(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None
