from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from ml.data.generate.catalog import DEFAULT_WORLD_SEED, build_world, get_world
from ml.data.generate.truth import oracle_auc, true_probability
from ml.data.generate.writer import GENERATOR_VERSION, generate_features, generate_split
from ml.data.layout import read_schema, split_path
from ml.errors import DataError, DataLoadError
from ml.metrics import roc_auc


def test_true_probability_matches_generated_labels(tiny_features_dir: Path) -> None:
    df = pq.read_table(split_path(tiny_features_dir, "train")).to_pandas()
    p = true_probability(df)
    assert p.shape == (len(df),)
    assert np.all((p > 0) & (p < 1))
    # Calibrated: the mean true probability matches the click rate (2100 rows).
    assert abs(p.mean() - df["click"].mean()) < 0.03
    # And it is exactly the probability the labels were drawn from.
    world = get_world("default")
    table, p_gen = next(
        generate_split(world, build_world("default", DEFAULT_WORLD_SEED), 7, 0, 2100)
    )
    assert table.equals(pq.read_table(split_path(tiny_features_dir, "train")))
    np.testing.assert_allclose(p, p_gen, rtol=0, atol=1e-12)


def test_true_probability_depends_on_world_seed(tiny_features_dir: Path) -> None:
    df = pq.read_table(split_path(tiny_features_dir, "val")).to_pandas()
    assert not np.allclose(true_probability(df), true_probability(df, world_seed=1))


def test_true_probability_missing_column_is_error(tiny_features_dir: Path) -> None:
    df = pq.read_table(split_path(tiny_features_dir, "val")).to_pandas()
    with pytest.raises(DataError, match="'ad_quality', which is missing"):
        true_probability(df.drop(columns=["ad_quality"]))


def test_true_probability_unknown_value_is_error(tiny_features_dir: Path) -> None:
    df = pq.read_table(split_path(tiny_features_dir, "val")).to_pandas()
    df.loc[0, "device_type"] = "smartwatch"
    with pytest.raises(DataError, match="'device_type' has value 'smartwatch'"):
        true_probability(df)
    df = pq.read_table(split_path(tiny_features_dir, "val")).to_pandas()
    df.loc[0, "user_id"] = 0
    with pytest.raises(DataError, match=r"'user_id' has value 0, outside"):
        true_probability(df)
    df = pq.read_table(split_path(tiny_features_dir, "val")).to_pandas()
    df["user_id"] = df["user_id"].astype(float)
    with pytest.raises(DataError, match=r"'user_id' must hold integers"):
        true_probability(df)


def test_oracle_auc_matches_schema_and_beats_constant(tiny_features_dir: Path) -> None:
    auc = oracle_auc(tiny_features_dir, "test")
    schema = read_schema(tiny_features_dir)
    assert schema is not None
    assert auc == pytest.approx(schema["oracle_auc"]["test"], abs=1e-6)
    labels = pq.read_table(split_path(tiny_features_dir, "test")).column("click").to_numpy()
    assert roc_auc(labels, np.full(len(labels), 0.2)) == 0.5
    assert auc > 0.7


def test_oracle_auc_of_user_data_is_error(tmp_path: Path) -> None:
    (tmp_path / "schema.json").write_text('{"label": "click", "world_seed": 1}')
    with pytest.raises(DataError, match="oracle AUC exists only for data made by"):
        oracle_auc(tmp_path)


def test_oracle_auc_without_schema_is_error(tmp_path: Path) -> None:
    with pytest.raises(DataLoadError, match=r"schema.json does not exist"):
        oracle_auc(tmp_path)


def test_oracle_auc_bad_split_and_missing_file(tmp_path: Path) -> None:
    out = tmp_path / "f"
    generate_features(out, rows=300, seed=1)
    with pytest.raises(DataError, match="split must be one of"):
        oracle_auc(out, "holdout")
    split_path(out, "val").unlink()
    with pytest.raises(DataLoadError, match=r"val/data.parquet does not exist"):
        oracle_auc(out, "val")


@pytest.mark.parametrize(
    ("key", "value"), [("version", GENERATOR_VERSION - 1), ("world_version", 99)]
)
def test_oracle_auc_of_other_generator_version_is_error(
    tmp_path: Path, key: str, value: int
) -> None:
    out = tmp_path / "f"
    generate_features(out, rows=300, seed=1)
    schema = json.loads((out / "schema.json").read_text())
    schema["generator"][key] = value
    (out / "schema.json").write_text(json.dumps(schema))
    with pytest.raises(DataError, match=r"made by generator version .*--overwrite"):
        oracle_auc(out)


def test_oracle_auc_reads_version_2_schema_without_world(tmp_path: Path) -> None:
    # Data generated before worlds existed names no world: it is the default world.
    out = tmp_path / "f"
    report = generate_features(out, rows=600, seed=1)
    schema = json.loads((out / "schema.json").read_text())
    for key in ("world", "world_version", "world_description"):
        del schema["generator"][key]
    (out / "schema.json").write_text(json.dumps(schema))
    assert oracle_auc(out) == pytest.approx(report["oracle_auc"]["test"], abs=1e-6)
