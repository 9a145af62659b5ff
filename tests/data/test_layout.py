from __future__ import annotations

import json
from pathlib import Path

import pytest

from ml.config import FeatureSpec
from ml.data import layout
from ml.data.generate.writer import generate_features
from ml.errors import ConfigError, DataLoadError, GenerationError


def test_split_path_resolves_against_base_dir(project_home: Path) -> None:
    assert layout.split_path("feats", "val") == project_home / "feats" / "val" / "data.parquet"
    assert layout.split_path("/abs/f", "test") == Path("/abs/f/test/data.parquet")
    assert layout.schema_path(None) == project_home / "data/features/v1/schema.json"


def test_is_default_dir(project_home: Path) -> None:
    assert layout.is_default_dir(None)
    assert layout.is_default_dir("data/features/v1")
    assert layout.is_default_dir(project_home / "data/features/v1/")
    assert not layout.is_default_dir("data/features/v2")


def test_missing_splits(tmp_path: Path) -> None:
    assert layout.missing_splits(tmp_path) == ["train", "val", "test"]
    layout.split_path(tmp_path, "val").parent.mkdir()
    layout.split_path(tmp_path, "val").write_bytes(b"x")
    assert layout.missing_splits(tmp_path) == ["train", "test"]


def test_read_schema_required_and_optional(tmp_path: Path) -> None:
    assert layout.read_schema(tmp_path, required=False) is None
    with pytest.raises(DataLoadError, match=r"schema file .*schema.json does not exist; "):
        layout.read_schema(tmp_path)
    (tmp_path / "schema.json").write_text("[1]")
    with pytest.raises(DataLoadError, match="must hold a JSON object"):
        layout.read_schema(tmp_path, required=False)
    (tmp_path / "schema.json").write_text("{oops")
    with pytest.raises(DataLoadError, match="is not valid JSON"):
        layout.read_schema(tmp_path)


def test_write_and_read_schema_round_trip(tmp_path: Path) -> None:
    spec = FeatureSpec(label="y", categorical=("a",), numeric=("x",))
    path = layout.write_schema(tmp_path, {**spec.to_dict(), "rows": {"train": 3}})
    assert path == tmp_path / "schema.json"
    schema = layout.read_schema(tmp_path)
    assert schema is not None and layout.spec_from_schema(schema) == spec


def test_spec_from_schema_bad_spec_is_error() -> None:
    with pytest.raises(ConfigError, match=r"schema\.json"):
        layout.spec_from_schema({"label": "y", "categorical": [], "numeric": []})


def test_writer_of_generated_imported_and_user_data(tmp_path: Path, user_data: Path) -> None:
    generate_features(tmp_path / "gen", rows=300, seed=1)
    assert layout.writer_of(tmp_path / "gen") == layout.GENERATOR
    assert layout.writer_of(user_data) is None
    (user_data / "schema.json").write_text(json.dumps({"imported": {"name": "ml.data.importer"}}))
    assert layout.writer_of(user_data) == layout.IMPORTER
    (user_data / "schema.json").write_text(json.dumps({"generator": {"name": "my-tool"}}))
    assert layout.writer_of(user_data) is None
    (user_data / "schema.json").write_text("not json")
    assert layout.writer_of(user_data) is None


def test_recorded_oracle_auc_only_for_generated_data(tmp_path: Path, user_data: Path) -> None:
    report = generate_features(tmp_path / "gen", rows=600, seed=1)
    assert layout.recorded_oracle_auc(tmp_path / "gen") == report["oracle_auc"]["test"]
    assert layout.recorded_oracle_auc(tmp_path / "gen", "train") is None
    assert layout.recorded_oracle_auc(user_data) is None
    (user_data / "schema.json").write_text(json.dumps({"oracle_auc": {"test": 0.9}}))
    assert layout.recorded_oracle_auc(user_data) is None
    (user_data / "schema.json").write_text("{broken")
    assert layout.recorded_oracle_auc(user_data) is None


def test_foreign_entries_and_describe_contents(tmp_path: Path) -> None:
    generate_features(tmp_path / "gen", rows=300, seed=1)
    root = tmp_path / "gen"
    assert layout.foreign_entries(root) == []
    (root / "extra").mkdir()
    (root / "val" / "old.parquet").write_bytes(b"")
    assert layout.foreign_entries(root) == ["extra/", "val/old.parquet"]
    assert layout.describe_contents(root) == "5 entries: extra/, schema.json, test/, train/, val/"
    assert layout.describe_contents(root, limit=2) == "5 entries: extra/, schema.json, ..."


def _check(target: Path, overwrite: bool = False, may_replace: tuple[str, ...] = ("generator",)):  # type: ignore[no-untyped-def]
    layout.check_target(
        target,
        overwrite=overwrite,
        may_replace=may_replace,
        error=GenerationError,
        command="ctr-pipeline data generate",
    )


def test_check_target_allows_missing_and_empty(tmp_path: Path) -> None:
    _check(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    _check(tmp_path / "empty")


def test_check_target_refuses_file_and_symlink(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(GenerationError, match="exists and is not a directory"):
        _check(tmp_path / "file", overwrite=True)
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(GenerationError, match="exists and is not a directory"):
        _check(tmp_path / "link", overwrite=True)


def test_check_target_refuses_user_data_even_with_overwrite(user_data: Path) -> None:
    with pytest.raises(GenerationError, match=r"never writes into or deletes such a directory"):
        _check(user_data, overwrite=True)


def test_check_target_refuses_other_tools_output(tmp_path: Path) -> None:
    generate_features(tmp_path / "gen", rows=300, seed=1)
    with pytest.raises(
        GenerationError, match=r"holds data written by `ctr-pipeline data generate`"
    ):
        _check(tmp_path / "gen", overwrite=True, may_replace=("importer",))
    _check(tmp_path / "gen", overwrite=True, may_replace=("importer", "generator"))
    with pytest.raises(GenerationError, match="pass --overwrite"):
        _check(tmp_path / "gen")
