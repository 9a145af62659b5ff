from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pytest

from ml.data.generate.world import (
    Column,
    WorldDef,
    cdf_of,
    rows_from_frame,
    sample,
    sigmoid,
    to_table,
    tune_intercept,
    zipf_cdf,
)
from ml.errors import DataError, GenerationError


@dataclass(frozen=True)
class _Params:
    effect: np.ndarray
    intercept: float = 0.0


def _toy(target_ctr: float = 0.1) -> WorldDef:
    return WorldDef(
        name="toy",
        version=1,
        description="toy",
        target_ctr=target_ctr,
        columns=(
            Column.strings("color", ("red", "blue")),
            Column.ids("shop", 3),
            Column.number("n", integer=True),
            Column.number("x", nullable=True),
        ),
        build=lambda rng: _Params(rng.normal(0, 1, 3)),
        draw=lambda p, rng, n: {
            "color": rng.integers(0, 2, n),
            "shop": rng.integers(0, 3, n),
            "n": rng.integers(0, 5, n).astype(float),
            "x": np.where(rng.random(n) < 0.2, np.nan, rng.random(n)),
        },
        logit=lambda p, r: p.intercept + p.effect[r["shop"]],
        salt=1,
    )


def test_zipf_cdf_is_long_tailed_and_normalised() -> None:
    cdf = zipf_cdf(np.random.default_rng(0), 1000, 1.1)
    assert cdf[-1] == 1.0 and np.all(np.diff(cdf) > 0)
    probs = np.sort(np.diff(cdf, prepend=0.0))[::-1]
    assert probs[0] > 100 * probs[-1]


def test_sample_follows_weights() -> None:
    draws = sample(cdf_of([1, 3]), np.random.default_rng(0), 40_000)
    assert set(np.unique(draws)) == {0, 1}
    assert abs(draws.mean() - 0.75) < 0.01


def test_tune_intercept_hits_target_ctr() -> None:
    world = _toy(0.07)
    params = tune_intercept(world, world.build(np.random.default_rng(0)), 3)
    rows = world.draw(params, np.random.default_rng(1), 100_000)
    assert abs(sigmoid(world.logit(params, rows)).mean() - 0.07) < 0.005


def test_to_table_and_back_round_trip() -> None:
    world = _toy()
    rows = world.draw(None, np.random.default_rng(0), 50)
    table = to_table(world, rows, np.zeros(50, dtype=bool))
    assert table.schema.names == ["click", "color", "shop", "n", "x"]
    assert table.schema.field("color").type == pa.string()
    assert table.schema.field("n").type == pa.int64()
    assert table["x"].null_count == int(np.isnan(rows["x"]).sum()) > 0
    assert table["shop"].to_numpy().min() >= 1  # ids are stored from 1
    back = rows_from_frame(world, table.to_pandas())
    for name in ("color", "shop", "n"):
        np.testing.assert_array_equal(back[name], rows[name])
    np.testing.assert_array_equal(np.isnan(back["x"]), np.isnan(rows["x"]))


def test_world_spec_from_columns() -> None:
    spec = _toy().spec
    assert spec.categorical == ("color", "shop") and spec.numeric == ("n", "x")


def test_world_columns_numeric_before_categorical_is_error() -> None:
    with pytest.raises(GenerationError, match="list categorical columns before numeric"):
        WorldDef(
            "bad", 1, "", 0.1, (Column.number("x"), Column.ids("a", 2)),
            build=lambda rng: None, draw=lambda p, r, n: {}, logit=lambda p, r: r, salt=0,
        )  # fmt: skip


def test_rows_from_frame_missing_column_names_world() -> None:
    with pytest.raises(DataError, match=r"columns of world 'toy'"):
        rows_from_frame(_toy(), {"color": ["red"]})
