"""ml.evaluation.gates: thresholds and champion/challenger (pure functions)."""

from __future__ import annotations

import math

import pytest

from ml.errors import GateConfigError
from ml.evaluation.gates import Champion, check_champion, check_threshold, evaluate_gates

GOOD = {"test_auc": 0.78, "test_accuracy": 0.81}


def test_check_threshold_passes_at_equality() -> None:
    result = check_threshold({"test_auc": 0.65}, "test_auc", 0.65)
    assert result.passed
    assert result.name == "min_auc"


def test_check_threshold_below_names_metric_value_and_threshold() -> None:
    result = check_threshold({"test_auc": 0.6123}, "test_auc", 0.99)
    assert not result.passed
    assert result.message == "test_auc 0.6123 is below the threshold min_auc=0.9900"
    assert (result.value, result.threshold) == (0.6123, 0.99)


@pytest.mark.parametrize("value", [None, "0.8", math.nan, True])
def test_check_threshold_missing_or_invalid_metric_fails(value: object) -> None:
    result = check_threshold({"test_accuracy": value}, "test_accuracy", 0.5)
    assert not result.passed
    assert "test_accuracy is missing" in result.message
    assert "min_accuracy=0.5000" in result.message


@pytest.mark.parametrize("bad", [-0.1, 1.5, math.nan, "0.7", None])
def test_check_threshold_rejects_out_of_range_threshold(bad: object) -> None:
    with pytest.raises(GateConfigError, match="min_auc must be"):
        check_threshold(GOOD, "test_auc", bad)  # type: ignore[arg-type]


def test_check_champion_without_production_passes_and_says_so() -> None:
    result = check_champion(0.70, None, 0.005)
    assert result.passed
    assert "no production model" in result.message


def test_check_champion_within_allowed_drop_passes() -> None:
    result = check_champion(0.7760, Champion("v1", 0.7800), 0.005)
    assert result.passed
    assert "0.0040 below production v1" in result.message


def test_check_champion_better_model_passes() -> None:
    result = check_champion(0.80, Champion("v3", 0.78), 0.005)
    assert result.passed
    assert "above production v3" in result.message


def test_check_champion_regression_fails_with_numbers() -> None:
    result = check_champion(0.7700, Champion("v1", 0.7833), 0.005)
    assert not result.passed
    assert result.message == (
        "test_auc 0.7700 is 0.0133 below production v1 (0.7833); "
        "the largest drop allowed is max_auc_drop=0.0050"
    )
    assert result.threshold == pytest.approx(0.7783)


def test_check_champion_rejects_bad_max_auc_drop() -> None:
    with pytest.raises(GateConfigError, match="max_auc_drop must be between 0 and 1"):
        check_champion(0.7, None, 2.0)


def test_check_champion_missing_challenger_auc_fails() -> None:
    result = check_champion(None, Champion("v2", 0.75), 0.005)
    assert not result.passed
    assert "no test AUC" in result.message


def test_evaluate_gates_all_pass() -> None:
    report = evaluate_gates(GOOD, min_auc=0.65, min_accuracy=0.6)
    assert report.passed
    assert [r.name for r in report.results] == ["min_auc", "min_accuracy", "champion"]
    assert report.summary().startswith("all quality gates passed")
    assert report.to_dict()["passed"] is True


def test_evaluate_gates_lists_every_failure() -> None:
    report = evaluate_gates(
        {"test_auc": 0.60, "test_accuracy": 0.50},
        min_auc=0.65,
        min_accuracy=0.60,
        champion=Champion("v1", 0.70),
    )
    assert not report.passed
    assert [r.name for r in report.failures] == ["min_auc", "min_accuracy", "champion"]
    assert "test_auc 0.6000 is below the threshold min_auc=0.6500" in report.summary()
    assert "test_accuracy 0.5000 is below the threshold min_accuracy=0.6000" in report.summary()


def test_evaluate_gates_uses_rescored_challenger_auc_for_champion() -> None:
    # The run's own metric passes min_auc; the same-split rescoring loses to production.
    report = evaluate_gates(
        GOOD,
        min_auc=0.65,
        min_accuracy=0.6,
        champion=Champion("v1", 0.80),
        challenger_auc=0.70,
    )
    assert [r.name for r in report.failures] == ["champion"]
