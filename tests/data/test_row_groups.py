"""ml.data.row_groups: a split read a row group at a time, and its bad input named."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from ml.config import FeatureSpec
from ml.data.layout import split_path
from ml.data.loading import load_split
from ml.data.row_groups import iter_split, sample_split, split_kinds, split_rows
from ml.errors import DataLoadError


def test_slices_cover_the_split_in_order_like_load_split(
    mixed_features: Path, mixed_spec: FeatureSpec
) -> None:
    chunks = list(iter_split(mixed_features, "train", mixed_spec, batch_rows=128))
    assert {c.row_group for c in chunks} == set(range(7))  # 2,000 rows in groups of 300
    assert max(len(c.frame) for c in chunks) <= 128
    assert split_rows(mixed_features, "train") == 2000
    streamed = pd.concat([c.frame for c in chunks], ignore_index=True)
    whole = load_split(mixed_features, "train", mixed_spec)
    assert list(streamed.columns) == list(whole.columns)
    for col in whole.columns:
        a = streamed[col].astype(object).where(streamed[col].notna(), None).tolist()
        b = whole[col].astype(object).where(whole[col].notna(), None).tolist()
        assert [float(v) if isinstance(v, float) else v for v in a] == [
            float(v) if isinstance(v, float) else v for v in b
        ], col
    assert "row group 3" in chunks[10].where


def _corrupt_row_group(path: Path, rg: int) -> None:
    """Overwrite the page headers of one row group's column chunks with garbage."""
    md = pq.ParquetFile(path).metadata
    raw = bytearray(path.read_bytes())
    for c in range(md.row_group(rg).num_columns):
        col = md.row_group(rg).column(c)
        start = col.dictionary_page_offset or col.data_page_offset
        raw[start : start + 16] = b"\xff" * 16
    path.write_bytes(bytes(raw))


def test_a_corrupt_row_group_names_the_file_and_the_row_group(
    mixed_features: Path, mixed_spec: FeatureSpec
) -> None:
    path = split_path(mixed_features, "train")
    _corrupt_row_group(path, 2)
    chunks = iter_split(mixed_features, "train", mixed_spec)
    where = r"train/data\.parquet, row group 2 of 7 cannot be read"
    with pytest.raises(DataLoadError, match=where):
        list(chunks)


def test_a_truncated_file_names_the_file(mixed_features: Path, mixed_spec: FeatureSpec) -> None:
    path = split_path(mixed_features, "val")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DataLoadError, match=r"val/data\.parquet is not a readable parquet file"):
        list(iter_split(mixed_features, "val", mixed_spec))


def test_a_schema_change_mid_stream_names_file_row_group_and_column(
    mixed_features: Path, mixed_spec: FeatureSpec
) -> None:
    # val's user is an integer; the stream expects the train split's kinds
    kinds = split_kinds(mixed_features, "train", mixed_spec) | {"user": "string"}
    with pytest.raises(
        DataLoadError, match=r"val/data\.parquet, row group 0 of 2: column 'user' is integer"
    ):
        list(iter_split(mixed_features, "val", mixed_spec, expect=kinds))


def test_a_missing_column_is_named(mixed_features: Path) -> None:
    spec = FeatureSpec("click", ("shop", "nope"), ())
    with pytest.raises(DataLoadError, match=r"has no column\(s\) \['nope'\]"):
        list(iter_split(mixed_features, "train", spec))


def test_sample_split_is_the_whole_split_or_a_seeded_sample(
    mixed_features: Path, mixed_spec: FeatureSpec
) -> None:
    whole = sample_split(mixed_features, "train", mixed_spec, 5000, seed=0)
    assert len(whole) == 2000
    part = sample_split(mixed_features, "train", mixed_spec, 500, seed=1)
    assert len(part) == 500 and list(part.columns) == list(whole.columns)
    assert isinstance(part["shop"].dtype, pd.CategoricalDtype)
    again = sample_split(mixed_features, "train", mixed_spec, 500, seed=1)
    pd.testing.assert_frame_equal(part, again)
    # rows of the split, not made up: every sampled (user, age) pair occurs in it
    pairs = set(zip(whole["user"], whole["age"], strict=True))
    assert set(zip(part["user"], part["age"], strict=True)) <= pairs
