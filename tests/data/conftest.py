"""Fixtures for the data tests; the tiny generated data comes from ``tests/conftest.py``."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

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


def write_mixed(root: Path, rows: int = 2000, row_group: int = 300, seed: int = 0) -> Path:
    """A features directory whose splits hold several row groups of mixed column types."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    for split, n in (("train", rows), ("val", rows // 4), ("test", rows // 4)):
        df = pd.DataFrame(
            {
                "click": rng.integers(0, 2, n),
                "shop": rng.choice(np.array(["a", "b", "c", "d", "e", None], dtype=object), n),
                "user": rng.integers(0, 60, n),
                "item": np.where(rng.random(n) < 0.1, np.nan, rng.integers(0, 30, n) * 1.0),
                "price": np.where(rng.random(n) < 0.05, np.nan, rng.lognormal(0, 1, n)),
                "age": rng.integers(18, 80, n),
                "unused": rng.random(n),
            }
        )
        split_path(root, split).parent.mkdir(parents=True, exist_ok=True)
        table = pa.Table.from_pandas(df, preserve_index=False)
        pq.write_table(table, split_path(root, split), row_group_size=row_group)
    return root


@pytest.fixture
def mixed_features(tmp_path: Path) -> Path:
    """:func:`write_mixed` data: 2,000 train rows in row groups of 300."""
    return write_mixed(tmp_path / "mixed")


@pytest.fixture
def mixed_spec() -> Any:
    """The columns of :func:`write_mixed`: string ids with nulls, integer ids, float ids
    with NaN, a float numeric with NaN and an integer numeric."""
    from ml.config import FeatureSpec

    return FeatureSpec("click", ("shop", "user", "item"), ("price", "age"))


@pytest.fixture
def write_mixed_data() -> Any:
    """The :func:`write_mixed` factory."""
    return write_mixed
