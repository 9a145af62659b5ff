"""The model card's plots as PNG bytes (matplotlib's object API on Agg: no display, no
global ``pyplot`` state, safe in the API server's threads).

Curves come from scikit-learn (``roc_curve``, ``precision_recall_curve``,
``average_precision_score``) and :func:`ml.metrics.calibration_table` (which wraps
``sklearn.calibration.calibration_curve``); long curves are thinned for drawing only.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

SIZE = (5.2, 3.9)
DPI = 96
MAX_POINTS = 2000
RAW_COLOR = "#8c959f"
MODEL_COLOR = "#1f6feb"
PRODUCTION_COLOR = "#d4731a"
GRID = {"color": "#d0d7de", "linewidth": 0.6}

Array = npt.NDArray[np.float64]


def _figure(size: tuple[float, float] = SIZE, **margins: float) -> Any:
    """A figure with fixed margins (a layout engine would double the drawing time)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=DPI)
    fig.subplots_adjust(**{"left": 0.13, "right": 0.97, "bottom": 0.13, "top": 0.92, **margins})
    return fig


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def _thin(*arrays: Array) -> tuple[Array, ...]:
    """At most ``MAX_POINTS`` evenly spaced points of each curve (first and last kept)."""
    n = len(arrays[0])
    if n <= MAX_POINTS:
        return arrays
    idx = np.unique(np.linspace(0, n - 1, MAX_POINTS).astype(np.int64))
    return tuple(a[idx] for a in arrays)


def _style(ax: Any, title: str, xlabel: str, ylabel: str) -> None:
    ax.set_title(title, fontsize=11)
    ax.set_xlabel(xlabel, fontsize=9)
    ax.set_ylabel(ylabel, fontsize=9)
    ax.tick_params(labelsize=8)
    ax.grid(True, **GRID)


def roc_png(
    labels: npt.ArrayLike,
    scores: npt.ArrayLike,
    production: npt.ArrayLike | None = None,
    production_label: str = "production",
) -> bytes:
    """ROC curve with its AUC (and production's on the same rows)."""
    from sklearn.metrics import roc_auc_score, roc_curve

    fig = _figure()
    ax = fig.add_subplot()
    for name, s, color in _series(scores, production, production_label):
        fpr, tpr, _ = roc_curve(labels, s)
        fpr, tpr = _thin(fpr, tpr)
        ax.plot(fpr, tpr, color=color, lw=1.6, label=f"{name} (AUC {roc_auc_score(labels, s):.4f})")
    ax.plot([0, 1], [0, 1], color="#8c959f", lw=0.8, ls="--", label="random")
    axes = ("false positive rate", "true positive rate")
    return _unit_square_png(fig, ax, "ROC curve (test split)", axes, legend="lower right")


def pr_png(
    labels: npt.ArrayLike,
    scores: npt.ArrayLike,
    production: npt.ArrayLike | None = None,
    production_label: str = "production",
) -> bytes:
    """Precision-recall curve with average precision, and the click rate as chance."""
    from sklearn.metrics import average_precision_score, precision_recall_curve

    y = np.asarray(labels)
    fig = _figure()
    ax = fig.add_subplot()
    for name, s, color in _series(scores, production, production_label):
        precision, recall, _ = precision_recall_curve(y, s)
        recall, precision = _thin(recall, precision)
        ap = average_precision_score(y, s)
        ax.plot(recall, precision, color=color, lw=1.6, label=f"{name} (AP {ap:.4f})")
    base = float(y.mean()) if y.size else 0.0
    ax.axhline(base, color="#8c959f", lw=0.8, ls="--", label=f"click rate {base:.2%}")
    axes = ("recall", "precision")
    return _unit_square_png(fig, ax, "Precision-recall (test split)", axes, legend="upper right")


def _series(
    scores: npt.ArrayLike, production: npt.ArrayLike | None, production_label: str
) -> list[tuple[str, npt.ArrayLike, str]]:
    """(label, scores, colour) of this model and, when given, production."""
    series = [("this model", scores, MODEL_COLOR)]
    if production is not None:
        series.append((production_label, production, PRODUCTION_COLOR))
    return series


def _unit_square_png(fig: Any, ax: Any, title: str, axes: tuple[str, str], *, legend: str) -> bytes:
    """Finish a curve drawn on [0, 1] x [0, 1] (titles, grid, legend) as PNG bytes."""
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    _style(ax, title, *axes)
    ax.legend(loc=legend, fontsize=8)
    return _png(fig)


def calibration_png(
    table: Mapping[str, Any],
    production: Mapping[str, Any] | None = None,
    raw: Mapping[str, Any] | None = None,
) -> bytes:
    """Reliability diagram: observed vs predicted CTR per equal-count bin, with ECE;
    ``raw``: this model before its calibration map (the map's effect)."""
    fig = _figure()
    ax = fig.add_subplot()
    series = [("this model", table, MODEL_COLOR)]
    if raw is not None:
        series.append(("this model before calibration", raw, RAW_COLOR))
    if production is not None:
        series.append(("production", production, PRODUCTION_COLOR))
    top = 0.0
    for name, t, color in series:
        pred, obs = np.asarray(t["predicted"]), np.asarray(t["observed"])
        if pred.size:
            top = max(top, float(pred.max()), float(obs.max()))
            ax.plot(
                pred, obs, "o-", color=color, ms=4, lw=1.4, label=f"{name} (ECE {t['ece']:.4f})"
            )
    top = min(1.0, top * 1.08) if top > 0 else 1.0
    ax.plot([0, top], [0, top], color="#8c959f", lw=0.8, ls="--", label="perfectly calibrated")
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    _style(ax, "Calibration (10 equal-count bins)", "predicted CTR", "observed CTR")
    ax.legend(loc="upper left", fontsize=8)
    return _png(fig)


def training_png(history: Sequence[Mapping[str, Any]], best_epoch: int | None) -> bytes:
    """Train loss, val AUC and val logloss per epoch; the best epoch marked."""
    fig = _figure((9.6, 3.2), left=0.06, right=0.99, bottom=0.16, top=0.9, wspace=0.3)
    axes = fig.subplots(1, 3)
    epochs = [int(h.get("epoch", i + 1)) for i, h in enumerate(history)]
    panels = (
        ("train_loss", "train loss", "#6e7781"),
        ("val_auc", "val AUC", MODEL_COLOR),
        ("val_logloss", "val logloss", PRODUCTION_COLOR),
    )
    for ax, (key, title, color) in zip(axes, panels, strict=True):
        values = [float(h[key]) if h.get(key) is not None else np.nan for h in history]
        ax.plot(epochs, values, "o-", color=color, ms=3, lw=1.4)
        if best_epoch is not None and best_epoch in epochs:
            ax.axvline(best_epoch, color="#2da44e", lw=1.0, ls="--", label=f"best {best_epoch}")
            ax.legend(fontsize=8, loc="best")
        _style(ax, title, "epoch", "")
        if len(epochs) <= 12:
            ax.set_xticks(epochs)
    return _png(fig)


def scores_png(labels: npt.ArrayLike, scores: npt.ArrayLike) -> bytes:
    """Distribution of predicted CTR for clicks and non-clicks (each normalised)."""
    y = np.asarray(labels).astype(bool)
    s = np.asarray(scores, dtype=np.float64)
    fig = _figure()
    ax = fig.add_subplot()
    hi = float(np.quantile(s, 0.999)) if s.size else 1.0
    bins = np.linspace(0.0, max(hi, 1e-6), 51)
    for mask, name, color in ((~y, "no click", "#8c959f"), (y, "click", MODEL_COLOR)):
        if mask.any():
            ax.hist(
                np.clip(s[mask], 0, bins[-1]),
                bins=bins,
                density=True,
                histtype="stepfilled",
                alpha=0.45,
                color=color,
                label=f"{name} ({int(mask.sum()):,} rows, mean {s[mask].mean():.3f})",
            )
    _style(ax, "Score distribution (test split)", "predicted CTR", "density")
    ax.legend(fontsize=8, loc="upper right")
    return _png(fig)
