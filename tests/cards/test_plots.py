"""Each plot is a PNG that decodes, with and without a production model."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from ml.cards import plots
from ml.metrics import calibration_table


def _decode(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        assert im.format == "PNG"
        return im.size


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    y = (rng.random(5000) < 0.1).astype(np.int8)
    s = np.clip(rng.beta(2, 12, 5000) + 0.1 * y, 0, 1)
    return y, s, np.clip(s + rng.normal(0, 0.03, 5000), 0, 1)


def test_curves_with_and_without_production(data: tuple[np.ndarray, ...]) -> None:
    y, s, p = data
    for png in (plots.roc_png(y, s), plots.roc_png(y, s, p, "production v1")):
        assert _decode(png) == (499, 374)
    for png in (plots.pr_png(y, s), plots.pr_png(y, s, p)):
        assert _decode(png) == (499, 374)
    assert plots.roc_png(y, s) != plots.roc_png(y, s, p)


def test_calibration_and_scores(data: tuple[np.ndarray, ...]) -> None:
    y, s, p = data
    png = plots.calibration_png(calibration_table(y, s), calibration_table(y, p))
    assert _decode(png) == (499, 374)
    assert _decode(plots.scores_png(y, s)) == (499, 374)


def test_calibration_draws_the_raw_curve_beside_the_calibrated_one(
    data: tuple[np.ndarray, ...],
) -> None:
    y, s, _ = data
    table = calibration_table(y, s)
    both = plots.calibration_png(table, raw=calibration_table(y, np.clip(s * 1.5, 0, 1)))
    assert _decode(both) == (499, 374)
    assert both != plots.calibration_png(table)


def test_training_curves_mark_the_best_epoch() -> None:
    history = [
        {"epoch": e, "train_loss": 0.6 - 0.02 * e, "val_auc": 0.7 + 0.01 * e, "val_logloss": 0.5}
        for e in range(1, 6)
    ]
    marked, unmarked = plots.training_png(history, 4), plots.training_png(history, None)
    assert _decode(marked) == (921, 307)
    assert marked != unmarked


def test_long_curves_are_thinned_for_drawing_only() -> None:
    x = np.arange(100_000, dtype=np.float64)
    (thin,) = plots._thin(x)
    assert len(thin) == plots.MAX_POINTS and thin[0] == 0 and thin[-1] == 99_999
