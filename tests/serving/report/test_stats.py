"""ml.serving.report.stats: Wilson, two-proportion z-test, DeLong (unpaired and paired)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from ml.serving.report import stats


def test_wilson_interval_known_values() -> None:
    e = stats.wilson(5, 10)
    assert e.value == 0.5 and e.low == pytest.approx(0.2366, abs=1e-4)
    assert e.high == pytest.approx(0.7634, abs=1e-4)
    assert stats.wilson(0, 10).low == pytest.approx(0.0, abs=1e-12)
    assert stats.wilson(0, 10).high == pytest.approx(0.2775, abs=1e-4)
    assert math.isnan(stats.wilson(0, 0).value)


def test_two_proportion_test_known_values() -> None:
    e = stats.proportion_difference(50, 1000, 70, 1000)
    assert e.value == pytest.approx(0.02)
    assert e.p_value == pytest.approx(0.0597, abs=5e-4)
    assert e.low < 0 < e.high


def _world(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-truth))).astype(int)
    good = truth + rng.normal(scale=0.5, size=n)
    bad = truth + rng.normal(scale=2.0, size=n)
    return y, good, bad


def test_delong_auc_equals_sklearn_and_its_se_matches_the_bootstrap() -> None:
    y, good, _ = _world(2000, 1)
    auc, _, _ = stats.delong_components(y, good)
    assert auc == pytest.approx(roc_auc_score(y, good), abs=1e-12)
    e = stats.auc_with_ci(y, good)
    se = (e.high - e.low) / (2 * 1.959964)
    rng = np.random.default_rng(2)
    boots = []
    for _ in range(200):
        i = rng.integers(0, len(y), len(y))
        boots.append(roc_auc_score(y[i], good[i]))
    assert se == pytest.approx(float(np.std(boots)), rel=0.2)
    ties = stats.auc_with_ci([0, 1, 0, 1], [0.5, 0.5, 0.2, 0.9])
    assert ties.value == pytest.approx(roc_auc_score([0, 1, 0, 1], [0.5, 0.5, 0.2, 0.9]))
    assert math.isnan(stats.auc_with_ci([1, 1], [0.2, 0.3]).value)


def test_auc_differences_detect_the_better_model() -> None:
    y, good, bad = _world(3000, 3)
    y2, good2, bad2 = _world(3000, 4)
    unpaired = stats.auc_difference(y, bad, y2, good2)
    assert unpaired.low > 0 and stats.verdict(unpaired) == "better"
    assert stats.verdict(stats.auc_difference(y, good, y2, bad2)) == "worse"
    same = stats.auc_difference(y, good, y2, good2)
    assert stats.verdict(same) == "undecided" and same.p_value is not None and same.p_value > 0.01
    paired = stats.paired_auc_difference(y, bad, good)
    assert paired.low > 0
    # Pairing removes the shared noise: a narrower interval than treating them apart.
    apart = stats.auc_difference(y, bad, y, good)
    assert paired.high - paired.low < apart.high - apart.low


def test_mean_difference_of_equal_samples_contains_zero_and_of_shifted_excludes_it() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=4000), rng.normal(size=4000)
    assert stats.verdict(stats.mean_difference(a, b)) == "undecided"
    assert stats.verdict(stats.mean_difference(a, b + 0.2)) == "better"
    assert math.isnan(stats.mean_difference([1.0], [2.0]).value)


def test_row_logloss_matches_the_formula_and_clips() -> None:
    losses = stats.row_logloss([1, 0, 1], [0.5, 0.5, 0.0])
    assert losses[0] == pytest.approx(math.log(2)) and losses[1] == pytest.approx(math.log(2))
    assert math.isfinite(losses[2]) and losses[2] > 10
    est = stats.mean_with_ci(losses[:2])
    assert est.value == pytest.approx(math.log(2)) and est.low == pytest.approx(est.high)
