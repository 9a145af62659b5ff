from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ml.config import config_from_dict
from ml.data.loading import load_split
from ml.errors import CheckpointError, PreprocessingError
from ml.serving.predictor import Predictor
from ml.training.job import train


@pytest.fixture(scope="module")
def run_dir(tiny_features_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from ml.data.generate.world_default import DEFAULT_SPEC

    cfg = config_from_dict(
        {
            "features": DEFAULT_SPEC.to_dict(),
            "data": {"features_dir": str(tiny_features_dir)},
            "model": {"name": "deepfm", "embedding_dim": 4, "hidden_units": [8]},
            "training": {
                "batch_size": 512,
                "epochs": 2,
                "learning_rate": 0.01,
                "device": "cpu",
                "num_threads": 1,
            },
            "output": {"runs_dir": str(tmp_path_factory.mktemp("runs"))},
        }
    )
    return train(cfg, log=lambda _: None, progress=False).run_dir


@pytest.fixture(scope="module")
def rows(tiny_features_dir: Path, run_dir: Path) -> pd.DataFrame:
    pred = Predictor.load(run_dir)
    return load_split(tiny_features_dir, "test", pred.features).head(50).reset_index(drop=True)


def test_predictor_scores_like_the_training_run(run_dir: Path, tiny_features_dir: Path) -> None:
    import json

    from ml.metrics import roc_auc

    pred = Predictor.load(run_dir)
    df = load_split(tiny_features_dir, "test", pred.features)
    probs = pred.predict_proba(df)
    assert probs.dtype == np.float64 and probs.shape == (len(df),)
    assert ((probs > 0) & (probs < 1)).all()
    recorded = json.loads((run_dir / "metrics.json").read_text())["test_auc"]
    assert roc_auc(df["click"].to_numpy(), probs) == pytest.approx(recorded, abs=1e-6)
    assert pred.model_name == "deepfm" and pred.metadata["epoch"] >= 1


def test_predictor_unseen_categories_score_as_oov(run_dir: Path, rows: pd.DataFrame) -> None:
    pred = Predictor.load(run_dir)
    unseen = rows.copy()
    unseen["item_category"] = "never-seen-category"
    unseen["user_id"] = 10**9
    # The OOV id is what a missing value maps to, so both score the same.
    missing = rows.copy()
    missing["item_category"] = None
    missing["user_id"] = None
    a, b = pred.predict_proba(unseen), pred.predict_proba(missing)
    np.testing.assert_allclose(a, b, rtol=1e-6)
    assert np.isfinite(a).all()
    assert not np.allclose(a, pred.predict_proba(rows))


def test_predictor_missing_numerics_use_the_train_mean_and_the_missing_bin(
    run_dir: Path, rows: pd.DataFrame
) -> None:
    pred = Predictor.load(run_dir)
    pre = pred.preprocessor
    with_nan = rows.copy()
    with_nan["item_price"] = np.nan
    with_nan.loc[0, "item_price"] = None
    cat, num = pre.transform(with_nan, numeric_nan="impute")
    j = list(pre.spec.numeric).index("item_price")
    np.testing.assert_allclose(num[:, j], 0.0, atol=1e-6)  # the train mean, standardised
    assert (cat[:, pre.field_names.index("item_price#bin")] == 0).all()  # the missing bin
    probs = pred.predict_proba(with_nan)
    assert np.isfinite(probs).all() and not np.allclose(probs, pred.predict_proba(rows))


def test_predictor_missing_column_is_named_and_extra_ignored(
    run_dir: Path, rows: pd.DataFrame
) -> None:
    pred = Predictor.load(run_dir)
    with pytest.raises(PreprocessingError, match=r"\['user_age', 'ad_quality'\]"):
        pred.predict_proba(rows.drop(columns=["user_age", "ad_quality"]))
    extra = rows.assign(something_else=1, click=0)
    np.testing.assert_array_equal(pred.predict_proba(extra), pred.predict_proba(rows))
    assert pred.predict_proba(rows.iloc[:0]).shape == (0,)


def test_predictor_loads_registry_style_directory(run_dir: Path, tmp_path: Path) -> None:
    version = tmp_path / "v1"
    version.mkdir()
    shutil.copy(run_dir / "model_best.pt", version / "model.pt")
    assert Predictor.load(version).model_name == "deepfm"
    assert Predictor.load(version / "model.pt").path == version / "model.pt"


def test_predictor_bad_paths_and_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        Predictor.load(tmp_path / "nope.pt")
    with pytest.raises(CheckpointError, match="holds no model checkpoint"):
        Predictor.load(tmp_path)
    bad = tmp_path / "model.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        Predictor.load(bad)


def test_predictor_applies_the_checkpoints_calibration_and_reads_format_1(
    run_dir: Path, tiny_features_dir: Path, tmp_path: Path
) -> None:
    import json

    import torch

    from ml.metrics import log_loss
    from ml.training.calibration import apply_calibration

    ckpt = torch.load(run_dir / "model_best.pt", weights_only=True)
    df = load_split(tiny_features_dir, "test", Predictor.load(run_dir).features)
    recorded = json.loads((run_dir / "metrics.json").read_text())["test_logloss"]
    assert log_loss(df["click"].to_numpy(), Predictor.load(run_dir).predict_proba(df)) == (
        pytest.approx(recorded, abs=1e-6)
    )
    platt = {"method": "platt", "a": 0.5, "b": -1.0}
    torch.save({**ckpt, "calibration": platt}, tmp_path / "platt.pt")
    old = {k: v for k, v in ckpt.items() if k != "calibration"}
    torch.save({**old, "format_version": 1}, tmp_path / "v1.pt")
    plain = Predictor.load(tmp_path / "v1.pt")
    assert plain.calibration is None
    cat, num = plain.preprocessor.transform(df.head(20), source="t", numeric_nan="impute")
    with torch.no_grad():
        logits = plain.model(torch.from_numpy(cat), torch.from_numpy(num))
    np.testing.assert_allclose(
        plain.predict_proba(df.head(20)), torch.sigmoid(logits).double().numpy()
    )
    calibrated = Predictor.load(tmp_path / "platt.pt")
    np.testing.assert_allclose(
        calibrated.predict_proba(df.head(20)), apply_calibration(platt, logits.double().numpy())
    )
    np.testing.assert_allclose(  # the model's own scores, for the card's raw curve
        calibrated.predict_proba(df.head(20), calibrated=False),
        torch.sigmoid(logits).double().numpy(),
    )
