"""Binary classification metrics, computed by scikit-learn.

One place turns labels and predicted probabilities into the numbers every area reports
(training, evaluation, gates, the generator's oracle AUC, model cards). What
scikit-learn does not offer (the calibration table with its expected calibration
error, a metric dict with NaN for one-class data) is here; the rest is a call.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn import metrics as skm

#: Probabilities are clipped to [EPS, 1 - EPS] before the log loss.
EPS = 1e-7


def _labels_scores(
    y_true: npt.ArrayLike, y_score: npt.ArrayLike
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    y = np.asarray(y_true, dtype=np.float64).ravel()
    s = np.asarray(y_score, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"y_true has {y.size} values but y_score has {s.size}")
    return y, s


def roc_auc(y_true: npt.ArrayLike, y_score: npt.ArrayLike) -> float:
    """ROC AUC (``sklearn.metrics.roc_auc_score``); NaN when only one class is present."""
    y, s = _labels_scores(y_true, y_score)
    if y.size == 0 or y.min() == y.max():
        return float("nan")
    return float(skm.roc_auc_score(y, s))


def log_loss(y_true: npt.ArrayLike, y_prob: npt.ArrayLike) -> float:
    """Mean binary cross-entropy of probabilities clipped to ``[EPS, 1 - EPS]``."""
    y, p = _labels_scores(y_true, y_prob)
    if y.size == 0:
        return float("nan")
    return float(skm.log_loss(y, np.clip(p, EPS, 1.0 - EPS), labels=[0.0, 1.0]))


def accuracy(y_true: npt.ArrayLike, y_prob: npt.ArrayLike, threshold: float = 0.5) -> float:
    """Share of rows where ``y_prob >= threshold`` matches the label."""
    y, p = _labels_scores(y_true, y_prob)
    if y.size == 0:
        return float("nan")
    return float(skm.accuracy_score(y, (p >= threshold).astype(np.float64)))


def binary_metrics(y_true: npt.ArrayLike, y_prob: npt.ArrayLike) -> dict[str, Any]:
    """``{"auc", "logloss", "accuracy", "rows"}`` for labels and predicted probabilities."""
    y = np.asarray(y_true)
    return {
        "auc": roc_auc(y, y_prob),
        "logloss": log_loss(y, y_prob),
        "accuracy": accuracy(y, y_prob),
        "rows": int(y.size),
    }


def calibration_table(
    y_true: npt.ArrayLike, y_prob: npt.ArrayLike, bins: int = 10
) -> dict[str, Any]:
    """Predicted vs observed CTR per quantile bin, and the expected calibration error.

    Bins hold equal numbers of rows (``sklearn.calibration.calibration_curve`` with the
    quantile strategy); ECE is the row-weighted mean |observed - predicted|.

    Returns:
        ``{"predicted": [...], "observed": [...], "rows": [...], "ece": float}``.
    """
    from sklearn.calibration import calibration_curve

    y, p = _labels_scores(y_true, y_prob)
    if y.size == 0 or y.min() == y.max():
        return {"predicted": [], "observed": [], "rows": [], "ece": float("nan")}
    observed, predicted = calibration_curve(y, p, n_bins=bins, strategy="quantile")
    # The rows per bin, binned exactly as calibration_curve's quantile strategy does.
    edges = np.percentile(p, np.linspace(0.0, 1.0, bins + 1) * 100)
    totals = np.bincount(np.searchsorted(edges[1:-1], p), minlength=len(edges))
    counts = totals[totals != 0]
    ece = float(np.sum(counts * np.abs(observed - predicted)) / max(counts.sum(), 1))
    return {
        "predicted": predicted.tolist(),
        "observed": observed.tolist(),
        "rows": counts.astype(int).tolist(),
        "ece": ece,
    }
