from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ml.data.importer.csv_source import CsvSource
from ml.data.importer.options import ImportOptions
from ml.data.importer.plan import check_labels, make_plan
from ml.data.importer.sources import ParquetSource
from ml.errors import DataImportError


def _opts(**kw: object) -> ImportOptions:
    return ImportOptions(out_dir="o", **kw)  # type: ignore[arg-type]


def test_plan_csv_roles_by_type(clicks_csv: Path) -> None:
    plan = make_plan(CsvSource(clicks_csv, "csv"), _opts())
    assert plan.spec.label == "click"
    assert plan.spec.categorical == ("ts", "user", "site")  # integers are ids by default
    assert plan.spec.numeric == ("price",)
    # Text sources store categories as strings: "007" stays distinct from "7".
    assert plan.read_types["site"] == pa.string() and plan.read_types["click"] == pa.int64()


def test_plan_explicit_roles_exclude_and_time(clicks_csv: Path) -> None:
    opts = _opts(numeric=("site",), time_column="ts", exclude=("user",))
    plan = make_plan(CsvSource(clicks_csv, "csv"), opts)
    assert plan.spec.categorical == () and plan.spec.numeric == ("site", "price")
    assert plan.time_column == "ts" and plan.schema.names[-1] == "ts"
    assert plan.read_types["ts"] == pa.int64()


def test_plan_criteo_roles(criteo_txt: Path) -> None:
    plan = make_plan(CsvSource(criteo_txt, "criteo"), _opts())
    assert plan.spec.numeric == tuple(f"I{i}" for i in range(1, 14))
    assert plan.spec.categorical == tuple(f"C{i}" for i in range(1, 27))


def test_plan_parquet_keeps_int_ids_and_converts_text(parquet_splits: dict[str, Path]) -> None:
    plan = make_plan(ParquetSource(parquet_splits["train"]), _opts())
    assert plan.spec.label == "clicked"
    assert plan.read_types["shop"] == pa.int64() and plan.read_types["color"] == pa.string()
    assert plan.spec.numeric == ("x",)


def test_plan_other_types_are_left_out(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"y": [0, 1], "tags": [["a"], ["b"]], "x": [1.0, 2.0]}), path)
    plan = make_plan(ParquetSource(path), _opts())
    assert plan.ignored == ("tags",) and plan.spec.numeric == ("x",)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"label": "clicked"}, r"no label column 'clicked'"),
        ({"numeric": ("cost",)}, r"has no column\(s\) \['cost'\]"),
        ({"time_column": "when"}, r"has no column\(s\) \['when'\]"),
        ({"time_column": "user"}, r"time column 'user' holds string values"),
        ({"exclude": ("ts", "user", "site", "price")}, "lists no categorical and no numeric"),
    ],
)
def test_plan_errors(clicks_csv: Path, kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(DataImportError, match=match):
        make_plan(CsvSource(clicks_csv, "csv"), _opts(**kwargs))


def test_plan_without_any_label_name_is_error(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(DataImportError, match=r"no label column .*pass --label NAME"):
        make_plan(CsvSource(path, "csv"), _opts())


def test_check_labels_counts_and_names_bad_row(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("label,x\n1,a\n0,b\n\n2,c\n,d\n")
    src = CsvSource(path, "csv")
    batch = pa.record_batch({"label": pa.array([1, 0, 1])})
    assert check_labels(batch, "label", src, 0) == 2
    bad = pa.record_batch({"label": pa.array([1, 0, 2, None])})
    with pytest.raises(DataImportError, match=r"a\.csv: line 5, field 'label': the label is 2"):
        check_labels(bad, "label", src, 0)
    with pytest.raises(DataImportError, match=r"line 6, field 'label': the label is empty"):
        check_labels(bad.slice(3), "label", src, 3)
