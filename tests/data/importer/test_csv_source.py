from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from ml.data.importer import csv_source
from ml.data.importer.csv_source import CsvSource
from ml.errors import DataImportError


def _read(src: CsvSource, types: dict[str, pa.DataType]) -> pa.Table:
    src.configure(types)
    return pa.Table.from_batches([b for _, b in src.batches()])


def test_csv_header_is_detected_and_types_inferred(clicks_csv: Path) -> None:
    src = CsvSource(clicks_csv, "csv")
    assert src.header and src.names == ["ts", "user", "site", "price", "click"]
    raw = src.raw_schema()
    assert raw.field("user").type == pa.string() and raw.field("price").type == pa.float64()
    assert raw.field("site").type == pa.int64()


def test_csv_without_header_gets_default_or_given_names(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("1,a,0.5\n0,b,1.5\n")
    src = CsvSource(path, "csv")
    assert not src.header and src.names == ["label", "f1", "f2"]
    named = CsvSource(path, "csv", columns=("y", "shop", "x"))
    assert named.names == ["y", "shop", "x"]
    table = _read(named, {"y": pa.int64(), "shop": pa.string(), "x": pa.float64()})
    assert table.column("shop").to_pylist() == ["a", "b"]
    forced = CsvSource(path, "csv", header=True)
    assert forced.names == ["1", "a", "0.5"]


def test_csv_duplicate_column_names_are_error(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("a,a,label\n1,2,0\n")
    with pytest.raises(DataImportError, match="column names must be unique"):
        CsvSource(path, "csv")


def test_csv_reads_in_blocks_with_row_offsets(
    clicks_csv: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(csv_source, "BLOCK_BYTES", 2048)
    src = CsvSource(clicks_csv, "csv")
    src.configure({"click": pa.int64(), "user": pa.string()})
    starts = []
    total = 0
    for start, batch in src.batches():
        assert start == total and batch.schema.names == ["click", "user"]
        starts.append(start)
        total += batch.num_rows
    assert total == 600 and len(starts) > 5


def test_criteo_layout_empty_fields_are_null(criteo_txt: Path) -> None:
    src = CsvSource(criteo_txt, "criteo")
    assert src.names[:3] == ["label", "I1", "I2"] and src.names[-1] == "C26"
    assert not src.header
    types = {n: pa.string() if n.startswith("C") else pa.float64() for n in src.names}
    types["label"] = pa.int64()
    table = _read(src, types)
    assert table.num_rows == 300
    assert table.column("I1").null_count > 0 and table.column("C1").null_count > 0
    assert len(table.column("C3").drop_null()[0].as_py()) == 8


@pytest.mark.parametrize(
    ("line", "match"),
    [
        ("1700000000,u1,3,abc,1", r"line 4, field 'price': 'abc' is not a number"),
        ("1700000000,u1,x3,1.0,1", r"line 4, field 'site': 'x3' is not an integer"),
        (
            "1700000000,u1,3,1.0",
            r"line 4, field 'click': expected 5 fields separated by ',', got 4",
        ),
        ("1700000000,u1,3,1.0,1,9", r"line 4, field 'click': expected 5 fields .* got 6"),
    ],
)
def test_csv_malformed_line_names_file_line_and_field(
    tmp_path: Path, line: str, match: str
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(f"ts,user,site,price,click\n1,u0,1,1.0,0\n\n{line}\n2,u2,2,2.0,1\n")
    src = CsvSource(path, "csv")
    types = {"ts": pa.int64(), "user": pa.string(), "site": pa.int64()}
    types |= {"price": pa.float64(), "click": pa.int64()}
    with pytest.raises(DataImportError, match=rf"bad\.csv: {match}"):
        _read(src, types)


def test_csv_error_in_a_late_block_names_its_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(csv_source, "BLOCK_BYTES", 256)
    path = tmp_path / "late.tsv"
    rows = [f"{i % 2}\t{i}" for i in range(500)]
    rows[437] = "1\tseven"
    path.write_text("\n".join(rows) + "\n")
    src = CsvSource(path, "tsv", columns=("label", "n"))
    with pytest.raises(DataImportError, match=r"line 438, field 'n': 'seven' is not a number"):
        _read(src, {"label": pa.int64(), "n": pa.float64()})


def test_csv_not_utf8_is_error(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes(b"label,name\n1,ok\n0,caf\xe9\n")
    src = CsvSource(path, "csv")
    with pytest.raises(DataImportError, match=r"line 3, field \?: the line is not UTF-8"):
        _read(src, {"label": pa.int64(), "name": pa.string()})


def test_csv_where_counts_physical_lines(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("label,x\n\n1,2\n\n\n0,3\n")
    src = CsvSource(path, "csv")
    assert src.where(0) == "line 3" and src.where(1) == "line 6"
    assert src.where(5) == "data row 6"


def test_csv_quoted_fields_keep_delimiters(tmp_path: Path) -> None:
    path = tmp_path / "q.csv"
    path.write_text('label,name\n1,"a,b"\n0,c\n')
    table = _read(CsvSource(path, "csv"), {"label": pa.int64(), "name": pa.string()})
    assert table.column("name").to_pylist() == ["a,b", "c"]
