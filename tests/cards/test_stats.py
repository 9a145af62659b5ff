"""Paired AUC statistics against scikit-learn and against each other."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from ml.cards.stats import bootstrap_auc_difference, delong_auc_difference, weighted_auc


def _data(n: int = 4000, seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.2
    a = np.round(rng.random(n) + 0.4 * y, 2)  # rounded: many tied scores
    b = a + rng.normal(0, 0.15, n) + 0.1 * y
    return y, a, b


def test_weighted_auc_equals_sklearn_with_ties_and_weights() -> None:
    y, a, _ = _data()
    assert weighted_auc(y, a) == pytest.approx(roc_auc_score(y, a), abs=1e-12)
    w = np.random.default_rng(2).integers(0, 4, y.size)
    assert weighted_auc(y, a, w) == pytest.approx(roc_auc_score(y, a, sample_weight=w), abs=1e-12)


def test_weighted_auc_of_one_class_is_nan() -> None:
    assert np.isnan(weighted_auc(np.ones(5), np.arange(5.0)))


def test_bootstrap_interval_holds_the_difference_and_agrees_with_delong() -> None:
    y, a, b = _data()
    boot = bootstrap_auc_difference(y, a, b, n_boot=400, seed=0)
    exact = roc_auc_score(y, b) - roc_auc_score(y, a)
    assert boot["diff"] == pytest.approx(exact, abs=1e-12)
    assert boot["low"] < boot["diff"] < boot["high"]
    assert boot["p_b_better"] == 1.0 and boot["low"] > 0
    delong = delong_auc_difference(y, a, b)
    assert delong["diff"] == pytest.approx(exact, abs=1e-12)
    width_boot, width_delong = boot["high"] - boot["low"], delong["high"] - delong["low"]
    assert width_boot == pytest.approx(width_delong, rel=0.25)


def test_bootstrap_is_reproducible_and_symmetric() -> None:
    y, a, b = _data(n=1500)
    ab = bootstrap_auc_difference(y, a, b, n_boot=100, seed=5)
    assert ab == bootstrap_auc_difference(y, a, b, n_boot=100, seed=5)
    ba = bootstrap_auc_difference(y, b, a, n_boot=100, seed=5)
    assert ba["diff"] == pytest.approx(-ab["diff"])
    assert ba["low"] == pytest.approx(-ab["high"]) and ba["high"] == pytest.approx(-ab["low"])


def test_same_model_has_no_difference() -> None:
    y, a, _ = _data(n=1000)
    d = delong_auc_difference(y, a, a)
    assert d["diff"] == 0.0 and d["low"] == 0.0 and d["high"] == 0.0


def test_row_logloss_mean_equals_log_loss() -> None:
    from ml.cards.stats import row_logloss
    from ml.metrics import log_loss

    y, a, _ = _data()
    p = np.clip(a / a.max(), 0.0, 1.0)  # includes 0 and 1: clipped like log_loss
    assert row_logloss(y, p).mean() == pytest.approx(log_loss(y, p), rel=1e-12)


def test_paired_mean_difference_of_a_clearly_worse_model_excludes_zero() -> None:
    from ml.cards.stats import paired_mean_difference, row_logloss

    y, a, _ = _data()
    good = np.clip(0.1 + 0.5 * y + 0.0 * a, 0.0, 1.0)
    worse = np.full(y.size, 0.5)
    iv = paired_mean_difference(row_logloss(y, good), row_logloss(y, worse))
    assert iv["method"] == "paired normal" and iv["level"] == 0.95
    assert 0 < iv["low"] < iv["diff"] < iv["high"]
    assert iv["diff"] == pytest.approx(row_logloss(y, worse).mean() - row_logloss(y, good).mean())
    same = paired_mean_difference(row_logloss(y, good), row_logloss(y, good))
    assert same["diff"] == same["low"] == same["high"] == 0.0
    assert np.isnan(paired_mean_difference([0.1], [0.2])["diff"])
