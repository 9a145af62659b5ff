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
