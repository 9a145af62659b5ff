"""A base directory with tiny features and a config with a small search space."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ml.config import Config, load_config
from testkit.tuning import tuning_config

CONFIG = "config/tune.yaml"


@pytest.fixture
def home(project_home: Path, tiny_features_dir: Path) -> Path:
    shutil.copytree(tiny_features_dir, project_home / "data" / "features" / "v1")
    (project_home / CONFIG).write_text(tuning_config(epochs=2))
    return project_home


@pytest.fixture
def cfg(home: Path) -> Config:
    return load_config(CONFIG)
