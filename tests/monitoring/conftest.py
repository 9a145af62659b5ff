"""A registry whose production version carries the tiny data's profile, and data worlds:
an unshifted one (the same generator world, other rows) and a shifted copy."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml.data.generate.world_default import DEFAULT_SPEC
from ml.monitoring.profile import build_profile
from testkit.drift import shifted_copy


@pytest.fixture(scope="session")
def unshifted_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from ml.data.generate.writer import generate_features

    out = tmp_path_factory.mktemp("unshifted") / "features"
    generate_features(out, rows=3000, seed=8)
    return out


@pytest.fixture(scope="session")
def shifted_dir(tiny_features_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shifted_copy(tiny_features_dir, tmp_path_factory.mktemp("shifted") / "features")


@pytest.fixture(scope="session")
def tiny_profile(tiny_features_dir: Path) -> dict:
    return build_profile(tiny_features_dir, DEFAULT_SPEC)
