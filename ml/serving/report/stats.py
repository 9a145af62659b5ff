"""The statistics of the A/B report: proportions and AUCs with confidence intervals.

- Click-through rate: the Wilson score interval per variant; the difference of two
  variants with the unpooled normal interval and the pooled two-proportion z-test.
- Log loss: the mean of each row's loss with the normal interval of a mean; the
  difference of two variants with Welch's (unpooled) interval.
- AUC: DeLong's variance (DeLong, DeLong & Clarke-Pearson 1988) computed from midranks
  (Sun & Xu 2014, O(n log n)). Two variants scored *different* users, so the variance
  of their difference is the sum of their variances; a shadow model scored the *same*
  rows as the served one, so that comparison is paired (the covariance of the two
  AUCs' structural components is subtracted).

All intervals are two-sided at ``1 - alpha`` under the normal approximation, so they
need a few hundred outcomes (and some clicks and non-clicks) per variant to mean much.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


def z_value(alpha: float) -> float:
    return NormalDist().inv_cdf(1 - alpha / 2)


def two_sided_p(z: float) -> float:
    return 2 * (1 - NormalDist().cdf(abs(z))) if math.isfinite(z) else 0.0


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its interval (and, for a difference, a p-value)."""

    value: float
    low: float
    high: float
    p_value: float | None = None

    def to_dict(self) -> dict[str, float | None]:
        return {"value": self.value, "low": self.low, "high": self.high, "p_value": self.p_value}


def wilson(clicks: int, n: int, alpha: float = 0.05) -> Estimate:
    """Click-through rate with the Wilson score interval."""
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan)
    z = z_value(alpha)
    p = clicks / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return Estimate(p, max(0.0, centre - half), min(1.0, centre + half))


def proportion_difference(c1: int, n1: int, c2: int, n2: int, alpha: float = 0.05) -> Estimate:
    """``p2 - p1`` with an unpooled normal interval and the pooled z-test's p-value."""
    if n1 == 0 or n2 == 0:
        return Estimate(math.nan, math.nan, math.nan)
    p1, p2 = c1 / n1, c2 / n2
    diff = p2 - p1
    se = math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    pooled = (c1 + c2) / (n1 + n2)
    se0 = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    z = z_value(alpha)
    p_value = two_sided_p(diff / se0) if se0 > 0 else 1.0
    return Estimate(diff, diff - z * se, diff + z * se, p_value)


def _midranks(x: FloatArray) -> FloatArray:
    from scipy.stats import rankdata

    return np.asarray(rankdata(x), dtype=np.float64)


def delong_components(
    labels: npt.ArrayLike, scores: npt.ArrayLike
) -> tuple[float, FloatArray, FloatArray]:
    """``(auc, V10, V01)``: the AUC and its structural components per positive/negative."""
    y = np.asarray(labels).astype(bool)
    s = np.asarray(scores, dtype=np.float64)
    pos, neg = s[y], s[~y]
    m, n = len(pos), len(neg)
    if m == 0 or n == 0:
        raise ValueError("the AUC needs both clicks and non-clicks")
    tz = _midranks(np.concatenate([pos, neg]))
    v10 = (tz[:m] - _midranks(pos)) / n
    v01 = 1.0 - (tz[m:] - _midranks(neg)) / m
    return float(v10.mean()), v10, v01


def auc_with_ci(labels: npt.ArrayLike, scores: npt.ArrayLike, alpha: float = 0.05) -> Estimate:
    """AUC with DeLong's interval (NaN when one class is absent)."""
    try:
        auc, v10, v01 = delong_components(labels, scores)
    except ValueError:
        return Estimate(math.nan, math.nan, math.nan)
    var = _var(v10) / len(v10) + _var(v01) / len(v01)
    half = z_value(alpha) * math.sqrt(var)
    return Estimate(auc, max(0.0, auc - half), min(1.0, auc + half))


def _var(x: FloatArray) -> float:
    return float(np.var(x, ddof=1)) if len(x) > 1 else 0.0


def auc_difference(
    labels_a: npt.ArrayLike,
    scores_a: npt.ArrayLike,
    labels_b: npt.ArrayLike,
    scores_b: npt.ArrayLike,
    alpha: float = 0.05,
) -> Estimate:
    """``AUC_b - AUC_a`` for independent samples (two variants): variances add."""
    return _auc_difference((labels_a, scores_a), (labels_b, scores_b), alpha, paired=False)


def paired_auc_difference(
    labels: npt.ArrayLike, scores_a: npt.ArrayLike, scores_b: npt.ArrayLike, alpha: float = 0.05
) -> Estimate:
    """``AUC_b - AUC_a`` of two models scored on the same rows (paired DeLong)."""
    return _auc_difference((labels, scores_a), (labels, scores_b), alpha, paired=True)


def _auc_difference(
    a: tuple[npt.ArrayLike, npt.ArrayLike],
    b: tuple[npt.ArrayLike, npt.ArrayLike],
    alpha: float,
    *,
    paired: bool,
) -> Estimate:
    """``AUC_b - AUC_a`` of ``(labels, scores)`` samples ``a`` and ``b``: the variance of
    the difference adds the two (independent samples) or, for the same rows (``paired``),
    also subtracts their covariance."""
    try:
        auc_a, v10a, v01a = delong_components(*a)
        auc_b, v10b, v01b = delong_components(*b)
    except ValueError:
        return Estimate(math.nan, math.nan, math.nan)
    diff = auc_b - auc_a
    if not paired:
        var = sum(_var(v) / len(v) for v in (v10a, v01a, v10b, v01b))
    else:
        var = 0.0
        for x, y in ((v10a, v10b), (v01a, v01b)):
            if len(x) > 1:
                cov = np.cov(np.vstack([x, y]), ddof=1)
                var += float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]) / len(x)
    se = math.sqrt(max(var, 0.0))
    z = z_value(alpha)
    p_value = two_sided_p(diff / se) if se > 0 else (1.0 if diff == 0 else 0.0)
    return Estimate(diff, diff - z * se, diff + z * se, p_value)


def row_logloss(labels: npt.ArrayLike, scores: npt.ArrayLike, eps: float = 1e-7) -> FloatArray:
    """Each row's log loss (scores clipped to ``[eps, 1 - eps]``)."""
    y = np.asarray(labels, dtype=np.float64)
    p = np.clip(np.asarray(scores, dtype=np.float64), eps, 1 - eps)
    out: FloatArray = -(y * np.log(p) + (1 - y) * np.log1p(-p))
    return out


def mean_with_ci(values: npt.ArrayLike, alpha: float = 0.05) -> Estimate:
    """A mean (e.g. the log loss) with the normal interval of the sample mean."""
    x = np.asarray(values, dtype=np.float64)
    if len(x) == 0:
        return Estimate(math.nan, math.nan, math.nan)
    m = float(x.mean())
    half = z_value(alpha) * math.sqrt(_var(x) / len(x)) if len(x) > 1 else math.nan
    return Estimate(m, m - half, m + half)


def mean_difference(a: npt.ArrayLike, b: npt.ArrayLike, alpha: float = 0.05) -> Estimate:
    """``mean(b) - mean(a)`` of independent samples, Welch's normal interval and p-value."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if len(x) < 2 or len(y) < 2:
        return Estimate(math.nan, math.nan, math.nan)
    diff = float(y.mean() - x.mean())
    se = math.sqrt(_var(x) / len(x) + _var(y) / len(y))
    z = z_value(alpha)
    p_value = two_sided_p(diff / se) if se > 0 else (1.0 if diff == 0 else 0.0)
    return Estimate(diff, diff - z * se, diff + z * se, p_value)


def verdict(difference: Estimate) -> str:
    """``better`` / ``worse`` when the interval excludes 0, else ``undecided``."""
    if math.isnan(difference.value):
        return "undecided"
    if difference.low > 0:
        return "better"
    if difference.high < 0:
        return "worse"
    return "undecided"
