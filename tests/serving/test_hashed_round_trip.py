"""Hashed ids (``features.hash_buckets``) through train → register → serve → predict: every
path encodes the same buckets, so every path scores what training evaluated."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

with warnings.catch_warnings():  # starlette's note about httpx2, raised at import
    warnings.filterwarnings("ignore", message=".*httpx2.*")
    from fastapi.testclient import TestClient

from ml.cli import main
from ml.config import config_from_dict
from ml.data.generate.world_default import DEFAULT_SPEC
from ml.data.hashing import bucket_ids
from ml.data.loading import load_split
from ml.metrics import roc_auc
from ml.registry.model_registry import ModelRegistry
from ml.serving.predictor import Predictor
from ml.serving.service.app import create_app
from ml.serving.service.settings import ServeSettings
from ml.training.job import train

NAME = "ctr_model"
BUCKETS = {"user_id": 257, "item_id": 131}


def _rows(df: pd.DataFrame) -> list[dict[str, object]]:
    cols = {c: df[c].astype(object).where(df[c].notna(), None).tolist() for c in df.columns}
    cols = {c: [v.item() if hasattr(v, "item") else v for v in vals] for c, vals in cols.items()}
    return [dict(zip(cols, vals, strict=True)) for vals in zip(*cols.values(), strict=True)]


@pytest.fixture(scope="module")
def registered(tiny_features_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hashed")
    features = {**DEFAULT_SPEC.to_dict(), "hash_buckets": BUCKETS}
    cfg = config_from_dict(
        {
            "features": features,
            "data": {"features_dir": str(tiny_features_dir)},
            "model": {"name": "deepfm", "embedding_dim": 4, "hidden_units": [8]},
            "training": {"batch_size": 512, "epochs": 1, "device": "cpu", "num_threads": 1},
            "output": {"runs_dir": str(root / "runs")},
        }
    )
    run = train(cfg, log=lambda _: None, progress=False).run_dir
    registry = ModelRegistry(root / "models")
    registry.register(run, NAME)
    registry.promote_to_production(NAME, "v1", reason="test")
    (root / "run_dir").write_text(str(run))
    return root


def test_hashed_model_scores_the_same_when_registered_served_and_batch_scored(
    registered: Path, tiny_features_dir: Path, tmp_path: Path
) -> None:
    run = Path((registered / "run_dir").read_text())
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["vocabulary"]["user_id"]["hashed"] is True
    assert metrics["vocabulary"]["user_id"]["vocab_size"] == BUCKETS["user_id"]

    model = ModelRegistry(registered / "models").load(NAME)
    assert model.preprocessor.spec.hash_buckets == BUCKETS
    test = load_split(tiny_features_dir, "test", model.features)
    want = Predictor.load(run).predict_proba(test)
    registered_probs = model.predict_proba(test)
    np.testing.assert_allclose(registered_probs, want, rtol=1e-12)
    # what training evaluated in process
    assert roc_auc(test["click"].to_numpy(), registered_probs) == pytest.approx(
        metrics["test_auc"], abs=1e-6
    )

    out = tmp_path / "scores.parquet"
    src = tiny_features_dir / "test" / "data.parquet"
    argv = ["predict", "--registry", str(registered / "models"), "--model", NAME]
    assert main([*argv, "--input", str(src), "--output", str(out)]) == 0
    np.testing.assert_allclose(pd.read_parquet(out)["probability"], want, rtol=1e-6)

    settings = ServeSettings(
        registry_dir=str(registered / "models"),
        log_dir=str(tmp_path / "logs"),
        max_batch=256,
        poll_interval=0.05,
        threads=1,
    )
    chunk = test.drop(columns=["click"]).head(200)
    with TestClient(create_app(settings)) as client:
        response = client.post("/predict", json={"rows": _rows(chunk)})
    assert response.status_code == 200, response.text
    np.testing.assert_allclose(response.json()["probabilities"], want[:200], rtol=1e-6)


def test_an_id_unseen_in_training_is_served_in_its_bucket(
    registered: Path, tiny_features_dir: Path, tmp_path: Path
) -> None:
    model = ModelRegistry(registered / "models").load(NAME)
    rows = load_split(tiny_features_dir, "test", model.features, with_label=False).head(2)
    unseen = 10**12 + 7  # no generated user id is this large
    rows = rows.assign(user_id=pd.array([unseen, None], dtype="Int64"))
    cat, _ = model.preprocessor.transform(rows)
    bucket = bucket_ids(pd.Series([unseen], dtype="int64"), "int", BUCKETS["user_id"])[0]
    j = model.preprocessor.field_names.index("user_id")
    assert cat[0, j] == bucket != 0 and cat[1, j] == 0  # its bucket; missing alone is 0
    settings = ServeSettings(
        registry_dir=str(registered / "models"), log_dir=str(tmp_path / "logs"), threads=1
    )
    with TestClient(create_app(settings)) as client:
        response = client.post("/predict", json={"rows": _rows(rows)})
    assert response.status_code == 200, response.text
    want = model.predict_proba(rows)
    np.testing.assert_allclose(response.json()["probabilities"], want, rtol=1e-6)
