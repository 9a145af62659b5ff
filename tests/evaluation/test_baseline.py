"""ml.evaluation.baseline: scikit-learn logistic regression on its own preprocessing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ml.config import FeatureSpec
from ml.data.generate.world_default import DEFAULT_SPEC
from ml.evaluation.baseline import fit_baseline


def test_baseline_on_generated_data(tiny_features_dir: Path) -> None:
    result = fit_baseline(tiny_features_dir, DEFAULT_SPEC)
    assert 0.6 < result.test_auc < 1.0 and 0.6 < result.val_auc < 1.0
    assert result.train_rows == 2100 and result.c > 0 and result.seconds > 0
    assert set(result.to_dict()) == {
        "test_auc",
        "val_auc",
        "c",
        "train_rows",
        "seconds",
        "test_logloss",
    }
    assert 0 < result.test_logloss < 1


def test_baseline_caps_training_rows(tiny_features_dir: Path) -> None:
    assert fit_baseline(tiny_features_dir, DEFAULT_SPEC, max_rows=500).train_rows == 500


def test_baseline_is_robust_to_missing_values_and_unseen_categories(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    spec = FeatureSpec("y", ("site",), ("price",))
    for split, n in (("train", 3000), ("val", 1000), ("test", 1000)):
        site = rng.choice(["a", "b", "c", None], n).astype(object)
        if split == "test":
            site[:50] = "never-seen"
        price = rng.normal(size=n)
        price[::17] = np.nan
        price[::101] = np.inf
        logit = np.where(site == "a", 1.5, -0.5) + np.nan_to_num(price, posinf=0)
        y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
        (tmp_path / split).mkdir()
        pd.DataFrame({"y": y, "site": site, "price": price}).to_parquet(
            tmp_path / split / "data.parquet"
        )
    result = fit_baseline(tmp_path, spec)
    assert result.test_auc == pytest.approx(result.val_auc, abs=0.1)
    assert result.test_auc > 0.7
