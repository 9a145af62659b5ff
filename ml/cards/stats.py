"""Paired statistics for comparing two models on the same rows.

scikit-learn has no bootstrap of an AUC difference, and calling ``roc_auc_score``
once per resample sorts the scores every time. Here the scores are ranked once (tied
scores form one group, counted half as AUC does), and each bootstrap resample is a
vector of row counts: the weighted AUC is then two ``bincount`` passes and a cumulative
sum per model. With unit weights it equals ``sklearn.metrics.roc_auc_score``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ml.metrics import binary_metrics, calibration_table

DEFAULT_BOOTSTRAP = 1000
LEVEL = 0.95


@dataclass(frozen=True)
class _Ranked:
    """Scores of one model as rank groups, split by label."""

    pos_groups: npt.NDArray[np.intp]
    neg_groups: npt.NDArray[np.intp]
    n_groups: int

    @classmethod
    def of(cls, positive: npt.NDArray[np.bool_], scores: npt.ArrayLike) -> _Ranked:
        _, groups = np.unique(np.asarray(scores, dtype=np.float64), return_inverse=True)
        groups = groups.ravel()
        return cls(groups[positive], groups[~positive], int(groups.max(initial=-1)) + 1)

    def auc(self, w_pos: npt.NDArray[np.float64], w_neg: npt.NDArray[np.float64]) -> float:
        pos = np.bincount(self.pos_groups, weights=w_pos, minlength=self.n_groups)
        neg = np.bincount(self.neg_groups, weights=w_neg, minlength=self.n_groups)
        total = pos.sum() * neg.sum()
        if total <= 0:
            return float("nan")
        below = np.cumsum(neg) - neg
        # einsum, not np.dot: BLAS threads cost milliseconds per call on a busy machine.
        return float(np.einsum("i,i->", pos, below + 0.5 * neg) / total)


def weighted_auc(
    labels: npt.ArrayLike, scores: npt.ArrayLike, weights: npt.ArrayLike | None = None
) -> float:
    """ROC AUC with per-row weights (row counts of a resample); NaN for one class."""
    y = np.asarray(labels).astype(bool).ravel()
    w = np.ones(y.size) if weights is None else np.asarray(weights, dtype=np.float64).ravel()
    return _Ranked.of(y, scores).auc(w[y], w[~y])


def bootstrap_auc_difference(
    labels: npt.ArrayLike,
    scores_a: npt.ArrayLike,
    scores_b: npt.ArrayLike,
    *,
    n_boot: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
    level: float = LEVEL,
) -> dict[str, Any]:
    """AUC(b) - AUC(a) on the same rows, with a paired percentile bootstrap interval.

    Each resample draws the rows with replacement (the same rows for both models).

    Returns:
        ``{"diff", "low", "high", "level", "n_boot", "p_b_better"}``: the observed
        difference, the interval bounds, and the share of resamples where b wins.
    """
    y = np.asarray(labels).astype(bool).ravel()
    a, b = _Ranked.of(y, scores_a), _Ranked.of(y, scores_b)
    ones = np.ones(y.size)
    diff = b.auc(ones[y], ones[~y]) - a.auc(ones[y], ones[~y])
    rng = np.random.default_rng(seed)
    n = y.size
    diffs = np.empty(n_boot)
    for i in range(n_boot):
        w = np.bincount(rng.integers(0, n, n), minlength=n).astype(np.float64)
        wp, wn = w[y], w[~y]
        diffs[i] = b.auc(wp, wn) - a.auc(wp, wn)
    finite = diffs[np.isfinite(diffs)]
    if finite.size == 0:
        low = high = p_better = float("nan")
    else:
        tail = (1.0 - level) / 2.0
        low, high = (float(v) for v in np.quantile(finite, [tail, 1.0 - tail]))
        p_better = float(np.mean(finite > 0))
    return {
        "diff": float(diff),
        "low": low,
        "high": high,
        "level": level,
        "n_boot": int(n_boot),
        "p_b_better": p_better,
    }


def delong_auc_difference(
    labels: npt.ArrayLike, scores_a: npt.ArrayLike, scores_b: npt.ArrayLike, level: float = LEVEL
) -> dict[str, Any]:
    """AUC(b) - AUC(a) on the same rows with DeLong's normal interval (paired, exact
    midranks; Sun & Xu's O(n log n) algorithm). Fast enough for every model card.

    Returns:
        ``{"diff", "low", "high", "level", "method"}``.
    """
    from scipy.stats import norm, rankdata

    y = np.asarray(labels).astype(bool).ravel()
    m, n = int(y.sum()), int((~y).sum())
    if m < 2 or n < 2:
        nan = float("nan")
        return {"diff": nan, "low": nan, "high": nan, "level": level, "method": "delong"}
    v10, v01, aucs = [], [], []
    for s in (np.asarray(scores_a, dtype=np.float64), np.asarray(scores_b, dtype=np.float64)):
        pos, neg = s[y], s[~y]
        r_all = rankdata(np.concatenate([pos, neg]))
        r_pos, r_neg = rankdata(pos), rankdata(neg)
        placement_pos = (r_all[:m] - r_pos) / n  # share of negatives below each positive
        placement_neg = 1.0 - (r_all[m:] - r_neg) / m  # share of positives above each negative
        aucs.append(float(placement_pos.mean()))
        v10.append(placement_pos)
        v01.append(placement_neg)
    s10, s01 = np.cov(np.vstack(v10)), np.cov(np.vstack(v01))
    var = (s10[0, 0] + s10[1, 1] - 2 * s10[0, 1]) / m + (s01[0, 0] + s01[1, 1] - 2 * s01[0, 1]) / n
    diff = aucs[1] - aucs[0]
    half = float(norm.ppf(0.5 + level / 2.0) * np.sqrt(max(var, 0.0)))
    return {
        "diff": diff,
        "low": diff - half,
        "high": diff + half,
        "level": level,
        "method": "delong",
    }


def row_logloss(labels: npt.ArrayLike, scores: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Each row's binary cross-entropy (clipped as ``ml.metrics.log_loss``; their mean is it)."""
    from ml.metrics import EPS

    y = np.asarray(labels, dtype=np.float64).ravel()
    p = np.clip(np.asarray(scores, dtype=np.float64).ravel(), EPS, 1.0 - EPS)
    out: npt.NDArray[np.float64] = -(y * np.log(p) + (1.0 - y) * np.log1p(-p))
    return out


def paired_mean_difference(
    values_a: npt.ArrayLike, values_b: npt.ArrayLike, level: float = LEVEL
) -> dict[str, Any]:
    """mean(b) - mean(a) of per-row values on the same rows (e.g. :func:`row_logloss`),
    with the normal interval of a paired mean: a mean of many per-row differences is
    close to normal (no resampling needed, unlike the AUC, which is not a row mean).

    Returns:
        ``{"diff", "low", "high", "level", "method": "paired normal"}``.
    """
    from scipy.stats import norm

    d = np.asarray(values_b, dtype=np.float64).ravel() - np.asarray(values_a, dtype=np.float64)
    nan = float("nan")
    if d.size < 2:
        return {"diff": nan, "low": nan, "high": nan, "level": level, "method": "paired normal"}
    diff = float(d.mean())
    half = float(norm.ppf(0.5 + level / 2.0) * d.std(ddof=1) / np.sqrt(d.size))
    return {
        "diff": diff,
        "low": diff - half,
        "high": diff + half,
        "level": level,
        "method": "paired normal",
    }


def model_metrics(labels: npt.ArrayLike, scores: npt.ArrayLike) -> dict[str, Any]:
    """``binary_metrics`` plus the expected calibration error and the mean prediction."""
    out = binary_metrics(labels, scores)
    out["ece"] = calibration_table(labels, scores)["ece"]
    s = np.asarray(scores, dtype=np.float64)
    out["mean_score"] = float(s.mean()) if s.size else float("nan")
    return out
