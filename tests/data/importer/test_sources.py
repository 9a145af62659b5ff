from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ml.data.importer import sources
from ml.data.importer.sources import ParquetSource
from ml.errors import DataImportError


def test_parquet_source_casts_to_read_types(
    parquet_splits: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sources, "BATCH_ROWS", 100)
    src = ParquetSource(parquet_splits["train"])
    assert src.raw_schema().names == ["clicked", "shop", "color", "x"]
    src.configure({"clicked": pa.int64(), "shop": pa.int64(), "color": pa.string()})
    batches = list(src.batches())
    assert [start for start, _ in batches] == [0, 100, 200]
    schema = batches[0][1].schema
    assert schema.names == ["clicked", "shop", "color"]
    assert [str(t) for t in schema.types] == ["int64", "int64", "string"]


def test_parquet_source_missing_column_is_error(parquet_splits: dict[str, Path]) -> None:
    src = ParquetSource(parquet_splits["val"])
    with pytest.raises(DataImportError, match=r"has no column\(s\) \['price'\]"):
        src.configure({"price": pa.float64()})


def test_parquet_source_uncastable_value_names_row(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"label": [0, 1], "id": [1.0, 2.5]}), path)
    src = ParquetSource(path)
    src.configure({"label": pa.int64(), "id": pa.int64()})
    with pytest.raises(
        DataImportError, match=r"t\.parquet: row 2, field 'id': cannot convert 2\.5"
    ):
        list(src.batches())


def test_parquet_source_not_parquet_is_error(tmp_path: Path) -> None:
    path = tmp_path / "x.parquet"
    path.write_text("a,b\n")
    with pytest.raises(DataImportError, match="is not a readable parquet file"):
        ParquetSource(path)
