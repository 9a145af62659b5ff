"""Quality gates a trained model must pass before it is registered.

Pure functions over metric dicts: no I/O, no Airflow, no torch. The training DAG's
``evaluate_model`` task computes the numbers (the run's test metrics and, when a
production model exists, that model's score on the same test split) and hands them
here; a failed gate stops the run before anything is registered.

Gates:

- ``min_auc`` / ``min_accuracy``: absolute floors on ``test_auc`` / ``test_accuracy``
  (the spec's thresholds).
- ``champion``: the new model (challenger) may not lose more than ``max_auc_drop`` of
  test AUC against the production model (champion). With no production model the gate
  passes and says so.
- ``baseline``: the model must reach the test AUC of a logistic-regression baseline
  (``ml.evaluation.baseline``) minus ``baseline_tolerance``; ``None`` turns it off. A
  model below it learned less than one-hot logistic regression does: the message names
  the fields with the highest out-of-vocabulary share, the usual cause.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from ml.errors import GateConfigError

#: Metric name -> the gate parameter that sets its floor.
THRESHOLD_METRICS = {"test_auc": "min_auc", "test_accuracy": "min_accuracy"}

DEFAULT_MAX_AUC_DROP = 0.005


@dataclass(frozen=True)
class GateParams:
    """The gate thresholds (the DAG's params of the same names)."""

    min_auc: float = 0.65
    min_accuracy: float = 0.60
    max_auc_drop: float = DEFAULT_MAX_AUC_DROP
    baseline_tolerance: float | None = 0.0


@dataclass(frozen=True)
class GateResult:
    """The outcome of one gate.

    Attributes:
        name: Gate name (``min_auc``, ``min_accuracy``, ``champion``).
        passed: Whether the model passed.
        message: One human sentence naming the metric, its value and the threshold.
        value: The measured value (``None`` when missing).
        threshold: The threshold it was compared with (``None`` when not applicable).
    """

    name: str
    passed: bool
    message: str
    value: float | None = None
    threshold: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Champion:
    """The production model's score on the challenger's test split."""

    version: str
    test_auc: float
    test_accuracy: float | None = None


@dataclass(frozen=True)
class GateReport:
    """All gate results for one model; ``passed`` only when every gate passed."""

    results: tuple[GateResult, ...] = field(default_factory=tuple)

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def failures(self) -> tuple[GateResult, ...]:
        return tuple(r for r in self.results if not r.passed)

    def summary(self) -> str:
        """One line per failed gate, or a pass line; used as the task's failure message."""
        if self.passed:
            return "all quality gates passed: " + "; ".join(r.message for r in self.results)
        return "quality gate failed: " + "; ".join(r.message for r in self.failures)

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "results": [r.to_dict() for r in self.results]}


def _check_fraction(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise GateConfigError(f"{name} must be a number between 0 and 1, got {value!r}")
    if math.isnan(value) or not 0.0 <= value <= 1.0:
        raise GateConfigError(f"{name} must be between 0 and 1, got {value!r}")
    return float(value)


def _metric(metrics: Mapping[str, Any], key: str) -> float | None:
    value = metrics.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        return None
    return float(value)


def check_threshold(metrics: Mapping[str, Any], metric: str, threshold: float) -> GateResult:
    """Check that ``metrics[metric] >= threshold``.

    Args:
        metrics: The run's metrics (``metrics.json``).
        metric: ``test_auc`` or ``test_accuracy``.
        threshold: The floor, between 0 and 1.

    Returns:
        The gate result; a missing or NaN metric fails the gate.

    Raises:
        GateConfigError: ``threshold`` is not a number in [0, 1].
    """
    gate = THRESHOLD_METRICS.get(metric, f"min_{metric}")
    threshold = _check_fraction(gate, threshold)
    value = _metric(metrics, metric)
    if value is None:
        return GateResult(
            gate,
            False,
            f"{metric} is missing from the run's metrics (got {metrics.get(metric)!r}); "
            f"cannot compare it with {gate}={threshold:.4f}",
            None,
            threshold,
        )
    if value < threshold:
        return GateResult(
            gate,
            False,
            f"{metric} {value:.4f} is below the threshold {gate}={threshold:.4f}",
            value,
            threshold,
        )
    return GateResult(
        gate, True, f"{metric} {value:.4f} >= {gate}={threshold:.4f}", value, threshold
    )


def check_champion(
    challenger_auc: float | None, champion: Champion | None, max_auc_drop: float
) -> GateResult:
    """Champion/challenger: fail when the new model's test AUC drops too far below production.

    Args:
        challenger_auc: The new model's test AUC, scored on the same split as the champion.
        champion: The production model's score, or ``None`` when there is none.
        max_auc_drop: The largest AUC drop allowed versus production, between 0 and 1.

    Returns:
        The gate result (passes, saying so, when there is no production model).

    Raises:
        GateConfigError: ``max_auc_drop`` is not a number in [0, 1].
    """
    max_auc_drop = _check_fraction("max_auc_drop", max_auc_drop)
    if champion is None:
        return GateResult(
            "champion",
            True,
            "no production model yet: champion/challenger gate passes",
            challenger_auc,
            None,
        )
    if challenger_auc is None or math.isnan(challenger_auc):
        return GateResult(
            "champion",
            False,
            f"the new model has no test AUC to compare with production {champion.version} "
            f"({champion.test_auc:.4f})",
            None,
            champion.test_auc - max_auc_drop,
        )
    floor = champion.test_auc - max_auc_drop
    drop = champion.test_auc - challenger_auc
    if challenger_auc < floor:
        return GateResult(
            "champion",
            False,
            f"test_auc {challenger_auc:.4f} is {drop:.4f} below production {champion.version} "
            f"({champion.test_auc:.4f}); the largest drop allowed is max_auc_drop="
            f"{max_auc_drop:.4f}",
            challenger_auc,
            floor,
        )
    verb = "above" if drop <= 0 else "below"
    return GateResult(
        "champion",
        True,
        f"test_auc {challenger_auc:.4f} is {abs(drop):.4f} {verb} production "
        f"{champion.version} ({champion.test_auc:.4f}), within max_auc_drop={max_auc_drop:.4f}",
        challenger_auc,
        floor,
    )


def check_baseline(
    metrics: Mapping[str, Any], baseline_auc: float | None, tolerance: float | None
) -> GateResult | None:
    """The model's test AUC must reach the baseline's minus ``tolerance``.

    Returns:
        None when the gate is off (``tolerance`` is None).

    Raises:
        GateConfigError: ``tolerance`` is not a number in [0, 1].
    """
    if tolerance is None:
        return None
    tolerance = _check_fraction("baseline_tolerance", tolerance)
    value = _metric(metrics, "test_auc")
    if baseline_auc is None or math.isnan(baseline_auc):
        return GateResult("baseline", True, "no baseline AUC was measured: gate skipped")
    floor = baseline_auc - tolerance
    if value is None or value < floor:
        shown = "missing" if value is None else f"{value:.4f}"
        return GateResult(
            "baseline",
            False,
            f"test_auc {shown} is below the logistic-regression baseline's {baseline_auc:.4f}"
            f" - baseline_tolerance {tolerance:.4f}: the model learned less than one-hot "
            f"logistic regression; look at the out-of-vocabulary shares{_oov_hint(metrics)} "
            "(data.min_frequency), the learning rate and the epochs",
            value,
            floor,
        )
    return GateResult(
        "baseline",
        True,
        f"test_auc {value:.4f} >= logistic-regression baseline {baseline_auc:.4f} - "
        f"{tolerance:.4f}",
        value,
        floor,
    )


def _oov_hint(metrics: Mapping[str, Any]) -> str:
    vocab = metrics.get("vocabulary")
    if not isinstance(vocab, Mapping) or not vocab:
        return ""
    worst = sorted(
        ((float(v.get("oov_val", 0.0)), k) for k, v in vocab.items() if isinstance(v, Mapping)),
        reverse=True,
    )[:3]
    return " (highest: " + ", ".join(f"{k} {share:.0%}" for share, k in worst) + ")"


def evaluate_gates(
    metrics: Mapping[str, Any],
    *,
    min_auc: float,
    min_accuracy: float,
    max_auc_drop: float = DEFAULT_MAX_AUC_DROP,
    champion: Champion | None = None,
    challenger_auc: float | None = None,
    baseline_auc: float | None = None,
    baseline_tolerance: float | None = None,
) -> GateReport:
    """Run every gate on one model.

    Args:
        metrics: The run's metrics; ``test_auc`` and ``test_accuracy`` are checked.
        min_auc: Floor on ``test_auc``.
        min_accuracy: Floor on ``test_accuracy``.
        max_auc_drop: Largest AUC drop allowed versus the production model.
        champion: The production model's score on the same test split, if one exists.
        challenger_auc: The new model's AUC on that same split (defaults to
            ``metrics["test_auc"]``).
        baseline_auc: The logistic-regression baseline's test AUC, if measured.
        baseline_tolerance: How far below the baseline the model may be (None: off).

    Returns:
        A :class:`GateReport`; ``report.passed`` is the verdict.

    Raises:
        GateConfigError: A threshold is out of range.
    """
    if challenger_auc is None:
        challenger_auc = _metric(metrics, "test_auc")
    results = [
        check_threshold(metrics, "test_auc", min_auc),
        check_threshold(metrics, "test_accuracy", min_accuracy),
        check_champion(challenger_auc, champion, max_auc_drop),
    ]
    baseline = check_baseline(metrics, baseline_auc, baseline_tolerance)
    if baseline is not None:
        results.append(baseline)
    return GateReport(tuple(results))
