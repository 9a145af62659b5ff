from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ml.errors import IntegrityError, InvalidNameError, ModelNotFoundError, VersionNotFoundError
from ml.registry import integrity
from ml.registry.model_registry import ModelRegistry
from testkit.registry import flip_byte

MakeRun = Callable[..., Path]


def test_verify_catches_one_flipped_byte(registry: ModelRegistry, make_run: MakeRun) -> None:
    v1 = registry.register(make_run()).path
    assert registry.verify("ctr_model", "v1").ok
    flip_byte(v1 / "model.pt", offset=123)
    report = registry.verify("ctr_model", "v1")
    assert not report.ok
    assert len(report.problems) == 1
    assert report.problems[0].startswith("model.pt: sha256")
    with pytest.raises(IntegrityError, match=r"version v1 under models/staging failed.*model\.pt"):
        registry.verify("ctr_model", "v1", raise_on_error=True)


def test_verify_names_missing_extra_and_linked_files(
    registry: ModelRegistry, make_run: MakeRun, tmp_path: Path
) -> None:
    v1 = registry.register(make_run()).path
    (v1 / "config.yaml").unlink()
    (v1 / "notes.txt").write_text("hi")
    (tmp_path / "m").write_bytes((v1 / "metrics.json").read_bytes())
    (v1 / "metrics.json").unlink()
    (v1 / "metrics.json").symlink_to(tmp_path / "m")
    problems = registry.verify("ctr_model", "v1").problems
    assert "config.yaml: missing" in problems
    assert "notes.txt: not listed in the manifest" in problems
    assert "metrics.json: not a regular file" in problems


def test_verify_reports_a_missing_manifest(
    registry: ModelRegistry, make_run: MakeRun, home: Path
) -> None:
    registry.register(make_run())
    (home / "models" / "staging" / "ctr_model" / "v2").mkdir()
    assert registry.verify("ctr_model", "v2").problems[0].startswith("MANIFEST.json: missing")


def test_verify_unknown_version_raises(registry: ModelRegistry, make_run: MakeRun) -> None:
    registry.register(make_run())
    with pytest.raises(VersionNotFoundError, match="version v5 not found"):
        registry.verify("ctr_model", "v5")


def test_check_version_dir_copies_while_checking(
    registry: ModelRegistry, make_run: MakeRun, tmp_path: Path
) -> None:
    v1 = registry.register(make_run()).path
    (tmp_path / "copy").mkdir()
    problems, sizes, files = integrity.check_version_dir(v1, copy_to=tmp_path / "copy")
    assert problems == [] and set(sizes) == set(files)
    assert (tmp_path / "copy" / "model.pt").read_bytes() == (v1 / "model.pt").read_bytes()


def test_load_resolves_refs_and_verifies_first(
    registry: ModelRegistry, make_run: MakeRun, home: Path, fake_predictor: list[Path]
) -> None:
    for _ in range(2):
        registry.register(make_run())
    registry.promote_to_production("ctr_model", "v1")
    registry.load("ctr_model", "current")
    registry.load("ctr_model", "latest")
    registry.load("ctr_model", "v1", stage="staging")
    models = home / "models"
    assert fake_predictor == [
        models / "production/ctr_model/v1/model.pt",
        models / "staging/ctr_model/v2/model.pt",
        models / "staging/ctr_model/v1/model.pt",
    ]
    flip_byte(models / "staging/ctr_model/v2/model.pt")
    with pytest.raises(IntegrityError, match=r"model\.pt"):
        registry.load("ctr_model", "latest")
    assert len(fake_predictor) == 3


def test_load_without_current_raises(
    registry: ModelRegistry, make_run: MakeRun, fake_predictor: list[Path]
) -> None:
    registry.register(make_run())
    with pytest.raises(ModelNotFoundError, match="no current production version"):
        registry.load("ctr_model", "current")
    with pytest.raises(InvalidNameError, match="'current' exists only in production"):
        registry.load("ctr_model", "current", stage="staging")


@pytest.mark.slow
def test_register_promote_load_real_checkpoint_scores_rows(
    tiny_features_dir: Path, registry: ModelRegistry, home: Path
) -> None:
    trainer = pytest.importorskip("ml.training.job")
    import numpy as np
    import pandas as pd

    from ml.config import config_from_dict
    from ml.data.generate.world_default import DEFAULT_SPEC

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
    flip_byte(model, len(model.read_bytes()) // 2)
    with pytest.raises(IntegrityError, match=r"model\.pt"):
        registry.load("ctr_model", "current")
