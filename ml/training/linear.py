"""The logistic-regression candidate's L2 penalty, chosen on validation as the gate's
scikit-learn baseline (``ml.evaluation.baseline``) chooses its ``C``.

The deep models' size rule for the weight decay (``ml.training.sizing``: 0.016 / steps
per epoch) is, for a linear model on 70k rows, scikit-learn's ``C`` of about 0.016: far
more shrinkage than the baseline's best ``C`` on most data, which left the torch logreg
0.01-0.02 test AUC below scikit-learn's. Here the penalty is scikit-learn's, per train
row (:func:`linear_weight_decay`), and ``C`` is searched on validation (:func:`l2_path`).
"""

from __future__ import annotations

from collections.abc import Callable

#: The linear candidate's L2 penalty, when ``training.weight_decay`` is null, is chosen on
#: validation like the gate's scikit-learn baseline chooses its ``C``: weight decay
#: ``1 / (C * train rows)`` (scikit-learn's ``C * sum of losses + |w|^2 / 2`` per train
#: row, so ``C`` means the same at every size), ``C = 10 ** (k / 2)``, starting at
#: ``10 ** (LINEAR_C_START / 2)`` and its two neighbours, then stepping outward while
#: the end keeps winning, within [LINEAR_C_MIN, LINEAR_C_MAX] (:func:`l2_path`).
LINEAR_C_START = -2  # C = 0.1
LINEAR_C_MIN = -6  # C = 0.001
LINEAR_C_MAX = 2  # C = 10


def linear_weight_decay(c: float, train_rows: int) -> float:
    """Adam's (coupled) weight decay that gives the logistic regression scikit-learn's
    ``LogisticRegression(C=c)`` optimum: the gradient of ``mean loss + wd |w|^2 / 2`` is
    zero where that of ``c * sum of losses + |w|^2 / 2`` is, for ``wd = 1 / (c * rows)``."""
    return 1.0 / (c * max(train_rows, 1))


def l2_path(
    fit: Callable[[float], float | None],
    *,
    maximize: bool,
    log: Callable[[str], None] | None = None,
) -> tuple[float, dict[float, float | None]]:
    """Choose ``C`` on validation: ``fit(C)`` trains at ``C`` and returns its validation
    metric (None: not finite). ``C = 10 ** (k / 2)`` from ``k = LINEAR_C_START`` and its
    two neighbours, then one step further out while the end of the tried range is the
    best, within [LINEAR_C_MIN, LINEAR_C_MAX]; returns the best ``C`` (the first tried
    on a tie) and every ``C``'s metric."""
    scores: dict[int, float | None] = {}

    def key(k: int) -> tuple[bool, float]:
        v = scores[k]
        return (v is not None, (v if maximize else -v) if v is not None else 0.0)

    def tried(k: int) -> None:
        if k not in scores and LINEAR_C_MIN <= k <= LINEAR_C_MAX:
            scores[k] = fit(10 ** (k / 2))
            if log is not None:
                v = scores[k]
                log(f"      logreg C {10 ** (k / 2):.3g}: {'n/a' if v is None else f'{v:.4f}'}")

    for k in (LINEAR_C_START, LINEAR_C_START - 1, LINEAR_C_START + 1):
        tried(k)
    while True:
        best = max(scores, key=key)  # the first of the best on a tie (max keeps it)
        step = 1 if best == max(scores) else -1 if best == min(scores) else 0
        if step == 0 or best + step in scores or not LINEAR_C_MIN <= best + step <= LINEAR_C_MAX:
            break
        tried(best + step)
    best = max(scores, key=key)
    return 10 ** (best / 2), {10 ** (k / 2): v for k, v in sorted(scores.items())}
