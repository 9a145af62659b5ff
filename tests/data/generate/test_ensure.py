from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from ml.data.generate.ensure import ensure_default_features
from ml.data.generate.writer import generate_features
from ml.data.layout import split_path

Digests = Callable[[Path], dict[str, str]]
DEFAULT = "data/features/v1"


def test_ensure_generates_missing_default_dir(project_home: Path) -> None:
    result = ensure_default_features(None, rows=600, seed=3)
    assert result.generated and result.action == "generated"
    assert result.features_dir == project_home / DEFAULT
    assert split_path(DEFAULT, "test").is_file()
    assert result.report is not None and sum(result.report["rows"].values()) == 600
    lines = result.lines()
    assert lines[0] == f"📦 No features at {DEFAULT}: generated 600 rows"
    assert lines[1].startswith("✅ train: data/features/v1/train/data.parquet (420 rows")


def test_ensure_generates_into_empty_default_dir(project_home: Path) -> None:
    (project_home / DEFAULT).mkdir(parents=True)
    assert ensure_default_features(DEFAULT, rows=300).generated


def test_ensure_keeps_complete_default_data(project_home: Path, digests: Digests) -> None:
    generate_features(DEFAULT, rows=300, seed=1)
    before = digests(project_home / DEFAULT)
    result = ensure_default_features(str(project_home / DEFAULT), rows=900, seed=2)
    assert result.action == "present" and result.report is None
    assert result.lines() == [f"📦 Using the existing features in {DEFAULT}"]
    assert digests(project_home / DEFAULT) == before


def test_ensure_regenerates_incomplete_generator_output(project_home: Path) -> None:
    generate_features(DEFAULT, rows=300, seed=1)
    split_path(DEFAULT, "val").unlink()
    result = ensure_default_features(DEFAULT, rows=300, seed=1)
    assert result.generated and split_path(DEFAULT, "val").is_file()


@pytest.mark.parametrize("complete", [True, False])
def test_ensure_never_touches_user_data_in_default_dir(
    project_home: Path, user_data: Path, digests: Digests, complete: bool
) -> None:
    target = project_home / DEFAULT
    shutil.copytree(user_data, target)
    if not complete:
        shutil.rmtree(target / "val")
    before = digests(target)
    result = ensure_default_features(DEFAULT, rows=300)
    assert result.action == ("present" if complete else "user_data")
    assert digests(target) == before
    assert sorted(p.name for p in target.parent.iterdir()) == ["v1"]
    if not complete:
        assert "holds files the generator did not write" in result.lines()[0]


def test_ensure_never_generates_outside_default_dir(project_home: Path) -> None:
    result = ensure_default_features("data/mine", rows=300)
    assert result.action == "not_default" and not result.generated
    assert not (project_home / "data").exists()
    assert result.lines() == [
        "📦 Using the configured features in data/mine (it does not exist); never generated"
    ]


def test_ensure_leaves_user_data_elsewhere_alone(user_data: Path, digests: Digests) -> None:
    before = digests(user_data)
    assert ensure_default_features(user_data, rows=300).action == "not_default"
    assert digests(user_data) == before
