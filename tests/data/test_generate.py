from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from ml.config import load_config
from ml.data import generate as gen
from ml.data.generate import (
    GenerationError,
    generate_features,
    oracle_auc,
    true_probability,
)
from ml.data.schema import DEFAULT_SPEC, SPLITS, read_schema, spec_from_schema, split_path
from ml.metrics import roc_auc

CHECKOUT = Path(__file__).resolve().parents[2]


def _digests(features_dir: Path) -> dict[str, str]:
    return {
        p.relative_to(features_dir).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(features_dir.rglob("*"))
        if p.is_file()
    }


def test_generate_same_seed_is_byte_identical(tmp_path: Path) -> None:
    a = generate_features(tmp_path / "a", rows=2000, seed=3)
    b = generate_features(tmp_path / "b", rows=2000, seed=3)
    c = generate_features(tmp_path / "c", rows=2000, seed=4)
    da, db, dc = (_digests(Path(r["features_dir"])) for r in (a, b, c))
    assert da == db
    assert set(da) == {"schema.json", *(f"{s}/data.parquet" for s in SPLITS)}
    assert da["train/data.parquet"] != dc["train/data.parquet"]


def test_generate_chunks_are_row_groups_and_deterministic(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gen, "CHUNK_ROWS", 400)
    generate_features(tmp_path / "a", rows=2000, seed=1)
    generate_features(tmp_path / "b", rows=2000, seed=1)
    pf = pq.ParquetFile(split_path(tmp_path / "a", "train"))
    assert pf.num_row_groups == 4  # 1400 train rows in chunks of 400
    assert pf.metadata.num_rows == 1400
    assert _digests(tmp_path / "a") == _digests(tmp_path / "b")


def test_generate_columns_match_default_config(tiny_features_dir: Path) -> None:
    cfg = load_config(CHECKOUT / "config" / "model_config.yaml")
    assert cfg.features == DEFAULT_SPEC
    schema = read_schema(tiny_features_dir)
    assert spec_from_schema(schema) == cfg.features
    for split in SPLITS:
        arrow = pq.read_schema(split_path(tiny_features_dir, split))
        assert arrow.names == list(cfg.features.all_columns)
        assert str(arrow.field("click").type) == "int64"
        assert str(arrow.field("user_id").type) == "int64"
        assert str(arrow.field("device_type").type) == "string"
        assert str(arrow.field("item_price").type) == "double"


def test_generate_schema_records_generator_info(tiny_features_dir: Path) -> None:
    schema = json.loads((tiny_features_dir / "schema.json").read_text())
    assert schema["label"] == "click"
    assert schema["seed"] == 7
    assert schema["world_seed"] == gen.DEFAULT_WORLD_SEED
    assert schema["rows"] == {"train": 2100, "val": 450, "test": 450}
    assert sum(schema["positives"].values()) == round(schema["base_ctr"] * 3000)
    assert set(schema["oracle_auc"]) == {"val", "test"}


def test_generate_split_ratios(tmp_path: Path) -> None:
    report = generate_features(tmp_path / "f", rows=1001, seed=0, split=(0.5, 0.3, 0.2))
    assert report["rows"] == {"train": 500, "val": 300, "test": 201}
    for split, n in report["rows"].items():
        assert pq.ParquetFile(report["paths"][split]).metadata.num_rows == n


def test_generate_base_ctr_in_range(tmp_path: Path) -> None:
    report = generate_features(tmp_path / "f", rows=20_000, seed=11)
    assert 0.10 <= report["base_ctr"] <= 0.30
    for split in SPLITS:
        rate = report["positives"][split] / report["rows"][split]
        assert 0.10 <= rate <= 0.30, split


def test_true_probability_matches_generated_labels(tiny_features_dir: Path) -> None:
    df = pq.read_table(split_path(tiny_features_dir, "train")).to_pandas()
    p = true_probability(df)
    assert p.shape == (len(df),)
    assert np.all((p > 0) & (p < 1))
    # Calibrated: the mean true probability matches the click rate (2100 rows).
    assert abs(p.mean() - df["click"].mean()) < 0.03
    # And it is exactly the probability the labels were drawn from.
    world = gen.build_world(gen.DEFAULT_WORLD_SEED)
    table, p_gen = next(gen.generate_split(world, 7, 0, 2100))
    assert table.equals(pq.read_table(split_path(tiny_features_dir, "train")))
    np.testing.assert_allclose(p, p_gen, rtol=0, atol=1e-12)


def test_true_probability_depends_on_world_seed(tiny_features_dir: Path) -> None:
    df = pq.read_table(split_path(tiny_features_dir, "val")).to_pandas()
    assert not np.allclose(true_probability(df), true_probability(df, world_seed=1))


def test_true_probability_missing_column_is_error(tiny_features_dir: Path) -> None:
    df = pq.read_table(split_path(tiny_features_dir, "val")).to_pandas()
    with pytest.raises(ValueError, match="'ad_quality', which is missing"):
        true_probability(df.drop(columns=["ad_quality"]))


def test_true_probability_unknown_value_is_error(tiny_features_dir: Path) -> None:
    df = pq.read_table(split_path(tiny_features_dir, "val")).to_pandas()
    df.loc[0, "device_type"] = "smartwatch"
    with pytest.raises(ValueError, match="'device_type' has value 'smartwatch'"):
        true_probability(df)
    df = pq.read_table(split_path(tiny_features_dir, "val")).to_pandas()
    df.loc[0, "user_id"] = 0
    with pytest.raises(ValueError, match=r"'user_id' has value 0, outside"):
        true_probability(df)


def test_oracle_auc_beats_constant(tiny_features_dir: Path) -> None:
    auc = oracle_auc(tiny_features_dir, "test")
    schema = read_schema(tiny_features_dir)
    assert auc == pytest.approx(schema["oracle_auc"]["test"], abs=1e-6)
    labels = pq.read_table(split_path(tiny_features_dir, "test")).column("click").to_numpy()
    assert roc_auc(labels, np.full(len(labels), 0.2)) == 0.5
    assert auc > 0.7


def test_oracle_auc_without_world_seed_is_error(tmp_path: Path) -> None:
    (tmp_path / "schema.json").write_text('{"label": "click"}')
    with pytest.raises(ValueError, match="has no world_seed"):
        oracle_auc(tmp_path)


def test_oracle_auc_of_other_generator_version_is_error(tmp_path: Path) -> None:
    out = tmp_path / "f"
    generate_features(out, rows=300, seed=1)
    schema = json.loads((out / "schema.json").read_text())
    schema["generator"]["version"] = gen.GENERATOR_VERSION - 1
    (out / "schema.json").write_text(json.dumps(schema))
    with pytest.raises(ValueError, match=r"generator version 1, .*--overwrite"):
        oracle_auc(out)


def test_world_crosses_are_few_and_structured() -> None:
    # The signal sits in crosses over small fields with low rank, so 70k rows can learn it.
    world = gen.build_world(gen.DEFAULT_WORLD_SEED)
    assert world.cross_segment_category.shape == (gen.N_SEGMENTS, gen.N_ITEM_CATEGORIES)
    assert np.linalg.matrix_rank(world.cross_segment_category) == 2
    assert np.linalg.matrix_rank(world.cross_device_position) == 1
    # Each device's effect falls with the slot (monotone), at its own rate.
    assert (np.diff(world.cross_device_position, axis=1) < 0).all()
    assert len(np.unique(world.cross_device_position[:, 0].round(6))) == len(gen.DEVICE_TYPES)
    # High-cardinality ids carry only tiny effects.
    for effect in (world.user_effect, world.item_effect, world.advertiser_effect):
        assert effect.std() < 0.05


def test_generate_existing_dir_without_overwrite_is_error(tmp_path: Path) -> None:
    out = tmp_path / "f"
    generate_features(out, rows=300, seed=1)
    before = _digests(out)
    with pytest.raises(GenerationError, match=r"already exists and is not empty; pass --overwrite"):
        generate_features(out, rows=300, seed=2)
    assert _digests(out) == before
    generate_features(out, rows=300, seed=2, overwrite=True)
    assert _digests(out) != before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]


def test_generate_into_empty_existing_dir(tmp_path: Path) -> None:
    (tmp_path / "f").mkdir()
    report = generate_features(tmp_path / "f", rows=300, seed=1)
    assert Path(report["paths"]["test"]).is_file()


def test_generate_crash_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = gen._write_split
    calls = []

    def failing(*args: object, **kwargs: object) -> object:
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk full (simulated)")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(gen, "_write_split", failing)
    with pytest.raises(OSError, match="simulated"):
        generate_features(tmp_path / "f", rows=300, seed=1)
    assert list(tmp_path.iterdir()) == []

    # With an existing target, a failed overwrite keeps the old data intact.
    monkeypatch.setattr(gen, "_write_split", real)
    generate_features(tmp_path / "f", rows=300, seed=1)
    before = _digests(tmp_path / "f")
    calls.clear()
    monkeypatch.setattr(gen, "_write_split", failing)
    with pytest.raises(OSError, match="simulated"):
        generate_features(tmp_path / "f", rows=300, seed=2, overwrite=True)
    assert _digests(tmp_path / "f") == before
    assert [p.name for p in tmp_path.iterdir()] == ["f"]


def test_generate_removes_stale_temp_dir_of_dead_process(tmp_path: Path) -> None:
    stale = tmp_path / ".f.tmp-999999999-abcd1234"
    stale.mkdir()
    (stale / "junk").write_text("x")
    generate_features(tmp_path / "f", rows=300, seed=1)
    assert not stale.exists()


def test_generate_relative_out_resolves_against_base_dir(project_home: Path) -> None:
    report = generate_features("data/features/v1", rows=300, seed=1)
    assert Path(report["features_dir"]) == project_home / "data/features/v1"
    assert (project_home / "data/features/v1/schema.json").is_file()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"rows": 0}, "rows must be a positive integer, got 0"),
        ({"seed": -1}, "seed must be a non-negative integer"),
        ({"split": (0.7, 0.2, 0.2)}, "split fractions must sum to 1"),
        ({"split": (0.7, 0.3)}, "three fractions in"),
        ({"split": (1.0, 0.0, 0.0)}, "three fractions in"),
        ({"rows": 5}, "leaves split"),
    ],
)
def test_generate_bad_arguments_are_errors(
    tmp_path: Path, kwargs: dict[str, object], match: str
) -> None:
    with pytest.raises(GenerationError, match=match):
        generate_features(tmp_path / "f", **kwargs)  # type: ignore[arg-type]
    assert not (tmp_path / "f").exists()


def test_generate_out_is_a_file_is_error(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(GenerationError, match="exists and is not a directory"):
        generate_features(tmp_path / "f", rows=300)


def test_world_has_varied_cardinality_and_signal(tiny_features_dir: Path) -> None:
    world = gen.build_world(gen.DEFAULT_WORLD_SEED)
    assert len(world.user_cdf) == 100_000
    assert 10_000 <= len(world.item_cdf) <= 20_000
    df = pq.read_table(split_path(tiny_features_dir, "train")).to_pandas()
    assert df["device_type"].nunique() <= 4
    assert df["user_id"].nunique() > 300
    # Long tail: the most popular user is seen far more often than the median one.
    counts = df["user_id"].value_counts()
    assert counts.iloc[0] >= 5 * counts.median()
