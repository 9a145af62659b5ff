from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from ml.config import load_config
from ml.data.generate import writer
from ml.data.generate.catalog import DEFAULT_WORLD_SEED
from ml.data.generate.world_default import DEFAULT_SPEC
from ml.data.generate.writer import generate_features
from ml.data.layout import SPLITS, read_schema, spec_from_schema, split_path
from ml.errors import GenerationError

CHECKOUT = Path(__file__).resolve().parents[3]
Digests = Callable[[Path], dict[str, str]]


def test_generate_same_seed_is_byte_identical(tmp_path: Path, digests: Digests) -> None:
    a = generate_features(tmp_path / "a", rows=2000, seed=3)
    b = generate_features(tmp_path / "b", rows=2000, seed=3)
    c = generate_features(tmp_path / "c", rows=2000, seed=4)
    da, db, dc = (digests(Path(r["features_dir"])) for r in (a, b, c))
    assert da == db
    assert set(da) == {"schema.json", *(f"{s}/data.parquet" for s in SPLITS)}
    assert da["train/data.parquet"] != dc["train/data.parquet"]


def test_generate_default_world_keeps_version_2_values(tmp_path: Path) -> None:
    # The rows generator version 2 wrote before the worlds were split out (as CSV text,
    # so a parquet writer upgrade does not matter).
    import hashlib

    generate_features(tmp_path / "f", rows=2000, seed=3)
    table = pq.read_table(split_path(tmp_path / "f", "train"))
    text = table.to_pandas().to_csv(index=False).encode()
    assert hashlib.sha256(text).hexdigest().startswith("19652a0e5c28d2c5")


def test_generate_chunks_are_row_groups_and_deterministic(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, digests: Digests
) -> None:
    monkeypatch.setattr(writer, "CHUNK_ROWS", 400)
    generate_features(tmp_path / "a", rows=2000, seed=1)
    generate_features(tmp_path / "b", rows=2000, seed=1)
    pf = pq.ParquetFile(split_path(tmp_path / "a", "train"))
    assert pf.num_row_groups == 4  # 1400 train rows in chunks of 400
    assert pf.metadata.num_rows == 1400
    assert digests(tmp_path / "a") == digests(tmp_path / "b")


def test_generate_columns_match_default_config(tiny_features_dir: Path) -> None:
    cfg = load_config(CHECKOUT / "config" / "model_config.yaml")
    assert cfg.features == DEFAULT_SPEC
    schema = read_schema(tiny_features_dir)
    assert schema is not None
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
    assert schema["world_seed"] == DEFAULT_WORLD_SEED
    assert schema["generator"]["name"] == "ml.data.generate"
    assert schema["generator"]["world"] == "default"
    assert schema["generator"]["world_version"] == 2
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


def test_generate_existing_output_needs_overwrite(tmp_path: Path, digests: Digests) -> None:
    out = tmp_path / "f"
    generate_features(out, rows=300, seed=1)
    before = digests(out)
    with pytest.raises(GenerationError, match=r"already exists and is not empty; pass --overwrite"):
        generate_features(out, rows=300, seed=2)
    assert digests(out) == before
    generate_features(out, rows=300, seed=2, overwrite=True)
    assert digests(out) != before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]


@pytest.mark.parametrize("overwrite", [False, True])
def test_generate_never_touches_user_data(
    user_data: Path, digests: Digests, overwrite: bool
) -> None:
    before = digests(user_data)
    with pytest.raises(GenerationError, match=r"user_data holds data that was not written by") as e:
        generate_features(user_data, rows=300, seed=1, overwrite=overwrite)
    assert "6 entries: NOTES.md, nested/, raw_clicks.parquet, test/, train/, val/" in str(e.value)
    assert "--overwrite included" in str(e.value)
    assert digests(user_data) == before
    assert sorted(p.name for p in user_data.parent.iterdir()) == ["user_data"]


def test_generate_refuses_generated_dir_with_extra_files(tmp_path: Path, digests: Digests) -> None:
    out = tmp_path / "f"
    generate_features(out, rows=300, seed=1)
    (out / "train" / "my_notes.txt").write_text("keep me")
    before = digests(out)
    with pytest.raises(GenerationError, match=r"also holds other files \(train/my_notes.txt\)"):
        generate_features(out, rows=300, seed=2, overwrite=True)
    assert digests(out) == before


def test_generate_into_empty_existing_dir(tmp_path: Path) -> None:
    (tmp_path / "f").mkdir()
    report = generate_features(tmp_path / "f", rows=300, seed=1)
    assert Path(report["paths"]["test"]).is_file()


def test_generate_crash_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, digests: Digests
) -> None:
    real = writer._write_split
    calls = []

    def failing(*args: object, **kwargs: object) -> object:
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk full (simulated)")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(writer, "_write_split", failing)
    with pytest.raises(OSError, match="simulated"):
        generate_features(tmp_path / "f", rows=300, seed=1)
    assert list(tmp_path.iterdir()) == []

    # With an existing target, a failed overwrite keeps the old data intact.
    monkeypatch.setattr(writer, "_write_split", real)
    generate_features(tmp_path / "f", rows=300, seed=1)
    before = digests(tmp_path / "f")
    calls.clear()
    monkeypatch.setattr(writer, "_write_split", failing)
    with pytest.raises(OSError, match="simulated"):
        generate_features(tmp_path / "f", rows=300, seed=2, overwrite=True)
    assert digests(tmp_path / "f") == before
    assert [p.name for p in tmp_path.iterdir()] == ["f"]


def test_generate_relative_out_resolves_against_base_dir(project_home: Path) -> None:
    report = generate_features("data/features/v1", rows=300, seed=1)
    assert Path(report["features_dir"]) == project_home / "data/features/v1"
    assert (project_home / "data/features/v1/schema.json").is_file()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"rows": 0}, "rows must be a positive integer, got 0"),
        ({"rows": True}, "rows must be a positive integer"),
        ({"seed": -1}, "seed must be a non-negative integer"),
        ({"world_seed": "x"}, "world_seed must be an integer"),
        ({"split": (0.7, 0.2, 0.2)}, "split fractions must sum to 1"),
        ({"split": (0.7, 0.3)}, "three fractions in"),
        ({"split": "abc"}, "three fractions like"),
        ({"split": (1.0, 0.0, 0.0)}, "three fractions in"),
        ({"rows": 5}, "leaves split"),
        ({"world": "mars"}, "unknown world 'mars'; choose one of default"),
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
    assert (tmp_path / "f").read_text() == "x"


def test_describe_names_world_and_oracle(project_home: Path) -> None:
    report = generate_features("data/features/v1", rows=600, seed=1)
    lines = writer.describe(report)
    assert lines[0].startswith("✅ train: data/features/v1/train/data.parquet (420 rows, CTR ")
    assert "oracle AUC val " in lines[3] and "world default (seed 20240101)" in lines[3]
