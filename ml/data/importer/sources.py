"""A source file the importer reads in batches, and the parquet source.

Every source reports the columns it holds (:meth:`Source.raw_schema`), is then told which
columns to deliver with which types (:meth:`Source.configure`), and yields record batches
in file order with the index of their first data row (:meth:`Source.batches`). A problem
is a :class:`~ml.errors.DataImportError` naming the file, the line (or row) and the field;
:meth:`Source.where` turns a data-row index into that location.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ml.errors import DataImportError
from ml.fsutil import display_path

#: Rows per batch the parquet source reads (text sources read blocks of bytes).
BATCH_ROWS = 65_536


class Source(ABC):
    """One input file."""

    #: The format's name (``csv``, ``tsv``, ``criteo``, ``libsvm``, ``parquet``).
    format: str = ""
    #: Text formats store every categorical value as text (ids keep leading zeros).
    text: bool = True

    def __init__(self, path: Path) -> None:
        self.path = path
        self.read_types: dict[str, pa.DataType] = {}

    @property
    def shown(self) -> str:
        return display_path(self.path)

    @abstractmethod
    def raw_schema(self) -> pa.Schema:
        """The columns the file holds, with the types they look like."""

    def configure(self, read_types: dict[str, pa.DataType]) -> None:
        """Deliver exactly these columns (in this order) with these types."""
        missing = [c for c in read_types if c not in self.raw_schema().names]
        if missing:
            raise DataImportError(
                f"{self.shown} has no column(s) {missing}; its columns are "
                f"{self.raw_schema().names} (every source must have the same columns)"
            )
        self.read_types = dict(read_types)

    @abstractmethod
    def batches(self, columns: list[str] | None = None) -> Iterator[tuple[int, pa.RecordBatch]]:
        """``(first data-row index, batch)`` in file order; ``columns``: a subset to read."""

    def where(self, row: int) -> str:
        """``line 12``-style location of data row ``row`` (0-based)."""
        return f"row {row + 1}"

    def error(self, row: int, column: str, problem: str) -> DataImportError:
        """An error naming this file, the location of ``row`` and the field."""
        return DataImportError(f"{self.shown}: {self.where(row)}, field {column!r}: {problem}")


class ParquetSource(Source):
    """Existing parquet files (any column layout), read a row group slice at a time."""

    format = "parquet"
    text = False

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        try:
            self._file = pq.ParquetFile(path)
            self._schema = self._file.schema_arrow
        except (pa.ArrowException, OSError) as exc:
            raise DataImportError(f"{self.shown} is not a readable parquet file ({exc})") from exc

    def raw_schema(self) -> pa.Schema:
        return self._schema

    def batches(self, columns: list[str] | None = None) -> Iterator[tuple[int, pa.RecordBatch]]:
        names = columns if columns is not None else list(self.read_types)
        start = 0
        for batch in self._file.iter_batches(batch_size=BATCH_ROWS, columns=names):
            yield start, self._cast(batch, start)
            start += batch.num_rows

    def _cast(self, batch: pa.RecordBatch, start: int) -> pa.RecordBatch:
        arrays = []
        for name in batch.schema.names:
            col = batch.column(name)
            want = self.read_types.get(name, col.type)
            if col.type != want:
                try:
                    col = col.cast(want)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                    bad = _first_uncastable(col, want)
                    raise self.error(
                        start + bad,
                        name,
                        f"cannot convert {col[bad].as_py()!r} ({col.type}) to {want} ({exc})",
                    ) from exc
            arrays.append(col)
        return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)


def _first_uncastable(col: pa.Array, want: pa.DataType) -> int:
    """Index of the first value of ``col`` that does not cast to ``want`` (0 if none)."""
    for i in range(len(col)):
        try:
            col.slice(i, 1).cast(want)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return i
    return 0
