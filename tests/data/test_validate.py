from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ml.config import FeatureSpec
from ml.data.generate.world_default import DEFAULT_SPEC
from ml.data.layout import SPLITS, split_path
from ml.data.lineage import fingerprint
from ml.data.validate import ValidationReport, format_size, validate_features
from ml.errors import ConfigError, FeatureValidationError


def _rewrite(features: Path, split: str, change: object) -> None:
    path = split_path(features, split)
    table = pq.read_table(path)
    table = change(table)  # type: ignore[operator]
    pq.write_table(table, path)


def _set_column(name: str, values: pa.Array):  # type: ignore[no-untyped-def]
    def change(table: pa.Table) -> pa.Table:
        idx = table.schema.get_field_index(name)
        return table.set_column(idx, name, values)

    return change


def _write(features: Path, tables: dict[str, pa.Table]) -> None:
    for split, table in tables.items():
        path = split_path(features, split)
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path)


def _problems(features: Path, spec: FeatureSpec = DEFAULT_SPEC, **kw: str) -> list[str]:
    with pytest.raises(FeatureValidationError) as info:
        validate_features(features, spec, **kw)
    assert isinstance(info.value, ValueError)
    return info.value.problems


def test_validate_generated_data_passes(tiny_features_dir: Path) -> None:
    report = validate_features(tiny_features_dir, DEFAULT_SPEC)
    assert isinstance(report, ValidationReport)
    assert list(report.splits) == list(SPLITS)
    train = report.splits["train"]
    assert train.rows == 2100
    assert train.path == split_path(tiny_features_dir, "train")
    assert train.size_bytes == train.path.stat().st_size
    labels = pq.read_table(train.path, columns=["click"]).column(0).to_numpy()
    assert train.positives == int(labels.sum())
    assert report.warnings == []


def test_validate_report_lines_use_spec_format(project_home: Path) -> None:
    from ml.data.generate.writer import generate_features

    generate_features("data/features/v1", rows=1000, seed=2)
    report = validate_features("data/features/v1", DEFAULT_SPEC)
    lines = report.lines()
    assert len(lines) == 3
    size = format_size(report.splits["train"].size_bytes)
    assert lines[0].startswith(f"✅ train data: data/features/v1/train/data.parquet ({size})")
    assert "700 rows" in lines[0]
    assert lines[1].startswith("✅ val data: data/features/v1/val/data.parquet (")
    assert lines[2].startswith("✅ test data: data/features/v1/test/data.parquet (")


def test_format_size() -> None:
    assert format_size(512) == "512 B"
    assert format_size(240_128) == "234.5 KB"
    assert format_size(3 * 1024**2) == "3.0 MB"


def test_validate_missing_directory(tmp_path: Path) -> None:
    problems = _problems(tmp_path / "nope")
    assert len(problems) == 1
    assert "nope does not exist" in problems[0]
    assert "ctr-pipeline data generate" in problems[0]


def test_validate_missing_file_and_split_dir(features: Path) -> None:
    split_path(features, "val").unlink()
    shutil.rmtree(features / "test")
    problems = _problems(features)
    assert len(problems) == 2
    assert "val data file" in problems[0] and "val/data.parquet is missing" in problems[0]
    assert "there is no test/ directory" in problems[1]


def test_validate_empty_file(features: Path) -> None:
    split_path(features, "test").write_bytes(b"")
    (problem,) = _problems(features)
    assert "test/data.parquet is empty (0 bytes)" in problem


def test_validate_zero_rows(features: Path) -> None:
    _rewrite(features, "val", lambda t: t.slice(0, 0))
    (problem,) = _problems(features)
    assert "val/data.parquet has 0 rows" in problem


def test_validate_corrupt_file(features: Path) -> None:
    split_path(features, "train").write_bytes(b"this is not parquet at all" * 10)
    (problem,) = _problems(features)
    assert "train/data.parquet is not a readable parquet file" in problem


def test_validate_truncated_parquet(features: Path) -> None:
    path = split_path(features, "train")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    (problem,) = _problems(features)
    assert "train/data.parquet is not a readable parquet file" in problem


def test_validate_missing_columns_reports_each(features: Path) -> None:
    _rewrite(features, "train", lambda t: t.drop_columns(["user_age", "device_type"]))
    problems = _problems(features)
    assert any(
        "train/data.parquet: categorical column 'device_type' is missing" in p for p in problems
    )
    assert any("train/data.parquet: numeric column 'user_age' is missing" in p for p in problems)
    assert len(problems) == 2


def test_validate_wrong_types(features: Path) -> None:
    def change(t: pa.Table) -> pa.Table:
        t = _set_column("item_id", pc_cast(t["item_id"], pa.float64()))(t)
        t = _set_column("ad_quality", pc_cast(t["ad_quality"], pa.string()))(t)
        return _set_column("click", pc_cast(t["click"], pa.float64()))(t)

    _rewrite(features, "train", change)
    problems = _problems(features)
    joined = "\n".join(problems)
    assert "categorical column 'item_id' has type double" in joined
    assert "integer ids or strings" in joined
    assert "numeric column 'ad_quality' has type string" in joined
    assert "label column 'click' has type double" in joined
    assert all("train/data.parquet" in p for p in problems)
    assert len(problems) == 3


def pc_cast(values: pa.ChunkedArray, tp: pa.DataType) -> pa.ChunkedArray:
    return values.cast(tp)


def test_validate_label_nulls(features: Path) -> None:
    def change(t: pa.Table) -> pa.Table:
        y = t["click"].to_pylist()
        y[5] = None
        y[9] = None
        return _set_column("click", pa.array(y, pa.int64()))(t)

    _rewrite(features, "val", change)
    (problem,) = _problems(features)
    assert "val/data.parquet: label column 'click' has 2 null value(s)" in problem


def test_validate_label_not_binary(features: Path) -> None:
    def change(t: pa.Table) -> pa.Table:
        y = t["click"].to_numpy().copy()
        y[3] = 2
        return _set_column("click", pa.array(y))(t)

    _rewrite(features, "test", change)
    (problem,) = _problems(features)
    assert "label column 'click' has values other than 0 and 1 (min 0, max 2)" in problem


def test_validate_label_not_binary_without_statistics(features: Path) -> None:
    path = split_path(features, "test")
    t = pq.read_table(path)
    y = t["click"].to_numpy().copy()
    y[3] = -1
    pq.write_table(_set_column("click", pa.array(y))(t), path, write_statistics=False)
    (problem,) = _problems(features)
    assert "values other than 0 and 1 (min -1, max 1)" in problem


def test_validate_bool_label_accepted(features: Path) -> None:
    for split in SPLITS:
        _rewrite(features, split, lambda t: _set_column("click", t["click"].cast(pa.bool_()))(t))
    report = validate_features(features, DEFAULT_SPEC)
    assert report.splits["train"].positives > 0


def test_validate_single_class(features: Path) -> None:
    _rewrite(
        features,
        "val",
        lambda t: _set_column("click", pa.array(np.zeros(t.num_rows, dtype=np.int64)))(t),
    )
    (problem,) = _problems(features)
    assert "val/data.parquet: label column 'click' has a single class" in problem
    assert "every row is 0" in problem


def _with_bad_numbers(t: pa.Table) -> pa.Table:
    x = t["item_price"].to_numpy().copy()
    x[0] = np.nan
    x[1] = np.inf
    x[2] = -np.inf
    return _set_column("item_price", pa.array(x))(t)


def test_validate_numeric_nan_error_policy(features: Path) -> None:
    _rewrite(features, "train", _with_bad_numbers)
    (problem,) = _problems(features, numeric_nan="error")
    assert "train/data.parquet: numeric column 'item_price' has 1 NaN, 2 inf value(s)" in problem
    assert "data.numeric_nan is 'error'" in problem


def test_validate_numeric_nan_impute_policy_warns(features: Path) -> None:
    _rewrite(features, "train", _with_bad_numbers)
    report = validate_features(features, DEFAULT_SPEC, numeric_nan="impute")
    (warning,) = report.warnings
    assert "numeric column 'item_price' has 1 NaN, 2 inf value(s)" in warning
    assert "train mean" in warning
    assert report.lines()[-1].startswith("⚠️  ")


def test_validate_numeric_nulls_follow_policy(features: Path) -> None:
    def change(t: pa.Table) -> pa.Table:
        x = t["user_age"].to_pylist()
        x[0] = None
        return _set_column("user_age", pa.array(x, pa.int64()))(t)

    _rewrite(features, "test", change)
    (problem,) = _problems(features, numeric_nan="error")
    assert "numeric column 'user_age' has 1 null value(s)" in problem
    assert len(validate_features(features, DEFAULT_SPEC).warnings) == 1


def test_validate_categorical_nulls_warn(features: Path) -> None:
    def change(t: pa.Table) -> pa.Table:
        x = t["device_type"].to_pylist()
        x[0] = None
        return _set_column("device_type", pa.array(x, pa.string()))(t)

    _rewrite(features, "val", change)
    (warning,) = validate_features(features, DEFAULT_SPEC).warnings
    assert "categorical column 'device_type' has 1 null value(s)" in warning


def test_validate_schema_mismatch_between_splits(features: Path) -> None:
    _rewrite(features, "test", _set_column("user_id", pa.array([str(i) for i in range(450)])))
    (problem,) = _problems(features)
    assert "column 'user_id' is int64 in" in problem
    assert "train/data.parquet but string in" in problem
    assert "test/data.parquet" in problem


def test_validate_reports_all_problems_together(features: Path) -> None:
    split_path(features, "train").write_bytes(b"")
    _rewrite(features, "val", lambda t: t.drop_columns(["click"]))
    _rewrite(features, "test", _with_bad_numbers)
    problems = _problems(features, numeric_nan="error")
    assert len(problems) == 3
    with pytest.raises(FeatureValidationError, match=r"3 problem\(s\) with the features"):
        validate_features(features, DEFAULT_SPEC, numeric_nan="error")


def test_validate_unknown_policy_is_error(features: Path) -> None:
    with pytest.raises(ConfigError, match="numeric_nan must be one of"):
        validate_features(features, DEFAULT_SPEC, numeric_nan="drop")


def _tiny_table(rng: np.random.Generator, n: int, cats: bool, nums: bool) -> pa.Table:
    cols: dict[str, pa.Array] = {"label": pa.array(rng.integers(0, 2, n).astype(np.int8))}
    if cats:
        cols["color"] = pa.array(rng.choice(["red", "green", "blue"], n))
        cols["shop"] = pa.array(rng.integers(0, 50, n).astype(np.int32))
    if nums:
        cols["x"] = pa.array(rng.normal(size=n).astype(np.float32))
        cols["n"] = pa.array(rng.integers(0, 9, n))
    cols["extra"] = pa.array(np.arange(n))  # columns outside the spec are ignored
    return pa.table(cols)


@pytest.mark.parametrize(("cats", "nums"), [(True, False), (False, True), (True, True)])
def test_validate_any_matching_parquet(tmp_path: Path, cats: bool, nums: bool) -> None:
    rng = np.random.default_rng(0)
    _write(tmp_path, {s: _tiny_table(rng, 200, cats, nums) for s in SPLITS})
    spec = FeatureSpec(
        label="label",
        categorical=("color", "shop") if cats else (),
        numeric=("x", "n") if nums else (),
    )
    report = validate_features(tmp_path, spec)
    assert report.splits["val"].rows == 200
    fp = fingerprint(tmp_path, spec)
    assert fp["schema"]["categorical"] == list(spec.categorical)
