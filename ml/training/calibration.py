"""Post-hoc calibration of a trained model's probabilities, fitted on the validation split.

The checkpoint is kept for its ranking (the early-stopping monitor); its probabilities are
then mapped by one of these, chosen by 5-fold cross-validated log loss on the validation
split (so a flexible map does not win by fitting the folds it is scored on), and used
only when its gain over ``none`` is significant (:data:`SIGNIFICANCE`):

- ``none``: ``sigmoid(z)``, when nothing beats it;
- ``temperature``: ``sigmoid(z / t)``;
- ``platt``: ``sigmoid(a * z + b)`` (``a > 0``);
- ``isotonic``: a non-decreasing step map of ``sigmoid(z)`` (scikit-learn's
  ``IsotonicRegression``), plus ``1e-6 * sigmoid(z)`` so no two scores that were ordered
  become tied.

Every map is strictly increasing in the logit, so AUC is unchanged. The fitted map is a
plain dict (``{"method": ..., parameters}``) stored under the checkpoint's ``calibration``
key and applied by :func:`apply_calibration` at evaluation, in the predictor, batch
scoring and the service's fast path.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ml.metrics import log_loss

if TYPE_CHECKING:
    from ml.training.trainer import Split, Trainer

METHODS = ("none", "temperature", "platt", "isotonic")
FOLDS = 5
#: A map is used only when its cross-validated gain over ``none`` exceeds this many
#: standard errors (of the per-row log loss difference).
SIGNIFICANCE = 2.0
#: The isotonic map's tie-breaker weight: small against any step, enough to keep order.
TIE_BREAK = 1e-6
_EPS = 1e-6

FloatArray = npt.NDArray[np.float64]


def _sigmoid(z: FloatArray) -> FloatArray:
    out: FloatArray = 0.5 * (1.0 + np.tanh(0.5 * z))
    return out


def _fit_linear(z: FloatArray, y: FloatArray, with_bias: bool) -> tuple[float, float]:
    """``(a, b)`` minimising the log loss of ``sigmoid(a * z + b)`` (``b = 0`` unless
    ``with_bias``), by Newton's method with step halving on the convex one- or
    two-parameter problem."""

    def loss(a: float, b: float) -> float:
        s = a * z + b
        return float(np.mean(np.logaddexp(0.0, s) - y * s))

    a, b = 1.0, 0.0
    for _ in range(100):
        p = _sigmoid(a * z + b)
        g = p - y
        w = np.maximum(p * (1 - p), 1e-12)
        grad = np.array([np.dot(g, z), g.sum() if with_bias else 0.0])
        h = np.array(
            [[np.dot(w, z * z), np.dot(w, z)], [np.dot(w, z), w.sum() if with_bias else 1.0]]
        )
        if not with_bias:
            h[0, 1] = h[1, 0] = 0.0
        step = np.linalg.solve(h + 1e-9 * np.eye(2), grad)
        current = loss(a, b)
        while loss(a - float(step[0]), b - float(step[1])) > current and np.abs(step).max() > 1e-12:
            step = step / 2
        a, b = a - float(step[0]), b - float(step[1])
        if np.abs(step).max() < 1e-10:
            break
    return a, b


def fit_method(method: str, logits: FloatArray, y: FloatArray) -> dict[str, Any]:
    """The ``method`` map fitted to ``(logits, y)``, as a plain dict."""
    z, y = np.asarray(logits, np.float64), np.asarray(y, np.float64)
    if method == "temperature":
        a, _ = _fit_linear(z, y, with_bias=False)
        return {"method": "temperature", "t": 1.0 / a} if a > 0 else {"method": "none"}
    if method == "platt":
        a, b = _fit_linear(z, y, with_bias=True)
        return {"method": "platt", "a": a, "b": b} if a > 0 else {"method": "none"}
    if method == "isotonic":
        from sklearn.isotonic import IsotonicRegression

        iso = IsotonicRegression(y_min=_EPS, y_max=1 - 2 * _EPS, out_of_bounds="clip")
        iso.fit(_sigmoid(z), y)
        return {
            "method": "isotonic",
            "x": [float(v) for v in iso.X_thresholds_],
            "y": [float(v) for v in iso.y_thresholds_],
        }
    return {"method": "none"}


def apply_calibration(calibration: dict[str, Any] | None, logits: npt.ArrayLike) -> FloatArray:
    """Calibrated probabilities (float64) for ``logits``; ``None`` or ``none``: sigmoid."""
    z = np.asarray(logits, dtype=np.float64)
    method = (calibration or {}).get("method", "none")
    assert calibration is not None or method == "none"
    if method == "temperature":
        return _sigmoid(z / float(calibration["t"]))  # type: ignore[index]
    if method == "platt":
        return _sigmoid(float(calibration["a"]) * z + float(calibration["b"]))  # type: ignore[index]
    if method == "isotonic":
        p = _sigmoid(z)
        xs = np.asarray(calibration["x"], np.float64)  # type: ignore[index]
        ys = np.asarray(calibration["y"], np.float64)  # type: ignore[index]
        mapped: FloatArray = np.interp(p, xs, ys) + TIE_BREAK * p
        return mapped
    return _sigmoid(z)


def cross_validated_loss(method: str, logits: FloatArray, y: FloatArray, seed: int = 0) -> float:
    """``method``'s log loss on held-out folds of ``(logits, y)`` (each fold's map fitted
    on the other folds)."""
    return float(np.mean(cross_validated_row_losses(method, logits, y, seed)))


def cross_validated_row_losses(
    method: str, logits: FloatArray, y: FloatArray, seed: int = 0
) -> FloatArray:
    """Each row's log loss under ``method`` fitted on the other folds."""
    order = np.random.default_rng(seed).permutation(len(y))
    probs = np.empty(len(y))
    for fold in np.array_split(order, FOLDS):
        rest = np.setdiff1d(order, fold, assume_unique=True)
        fitted = fit_method(method, logits[rest], y[rest])
        probs[fold] = apply_calibration(fitted, logits[fold])
    p = np.clip(probs, 1e-7, 1 - 1e-7)
    out: FloatArray = -(y * np.log(p) + (1 - y) * np.log1p(-p))
    return out


def choose_calibration(
    logits: npt.ArrayLike, y: npt.ArrayLike, log: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """The map with the lowest cross-validated log loss, refitted on all of
    ``(logits, y)``, with ``cv_logloss`` per method and ``val_logloss_raw``.

    ``none`` unless the best map's gain over it is significant: larger than
    ``SIGNIFICANCE`` standard errors of the per-row difference. On a 1,500-row validation
    split (a 10k-row data set) an unsignificant map fitted to noise cost test log loss
    (feed and marketplace worlds, docs/training.md)."""
    z, t = np.asarray(logits, np.float64), np.asarray(y, np.float64)
    if len(t) < 2 * FOLDS or t.min() == t.max():
        return {"method": "none", "reason": "too few validation rows or a single class"}
    rows = {m: cross_validated_row_losses(m, z, t) for m in METHODS}
    losses = {m: float(np.mean(v)) for m, v in rows.items()}
    best = min(METHODS, key=lambda m: (losses[m], METHODS.index(m)))
    gain = rows["none"] - rows[best]
    margin = SIGNIFICANCE * float(np.std(gain, ddof=1)) / np.sqrt(len(gain))
    if best != "none" and float(np.mean(gain)) <= margin:
        best = "none"
    chosen = fit_method(best, z, t)
    chosen["cv_logloss"] = {m: round(v, 6) for m, v in losses.items()}
    chosen["val_logloss_raw"] = log_loss(t, _sigmoid(z))
    if log is not None:
        shown = ", ".join(f"{m} {v:.4f}" for m, v in losses.items())
        log(f"Calibration: {chosen['method']} (validation log loss, 5-fold: {shown})")
    return chosen


def calibrate_run(
    trainer: Trainer, splits: dict[str, Split], best_path: Path, log: Callable[[str], None]
) -> dict[str, Any]:
    """Fit the calibration of ``trainer``'s (best) weights on ``splits["val"]``, store it in
    the checkpoint at ``best_path``, and make ``trainer.predict`` apply it.

    Returns the ``calibration`` entry of ``metrics.json``: the method, the cross-validated
    log loss of each, and the raw (uncalibrated) log loss on val and, when scored, test.
    """
    from ml.training import checkpoint as ck

    val = splits["val"]
    logits = trainer.predict_logits(val).double().cpu().numpy()
    chosen = choose_calibration(logits, val.y.double().cpu().numpy(), log)
    keys = ("cv_logloss", "val_logloss_raw", "reason")
    record: dict[str, Any] = {k: chosen.pop(k) for k in keys if k in chosen}
    record["method"] = chosen["method"]
    if "test" in splits:
        test = splits["test"]
        raw = _sigmoid(trainer.predict_logits(test).double().cpu().numpy())
        record["test_logloss_raw"] = log_loss(test.y.double().cpu().numpy(), raw)
    ckpt = ck.load_checkpoint(best_path)
    ckpt["calibration"] = chosen
    ck.save_checkpoint(best_path, ckpt)
    trainer.calibration = chosen
    return record
