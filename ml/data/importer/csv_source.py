"""CSV, TSV and Criteo text files, streamed with pyarrow's CSV reader.

pyarrow parses blocks of bytes in C++ (fast, bounded memory) but reports a bad value or
a short line without its line number. When it fails, :meth:`CsvSource.locate` re-reads
the file with Python's ``csv`` module from the first row the reader had not delivered and
names the physical line, the field and the value; :meth:`CsvSource.where` does the same
for a row a later check rejects (a label of 2). Lines hold one row each (no newlines
inside quoted values); empty lines are skipped and still counted.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv

from ml.data.importer.options import CRITEO_CATEGORICAL, CRITEO_COLUMNS, first_line
from ml.data.importer.sources import Source
from ml.errors import DataImportError

#: Bytes pyarrow parses per block: large enough for speed, small enough for memory.
BLOCK_BYTES = 8 << 20
_INT = re.compile(r"^[-+]?\d+$")


class CsvSource(Source):
    """A delimited text file: ``csv`` (comma, quotes), ``tsv`` or ``criteo`` (tab, no quotes)."""

    def __init__(
        self,
        path: Path,
        fmt: str,
        *,
        delimiter: str | None = None,
        header: bool | None = None,
        columns: tuple[str, ...] = (),
    ) -> None:
        super().__init__(path)
        self.format = fmt
        self.delimiter = delimiter or ("," if fmt == "csv" else "\t")
        self.quote = '"' if fmt == "csv" else None
        line = first_line(path)
        fields = self._split(line) if line else []
        if fmt == "criteo":
            header, columns = (False if header is None else header), columns or CRITEO_COLUMNS
        if header is None:
            header = bool(fields) and all(f.strip() and not _is_number(f) for f in fields)
        self.header = header
        if columns:
            names = list(columns)
        elif header:
            names = [f.strip() for f in fields]
        else:
            names = ["label", *(f"f{i}" for i in range(1, len(fields)))]
        if len(set(names)) != len(names) or not all(names):
            raise DataImportError(
                f"{self.shown}: column names must be unique and non-empty, got {names}"
            )
        self.names = names
        self._raw: pa.Schema | None = None

    def _split(self, line: str) -> list[str]:
        if self.quote:
            return next(csv.reader([line], delimiter=self.delimiter))
        return next(csv.reader([line], delimiter=self.delimiter, quoting=csv.QUOTE_NONE))

    def raw_schema(self) -> pa.Schema:
        if self._raw is None:
            if self.format == "criteo":
                types = {
                    c: pa.string() if c in CRITEO_CATEGORICAL else pa.int64() for c in self.names
                }
                self._raw = pa.schema(list(types.items()))
            else:
                self._raw = self._infer()
        return self._raw

    def _infer(self) -> pa.Schema:
        """The types pyarrow infers from the first block (each column read as text if unsure)."""
        try:
            reader = self._open(None, None)
            try:
                return reader.schema
            finally:
                reader.close()
        except pa.ArrowInvalid as exc:
            raise self.locate(0, exc) from exc

    def _open(
        self, types: dict[str, pa.DataType] | None, columns: list[str] | None
    ) -> pacsv.CSVStreamingReader:
        read = pacsv.ReadOptions(
            column_names=self.names, skip_rows=1 if self.header else 0, block_size=BLOCK_BYTES
        )
        parse = pacsv.ParseOptions(
            delimiter=self.delimiter,
            quote_char=self.quote or False,
            newlines_in_values=False,
            ignore_empty_lines=True,
        )
        convert = pacsv.ConvertOptions(
            column_types=types or {},
            include_columns=columns or [],
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
        )
        return pacsv.open_csv(
            self.path, read_options=read, parse_options=parse, convert_options=convert
        )

    def batches(self, columns: list[str] | None = None) -> Iterator[tuple[int, pa.RecordBatch]]:
        names = columns if columns is not None else list(self.read_types)
        types = {c: self.read_types[c] for c in names if c in self.read_types}
        done = 0
        try:
            reader = self._open(types, names)
        except pa.ArrowInvalid as exc:
            raise self.locate(0, exc) from exc
        with reader:
            while True:
                try:
                    batch = reader.read_next_batch()
                except StopIteration:
                    return
                except pa.ArrowInvalid as exc:
                    raise self.locate(done, exc) from exc
                yield done, batch
                done += batch.num_rows

    # --- locating problems ------------------------------------------------------------------

    def _rows(self) -> Iterator[tuple[int, int, bytes]]:
        """``(line number, data-row index, raw line)`` for every data row, in order."""
        row = 0
        with self.path.open("rb") as fh:
            for line_no, raw in enumerate(fh, start=1):
                if line_no == 1 and self.header:
                    continue
                if not raw.rstrip(b"\r\n"):
                    continue
                yield line_no, row, raw
                row += 1

    def where(self, row: int) -> str:
        for line_no, index, _raw in self._rows():
            if index == row:
                return f"line {line_no}"
        return f"data row {row + 1}"

    def locate(self, start_row: int, exc: BaseException) -> DataImportError:
        """The first row at or after ``start_row`` that does not parse, as an error."""
        for line_no, row, raw in self._rows():
            if row < start_row:
                continue
            problem = self._check_line(raw)
            if problem is not None:
                return DataImportError(f"{self.shown}: line {line_no}, {problem}")
        return DataImportError(f"{self.shown}: cannot be read after data row {start_row}: {exc}")

    def _check_line(self, raw: bytes) -> str | None:
        try:
            text = raw.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError as exc:
            return f"field ?: the line is not UTF-8 text ({exc.reason} at byte {exc.start})"
        fields = self._split(text)
        if len(fields) != len(self.names):
            return (
                f"field {self.names[min(len(fields), len(self.names) - 1)]!r}: expected "
                f"{len(self.names)} fields separated by {self.delimiter!r}, got {len(fields)}"
            )
        for name, value in zip(self.names, fields, strict=True):
            want = self.read_types.get(name)
            if want is None or value == "":
                continue
            if pa.types.is_integer(want) and not _INT.match(value):
                return f"field {name!r}: {value!r} is not an integer"
            if pa.types.is_floating(want) and not _is_number(value):
                return f"field {name!r}: {value!r} is not a number"
        return None


def _is_number(text: str) -> bool:
    try:
        float(text.strip())
    except ValueError:
        return False
    return True
