from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from ml.metrics import accuracy, binary_metrics, log_loss, roc_auc


def _pairwise_auc(y: np.ndarray, s: np.ndarray) -> float:
    pos = s[y == 1]
    neg = s[y == 0]
    wins = sum((p > n) + 0.5 * (p == n) for p, n in itertools.product(pos, neg))
    return wins / (len(pos) * len(neg))


def test_roc_auc_matches_pairwise_definition_with_ties() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    s = rng.integers(0, 10, 300).astype(float)  # many ties
    assert roc_auc(y, s) == pytest.approx(_pairwise_auc(y, s), abs=1e-12)


def test_roc_auc_perfect_inverse_and_constant() -> None:
    y = np.array([0, 0, 1, 1])
    assert roc_auc(y, [0.1, 0.2, 0.8, 0.9]) == 1.0
    assert roc_auc(y, [0.9, 0.8, 0.2, 0.1]) == 0.0
    assert roc_auc(y, [0.5, 0.5, 0.5, 0.5]) == 0.5


def test_roc_auc_single_class_is_nan() -> None:
    assert math.isnan(roc_auc([1, 1, 1], [0.1, 0.2, 0.3]))


def test_roc_auc_length_mismatch_raises() -> None:
    with pytest.raises(ValueError, match="3 values but y_score has 2"):
        roc_auc([0, 1, 1], [0.1, 0.2])


def test_log_loss_and_accuracy_known_values() -> None:
    y = np.array([1, 0, 1, 0])
    p = np.array([0.9, 0.2, 0.4, 0.5])
    expected = -np.mean(np.log([0.9, 0.8, 0.4, 0.5]))
    assert log_loss(y, p) == pytest.approx(expected)
    assert accuracy(y, p) == pytest.approx(0.5)  # 0.5 counts as a positive prediction
    assert log_loss([1], [1.0]) < 1e-6  # clipped, finite
    m = binary_metrics(y, p)
    assert set(m) == {"auc", "logloss", "accuracy", "rows"}
    assert m["rows"] == 4


def _old_roc_auc(y: np.ndarray, s: np.ndarray) -> float:
    """The project's hand-written rank AUC before scikit-learn (kept as the reference)."""
    order = np.argsort(s, kind="mergesort")
    sorted_s = s[order]
    starts = np.flatnonzero(np.r_[True, sorted_s[1:] != sorted_s[:-1]])
    ends = np.r_[starts[1:], s.size]
    ranks = np.empty(s.size)
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    n_pos = float(y.sum())
    n_neg = y.size - n_pos
    return float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def _old_log_loss(y: np.ndarray, p: np.ndarray) -> float:
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return float(-np.mean(y * np.log(p) + (1.0 - y) * np.log1p(-p)))


def test_scikit_learn_metrics_agree_with_the_previous_implementation() -> None:
    rng = np.random.default_rng(1)
    y = (rng.random(20_000) < 0.25).astype(float)
    p = np.clip(rng.beta(2, 5, 20_000) + 0.2 * y, 0, 1)
    p[:10] = [0.0, 1.0, 1e-9, 1 - 1e-9, 0.5, 0.5, 0.5, 0.25, 0.25, 0.75]  # edges and ties
    assert roc_auc(y, p) == pytest.approx(_old_roc_auc(y, p), abs=1e-6)
    assert log_loss(y, p) == pytest.approx(_old_log_loss(y, p), abs=1e-6)
    assert accuracy(y, p) == pytest.approx(float(np.mean((p >= 0.5) == y)), abs=1e-12)


def test_calibration_table_bins_and_ece() -> None:
    from ml.metrics import calibration_table

    rng = np.random.default_rng(2)
    p = rng.random(50_000)
    y = (rng.random(50_000) < p).astype(float)  # perfectly calibrated
    table = calibration_table(y, p, bins=10)
    assert len(table["predicted"]) == len(table["observed"]) == len(table["rows"]) == 10
    assert sum(table["rows"]) == 50_000
    assert table["ece"] < 0.02
    skewed = calibration_table(y, np.clip(p * 0.5, 0, 1), bins=10)
    assert skewed["ece"] > 0.2
    assert math.isnan(calibration_table([1, 1], [0.2, 0.3])["ece"])
