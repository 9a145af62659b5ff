"""The registry with a real checkpoint: train a tiny model, register, promote, load, score."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml.registry.errors import IntegrityError
from ml.registry.model_registry import ModelRegistry


@pytest.mark.slow
def test_register_promote_load_real_checkpoint_scores_rows(
    tiny_features_dir: Path, registry: ModelRegistry, home: Path
) -> None:
    trainer = pytest.importorskip("ml.training.trainer")
    pytest.importorskip("ml.serving.predictor")
    import numpy as np
    import pandas as pd

    from ml.config import config_from_dict
    from ml.data.schema import DEFAULT_SPEC

    cfg = config_from_dict(
        {
            "experiment_name": "ctr_model",
            "seed": 7,
            "features": DEFAULT_SPEC.to_dict(),
            "data": {"features_dir": str(tiny_features_dir)},
            "model": {"name": "logreg", "embedding_dim": 4, "hidden_units": [8]},
            "training": {"epochs": 1, "batch_size": 512, "device": "cpu"},
            "output": {"runs_dir": str(home / "experiments" / "runs")},
        }
    )
    result = trainer.train(cfg, log=lambda _line: None)
    registered = registry.register(result.run_dir, dag_id="training_pipeline", run_id="t1")
    meta = registry.show("ctr_model", registered.version)["metadata"]
    assert meta["data_fingerprint"]["digest"]  # lineage from the real run.json
    assert meta["training"]["config_digest"] == cfg.digest() == meta["config_digest"]

    registry.promote_to_production("ctr_model", registered.version)
    predictor = registry.load("ctr_model", "current")
    rows = pd.read_parquet(tiny_features_dir / "test" / "data.parquet").head(50)
    proba = predictor.predict_proba(rows)
    assert proba.shape == (50,)
    assert np.all((proba > 0) & (proba < 1))

    # A damaged production copy is refused before torch ever reads it.
    model = home / "models" / "production" / "ctr_model" / registered.version / "model.pt"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0x01
    model.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match=r"model\.pt"):
        registry.load("ctr_model", "current")
