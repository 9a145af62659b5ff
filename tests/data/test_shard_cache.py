"""ml.data.shard_cache: built once, reused only for the same data and preprocessing,
rebuilt when a shard is truncated, and out of disk is a retryable error."""

from __future__ import annotations

import errno
import shutil
from collections import namedtuple
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ml.config import FeatureSpec
from ml.data import shard_cache as sc
from ml.data.loading import load_split
from ml.data.preprocessing import Preprocessor
from ml.errors import DataLoadError, RetryableError, StorageError

PRE_CONFIG = {"features": "mixed", "min_frequency": 2}


class Fits:
    """A ``fit`` callback that counts its calls."""

    def __init__(self, features: Path, spec: FeatureSpec) -> None:
        self.features, self.spec, self.calls = features, spec, 0

    def __call__(self) -> Preprocessor:
        self.calls += 1
        df = load_split(self.features, "train", self.spec)
        return Preprocessor.fit(df, self.spec, min_frequency=2, numeric_bins=4)


def _build(features: Path, spec: FeatureSpec, root: Path, fits: Fits, **kw: Any) -> sc.ShardCache:
    args = {"digest": "d1", "pre_config": PRE_CONFIG, "lines": [], "pre": None} | kw
    return sc.open_or_build(
        features,
        args["digest"],
        args["pre_config"],
        args.get("splits", ("train", "val")),
        fits,
        args["lines"].append,
        pre=args["pre"],
        root=root,
        shard_rows=700,
    )


def test_the_shards_hold_the_encoded_rows(
    mixed_features: Path, mixed_spec: FeatureSpec, tmp_path: Path
) -> None:
    fits = Fits(mixed_features, mixed_spec)
    cache = _build(mixed_features, mixed_spec, tmp_path / "cache", fits)
    pre = cache.preprocessor
    df = load_split(mixed_features, "train", mixed_spec)
    cat, num = pre.transform(df)
    expected = sc.pack(cat, num, df["click"].to_numpy())
    shards = cache.shards("train")
    assert [s.rows for s in shards] == [700, 700, 600]
    got = np.concatenate([np.load(s.path, mmap_mode="r") for s in shards])  # plain .npy
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(shards[1].read(10, 20), expected[710:720])
    info = cache.split("train")
    assert info["rows"] == 2000 and info["positives"] == int(df["click"].sum())
    assert info["oov"] == (cat[:, : len(pre.fields)] == 0).sum(axis=0).tolist()
    assert not [p for p in (tmp_path / "cache").iterdir() if p.name.startswith(".tmp")]


def test_reused_for_the_same_data_and_config_only(
    mixed_features: Path, mixed_spec: FeatureSpec, tmp_path: Path
) -> None:
    fits, root = Fits(mixed_features, mixed_spec), tmp_path / "cache"
    first = _build(mixed_features, mixed_spec, root, fits)
    lines: list[str] = []
    again = _build(mixed_features, mixed_spec, root, fits, lines=lines)
    assert fits.calls == 1 and again.root == first.root
    assert any("Shard cache reused" in line for line in lines)
    other_config = _build(mixed_features, mixed_spec, root, fits, pre_config={"x": 1})
    other_data = _build(mixed_features, mixed_spec, root, fits, digest="d2")
    assert fits.calls == 3
    assert len({first.root, other_config.root, other_data.root}) == 3
    # a resumed run whose preprocessor differs from the cached one gets its own cache
    mine = Preprocessor.fit(
        load_split(mixed_features, "train", mixed_spec), mixed_spec, min_frequency=50
    )
    own = _build(mixed_features, mixed_spec, root, fits, pre=mine)
    assert own.root != first.root and own.manifest["preprocessor"] == mine.state_dict()


def test_a_cache_lacking_a_split_is_replaced_by_one_that_has_it(
    mixed_features: Path, mixed_spec: FeatureSpec, tmp_path: Path
) -> None:
    """A tuning trial caches train and val only; a later run that scores test too gets a
    cache with test (the old one is moved aside, not returned without it)."""
    fits, root = Fits(mixed_features, mixed_spec), tmp_path / "cache"
    first = _build(mixed_features, mixed_spec, root, fits)
    assert "test" not in first.manifest["splits"]
    full = _build(mixed_features, mixed_spec, root, fits, splits=("train", "val", "test"))
    assert full.root == first.root and fits.calls == 2
    assert full.split("test")["rows"] == len(load_split(mixed_features, "test", mixed_spec))
    assert full.shards("test")[0].read(0, 5).shape == (5, 8)
    again = _build(mixed_features, mixed_spec, root, fits)  # train and val: reused
    assert fits.calls == 2 and "test" in again.manifest["splits"]
    assert not [p for p in root.iterdir() if p.name.startswith(".tmp")]


def test_a_truncated_shard_is_named_and_the_cache_rebuilt(
    mixed_features: Path, mixed_spec: FeatureSpec, tmp_path: Path
) -> None:
    fits, root = Fits(mixed_features, mixed_spec), tmp_path / "cache"
    cache = _build(mixed_features, mixed_spec, root, fits)
    shard = cache.shards("train")[1]
    with open(shard.path, "r+b") as f:
        f.truncate(shard.path.stat().st_size - 100)
    with pytest.raises(DataLoadError, match=r"train/00001\.npy is truncated"):
        shard.read(0, shard.rows)
    lines: list[str] = []
    rebuilt = _build(mixed_features, mixed_spec, root, fits, lines=lines)
    assert any("00001.npy is truncated or missing" in line for line in lines)
    assert fits.calls == 2 and rebuilt.shards("train")[1].read(0, 700).shape == (700, 8)


def test_too_little_disk_is_a_retryable_error_saying_what_it_needs(
    mixed_features: Path, mixed_spec: FeatureSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda _: usage(10**6, 10**6 - 1000, 1000))
    with pytest.raises(StorageError, match=r"needs \d+\.\d MB at .* but 0\.0 MB is free") as err:
        _build(mixed_features, mixed_spec, tmp_path / "cache", Fits(mixed_features, mixed_spec))
    assert isinstance(err.value, RetryableError) and err.value.errno == errno.ENOSPC


def test_the_disk_filling_up_while_writing_leaves_nothing_behind(
    mixed_features: Path, mixed_spec: FeatureSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(self: Any, packed: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(sc._ShardWriter, "write", full)
    root = tmp_path / "cache"
    with pytest.raises(StorageError, match=r"shard cache \(it needs .*No space left on device"):
        _build(mixed_features, mixed_spec, root, Fits(mixed_features, mixed_spec))
    assert list(root.iterdir()) == []
