"""ml.evaluation.champion: production and challenger scored on the same rows."""

from __future__ import annotations

import shutil
from pathlib import Path

from ml.config import load_config
from ml.evaluation.champion import compare_with_production
from ml.registry.model_registry import ModelRegistry
from ml.training.job import train
from testkit.airflow import small_config


def test_no_production_model_means_no_comparison(project_home: Path, tmp_path: Path) -> None:
    assert compare_with_production(ModelRegistry(), "ctr_model", tmp_path, tmp_path) is None


def test_compare_scores_both_models_on_the_challengers_split(
    project_home: Path, tiny_features_dir: Path
) -> None:
    data = project_home / "data" / "features" / "v1"
    shutil.copytree(tiny_features_dir, data)
    (project_home / "config" / "small.yaml").write_text(small_config(epochs=1))
    cfg = load_config("config/small.yaml")
    first = train(cfg, log=lambda _: None)
    registry = ModelRegistry()
    registry.promote_to_production("ctr_model", registry.register(first.run_dir).version)
    second = train(cfg.replace(training={"epochs": 2}), log=lambda _: None)
    comparison = compare_with_production(registry, "ctr_model", second.run_dir, data)
    assert comparison is not None
    assert comparison.champion.version == "v1"
    assert abs(comparison.champion.test_auc - first.metrics["test_auc"]) < 1e-6
    assert abs(comparison.challenger["auc"] - second.metrics["test_auc"]) < 1e-6
    assert comparison.to_dict()["challenger_test_auc"] == comparison.challenger["auc"]
