"""Binary classification metrics in numpy: exact rank-based AUC, log loss, accuracy.

Shared by training, evaluation and the generator's oracle AUC."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

_EPS = 1e-7


def roc_auc(y_true: npt.ArrayLike, y_score: npt.ArrayLike) -> float:
    """Exact ROC AUC from ranks (Mann-Whitney U); tied scores get their average rank.

    Args:
        y_true: 0/1 labels.
        y_score: scores or probabilities; only their order matters.

    Returns:
        The AUC in [0, 1], or NaN when only one class is present.
    """
    y = np.asarray(y_true).astype(np.float64).ravel()
    s = np.asarray(y_score, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"y_true has {y.size} values but y_score has {s.size}")
    n_pos = float(y.sum())
    n_neg = float(y.size - n_pos)
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    sorted_s = s[order]
    # Tie groups: each run of equal scores shares the mean of the ranks it spans.
    starts = np.flatnonzero(np.r_[True, sorted_s[1:] != sorted_s[:-1]])
    ends = np.r_[starts[1:], s.size]
    avg_rank = (starts + ends + 1) / 2.0  # 1-based mean rank of each group
    ranks = np.empty(s.size, dtype=np.float64)
    ranks[order] = np.repeat(avg_rank, ends - starts)
    pos_rank_sum = float(ranks[y == 1].sum())
    return (pos_rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


def log_loss(y_true: npt.ArrayLike, y_prob: npt.ArrayLike) -> float:
    """Mean binary cross-entropy of probabilities (clipped away from 0 and 1)."""
    y = np.asarray(y_true, dtype=np.float64).ravel()
    p = np.clip(np.asarray(y_prob, dtype=np.float64).ravel(), _EPS, 1.0 - _EPS)
    if y.size == 0:
        return float("nan")
    return float(-np.mean(y * np.log(p) + (1.0 - y) * np.log1p(-p)))


def accuracy(y_true: npt.ArrayLike, y_prob: npt.ArrayLike, threshold: float = 0.5) -> float:
    """Share of rows where ``y_prob >= threshold`` matches the label."""
    y = np.asarray(y_true).ravel()
    p = np.asarray(y_prob, dtype=np.float64).ravel()
    if y.size == 0:
        return float("nan")
    return float(np.mean((p >= threshold).astype(y.dtype) == y))


def binary_metrics(y_true: npt.ArrayLike, y_prob: npt.ArrayLike) -> dict[str, Any]:
    """``{"auc", "logloss", "accuracy", "rows"}`` for labels and predicted probabilities."""
    y = np.asarray(y_true)
    return {
        "auc": roc_auc(y, y_prob),
        "logloss": log_loss(y, y_prob),
        "accuracy": accuracy(y, y_prob),
        "rows": int(y.size),
    }
