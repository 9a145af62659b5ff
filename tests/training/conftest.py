"""Tiny configs for the training tests; the data comes from ``tests/conftest.py``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ml.config import Config, config_from_dict


def tiny_config(features_dir: Path, runs_dir: Path, **sections: Any) -> Config:
    """A small, fast model on the generator's columns; ``sections`` override."""
    from ml.data.generate.world_default import DEFAULT_SPEC

    raw: dict[str, Any] = {
        "experiment_name": "ctr_model",
        "seed": 7,
        "features": DEFAULT_SPEC.to_dict(),
        "data": {"features_dir": str(features_dir), "min_frequency": 2},
        "model": {
            "name": "dcnv2",
            "embedding_dim": 4,
            "hidden_units": [16],
            "cross_layers": 1,
            "dropout": 0.2,
        },
        "training": {
            "learning_rate": 0.01,
            "weight_decay": 0.0,
            "monitor": "val_auc",
            "batch_size": 256,
            "epochs": 3,
            "patience": 2,
            "device": "cpu",
            # fp32 whatever the CPU (auto would pick bf16 on AVX-512 BF16 machines only).
            "precision": "fp32",
            # One thread: fast for tiny models and immune to oversubscribed CI cores.
            "num_threads": 1,
        },
        "output": {"runs_dir": str(runs_dir)},
    }
    for key, value in sections.items():
        raw[key] = {**raw[key], **value} if isinstance(value, dict) else value
    return config_from_dict(raw)


@pytest.fixture
def features_dir(tiny_features_dir: Path) -> Path:
    """The shared tiny generated data (tests/conftest.py; read-only)."""
    return tiny_features_dir


@pytest.fixture
def home(project_home: Path) -> Path:
    """A fresh base directory ($CTR_PIPELINE_HOME) per test, with a copy of config/."""
    return project_home


@pytest.fixture
def cfg(features_dir: Path, home: Path) -> Config:
    return tiny_config(features_dir, home / "experiments" / "runs")


@pytest.fixture
def make_config() -> Any:
    """The :func:`tiny_config` factory (test modules cannot import conftest in importlib mode)."""
    return tiny_config
