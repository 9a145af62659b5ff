from __future__ import annotations

import numpy as np
import pytest

from ml.metrics import log_loss, roc_auc
from ml.training.calibration import (
    METHODS,
    apply_calibration,
    choose_calibration,
    cross_validated_loss,
    fit_method,
)


def _overconfident(
    n: int = 4000, scale: float = 3.0, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from sigmoid(z), scores ``scale * z``: a model 3x too confident."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 1.5, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(np.float64)
    return scale * z, y


def test_temperature_recovers_the_overconfidence_factor() -> None:
    logits, y = _overconfident(20_000)
    fitted = fit_method("temperature", logits, y)
    assert fitted["method"] == "temperature" and fitted["t"] == pytest.approx(3.0, rel=0.1)


def test_platt_fits_a_shift_and_scale() -> None:
    logits, y = _overconfident(20_000)
    fitted = fit_method("platt", logits - 2.0, y)  # also shifted by -2 / 3 in truth units
    assert fitted["a"] == pytest.approx(1 / 3, rel=0.1)
    assert fitted["b"] == pytest.approx(2 / 3, abs=0.1)


@pytest.mark.parametrize("method", METHODS)
def test_every_map_keeps_the_order_so_auc_is_unchanged(method: str) -> None:
    logits, y = _overconfident()
    probs = apply_calibration(fit_method(method, logits, y), logits)
    assert roc_auc(y, probs) == pytest.approx(roc_auc(y, logits), abs=1e-12)
    assert (probs > 0).all() and (probs < 1).all()
    order = np.argsort(logits)
    assert (np.diff(probs[order]) >= 0).all()


def test_choose_calibration_lowers_an_overconfident_models_log_loss() -> None:
    logits, y = _overconfident()
    chosen = choose_calibration(logits, y)
    assert chosen["method"] != "none"
    assert chosen["cv_logloss"][chosen["method"]] < chosen["cv_logloss"]["none"]
    assert log_loss(y, apply_calibration(chosen, logits)) < chosen["val_logloss_raw"] - 0.05


def test_choose_calibration_keeps_a_calibrated_model_nearly_as_it_is() -> None:
    logits, y = _overconfident(scale=1.0)
    chosen = choose_calibration(logits, y)
    raw = log_loss(y, apply_calibration(None, logits))
    assert log_loss(y, apply_calibration(chosen, logits)) <= raw + 1e-4


def test_cross_validation_does_not_reward_isotonic_for_memorising() -> None:
    rng = np.random.default_rng(1)
    logits = rng.normal(size=300)
    y = (rng.random(300) < 0.5).astype(np.float64)  # labels unrelated to the scores
    in_sample = log_loss(y, apply_calibration(fit_method("isotonic", logits, y), logits))
    assert cross_validated_loss("isotonic", logits, y) > in_sample


def test_choose_calibration_with_one_class_or_few_rows_is_none() -> None:
    assert choose_calibration(np.zeros(100), np.ones(100))["method"] == "none"
    assert choose_calibration(np.zeros(4), np.array([0, 1, 0, 1.0]))["method"] == "none"


def test_apply_calibration_none_and_missing_are_the_sigmoid() -> None:
    z = np.array([-2.0, 0.0, 3.0])
    expected = 1 / (1 + np.exp(-z))
    assert np.allclose(apply_calibration(None, z), expected)
    assert np.allclose(apply_calibration({"method": "none"}, z), expected)


def test_choose_calibration_needs_a_significant_gain_to_leave_the_sigmoid() -> None:
    logits, y = _overconfident(n=1500, scale=1.0, seed=3)  # calibrated: any gain is noise
    chosen = choose_calibration(logits, y)
    assert chosen["method"] == "none"
    assert min(chosen["cv_logloss"].values()) <= chosen["cv_logloss"]["none"]
