"""Fixtures for the data tests; the tiny generated data comes from ``tests/conftest.py``."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ml.data.layout import split_path

Digests = Callable[[Path], dict[str, str]]


@pytest.fixture
def features(tmp_path: Path, tiny_features_dir: Path) -> Path:
    """A private, writable copy of the tiny generated features."""
    out = tmp_path / "features"
    shutil.copytree(tiny_features_dir, out)
    return out


def _digests(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def digests() -> Digests:
    """``digests(root)``: sha256 of every file under ``root`` by relative path."""
    return _digests


@pytest.fixture
def user_data(tmp_path: Path) -> Path:
    """A directory of a user's files: parquet in the layout, parquet beside it, notes."""
    root = tmp_path / "user_data"
    table = pa.table({"click": [0, 1, 0, 1], "shop": ["a", "b", "a", "c"], "x": [1.0, 2, 3, 4]})
    for split in ("train", "val", "test"):
        split_path(root, split).parent.mkdir(parents=True)
        pq.write_table(table, split_path(root, split))
    pq.write_table(table, root / "raw_clicks.parquet")
    (root / "NOTES.md").write_text("my precious data\n")
    (root / "nested").mkdir()
    (root / "nested" / "lookup.csv").write_text("id,name\n1,a\n")
    return root
