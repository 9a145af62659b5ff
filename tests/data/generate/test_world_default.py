from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from ml.data.generate import world_default as wd
from ml.data.generate.catalog import DEFAULT_WORLD_SEED, build_world
from ml.data.layout import split_path


def test_world_crosses_are_few_and_structured() -> None:
    # The signal sits in crosses over small fields with low rank, so 70k rows can learn it.
    world = build_world("default", DEFAULT_WORLD_SEED)
    assert world.cross_segment_category.shape == (wd.N_SEGMENTS, wd.N_ITEM_CATEGORIES)
    assert np.linalg.matrix_rank(world.cross_segment_category) == 2
    assert np.linalg.matrix_rank(world.cross_device_position) == 1
    # Each device's effect falls with the slot (monotone), at its own rate.
    assert (np.diff(world.cross_device_position, axis=1) < 0).all()
    assert len(np.unique(world.cross_device_position[:, 0].round(6))) == len(wd.DEVICE_TYPES)
    # High-cardinality ids carry only tiny effects.
    for effect in (world.user_effect, world.item_effect, world.advertiser_effect):
        assert effect.std() < 0.05


def test_world_has_varied_cardinality_and_signal(tiny_features_dir: Path) -> None:
    world = build_world("default", DEFAULT_WORLD_SEED)
    assert len(world.user_cdf) == 100_000
    assert 10_000 <= len(world.item_cdf) <= 20_000
    df = pq.read_table(split_path(tiny_features_dir, "train")).to_pandas()
    assert df["device_type"].nunique() <= 4
    assert df["user_id"].nunique() > 300
    # Long tail: the most popular user is seen far more often than the median one.
    counts = df["user_id"].value_counts()
    assert counts.iloc[0] >= 5 * counts.median()


def test_default_spec_is_the_shipped_config_columns() -> None:
    assert wd.DEFAULT_SPEC.label == "click"
    assert wd.DEFAULT_SPEC.categorical[:3] == ("user_id", "item_id", "advertiser_id")
    assert wd.DEFAULT_SPEC.numeric[-1] == "session_depth"
    assert wd.WORLD.spec == wd.DEFAULT_SPEC
