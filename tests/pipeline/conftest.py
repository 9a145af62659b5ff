"""A base directory with tiny features and a small config, and pipeline-run factories."""

from __future__ import annotations

import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from ml.pipeline.params import Params, PipelineRun
from testkit.airflow import small_config

DATE = datetime(2024, 11, 15, tzinfo=timezone.utc)
#: Gates every tiny model passes.
LOOSE = {"min_auc": 0.0, "min_accuracy": 0.0, "max_auc_drop": 1.0, "baseline_tolerance": None}


@pytest.fixture
def home(project_home: Path, tiny_features_dir: Path) -> Path:
    shutil.copytree(tiny_features_dir, project_home / "data" / "features" / "v1")
    (project_home / "config" / "small.yaml").write_text(small_config(epochs=2))
    return project_home


@pytest.fixture
def params() -> Any:
    """``params(**overrides)``: loose gates, the small config, 1 epoch."""

    def make(**overrides: Any) -> Params:
        raw = {"config_path": "config/small.yaml", "epochs": 1, **LOOSE, **overrides}
        return Params.from_mapping(raw)

    return make


@pytest.fixture
def pipeline_run() -> Any:
    """``pipeline_run(run_id, logical_date=DATE)``: a training_pipeline DAG run."""

    def make(run_id: str = "manual__1", logical_date: datetime | None = DATE) -> PipelineRun:
        return PipelineRun("training_pipeline", run_id, logical_date, logical_date)

    return make
