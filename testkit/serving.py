"""Tiny registered models for the serving tests and benchmarks.

:func:`build_registry` trains small models on a features directory and registers them
(with their data profiles) in a registry under ``root``; v1 is promoted to production.
"""

from __future__ import annotations

import shutil
import socket
from pathlib import Path
from typing import Any

#: Model sections of the versions built: different families, so their scores differ.
TINY_MODELS: tuple[dict[str, Any], ...] = (
    {"name": "deepfm", "embedding_dim": 4, "hidden_units": [8]},
    {"name": "logreg"},
    {"name": "dcnv2", "embedding_dim": 4, "hidden_units": [8], "cross_layers": 1},
)
NAME = "ctr_model"


def train_run(
    features_dir: Path, runs_dir: Path, model: dict[str, Any], *, epochs: int = 1, seed: int = 3
) -> Path:
    """Train one model on ``features_dir``; returns its complete run directory."""
    from ml.config import config_from_dict
    from ml.data.schema import DEFAULT_SPEC
    from ml.training.job import train

    cfg = config_from_dict(
        {
            "seed": seed,
            "features": DEFAULT_SPEC.to_dict(),
            "data": {"features_dir": str(features_dir)},
            "model": model,
            "training": {
                "batch_size": 512,
                "epochs": epochs,
                "learning_rate": 0.01,
                "device": "cpu",
                "num_threads": 1,
            },
            "output": {"runs_dir": str(runs_dir)},
        }
    )
    return Path(train(cfg, log=lambda _: None, progress=False).run_dir)


def build_registry(
    features_dir: Path, root: Path, models: tuple[dict[str, Any], ...] = TINY_MODELS
) -> Path:
    """Register one version per model (v1, v2, ...) under ``root/models``; promote v1."""
    from ml.monitoring.profile import profile_extra_files
    from ml.registry.model_registry import ModelRegistry

    registry = ModelRegistry(root / "models")
    for i, model in enumerate(models):
        run = train_run(features_dir, root / "runs", model, seed=3 + i)
        registry.register(run, NAME, extra_files=profile_extra_files(run))
    registry.promote_to_production(NAME, "v1", reason="test setup")
    return root / "models"


def copy_registry(template: Path, dest: Path) -> Path:
    """A private copy of a built registry (symlinks kept as links)."""
    shutil.copytree(template, dest, symlinks=True)
    return dest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
