from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from ml.data.generate.world_default import DEFAULT_SPEC
from ml.data.layout import SPLITS, split_path
from ml.data.lineage import fingerprint, short
from ml.errors import FeatureValidationError


def test_fingerprint_identifies_data(features: Path, tiny_features_dir: Path) -> None:
    fp = fingerprint(features, DEFAULT_SPEC)
    assert fp == fingerprint(tiny_features_dir, DEFAULT_SPEC)
    assert set(fp["files"]) == {f"{s}/data.parquet" for s in SPLITS}
    assert all(len(h) == 64 for h in fp["files"].values())
    assert fp["schema"]["types"]["device_type"] == "string"
    table = pq.read_table(split_path(features, "val"))
    pq.write_table(table.slice(1), split_path(features, "val"))
    changed = fingerprint(features, DEFAULT_SPEC)
    assert changed["digest"] != fp["digest"]
    assert changed["files"]["train/data.parquet"] == fp["files"]["train/data.parquet"]


def test_fingerprint_missing_file_is_error(features: Path) -> None:
    split_path(features, "test").unlink()
    with pytest.raises(FeatureValidationError, match=r"test/data.parquet is missing"):
        fingerprint(features, DEFAULT_SPEC)


def test_fingerprint_unreadable_parquet_is_error(features: Path) -> None:
    split_path(features, "train").write_bytes(b"not parquet at all")
    with pytest.raises(FeatureValidationError, match=r"train/data.parquet is not readable parquet"):
        fingerprint(features, DEFAULT_SPEC)


def test_fingerprint_relative_dir_resolves_against_base_dir(
    project_home: Path, tiny_features_dir: Path
) -> None:
    import shutil

    shutil.copytree(tiny_features_dir, project_home / "feats")
    assert fingerprint("feats", DEFAULT_SPEC) == fingerprint(tiny_features_dir, DEFAULT_SPEC)


def test_short_first_line_only() -> None:
    assert short(ValueError("first\nsecond")) == "first"
    assert short(ValueError("")) == "ValueError"
    assert len(short(ValueError("x" * 500))) == 200
