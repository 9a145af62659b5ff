"""A registry of three tiny versions of ``ctr_model`` (v1 deepfm in production, v2 logreg,
v3 dcnv2 in staging), built once per session; tests take private copies."""

from __future__ import annotations

from pathlib import Path

import pytest

from testkit.serving import build_registry, copy_registry


@pytest.fixture(scope="session")
def registry_template(tiny_features_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_registry(tiny_features_dir, tmp_path_factory.mktemp("serving_world"))


@pytest.fixture
def registry_dir(registry_template: Path, tmp_path: Path) -> Path:
    """A private copy of the template registry for one test."""
    return copy_registry(registry_template, tmp_path / "models")
