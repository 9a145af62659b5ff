"""Batch scoring: parquet or CSV files in, probabilities beside an id column out.

``ctr-pipeline predict --model NAME[/VERSION] --input FILE_OR_DIR --output PATH`` scores
one file or every ``*.parquet`` / ``*.csv`` under a directory (sorted, recursively) in
chunks of ``chunk_rows`` rows: parquet record batches (only the columns needed are
read) and pandas CSV chunks, so memory is bounded by one chunk whatever the input size.

The output (parquet for ``.parquet``, CSV for ``.csv``) has one row per input row, in
input order: the ``--id-column`` (or ``row``, the row number within its file), ``source``
(the file, relative to the input directory, when the input is a directory) and
``probability``, equal to ``Predictor.predict_proba`` on the same rows. It is written to
a temporary file beside the target and renamed into place when complete.

Input and output may be URLs (``s3://bucket/in/``, ``s3://bucket/out/scores.parquet``):
each input object is downloaded whole into a temporary directory and scored from there;
the output is written locally and uploaded when complete, so the object appears whole
or not at all (:mod:`ml.storage.transfer`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ml import paths
from ml.errors import DataError, UserError, is_environment_oserror, storage_error
from ml.fsutil import display_path
from ml.serving.predictor import Predictor
from ml.serving.service.settings import DEFAULT_CHUNK_ROWS
from ml.storage import transfer
from ml.storage.url import is_url, redact_url

INPUT_SUFFIXES = (".parquet", ".csv")
OUTPUT_SUFFIXES = (".parquet", ".csv")
PROBABILITY = "probability"


@dataclass(frozen=True)
class BatchReport:
    output: Path | str  # a URL as text
    files: int
    rows: int
    seconds: float

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


Location = str | Path


def show(location: Location) -> str:
    """A location for messages: a URL redacted, a path relative to the base directory."""
    return redact_url(str(location)) if is_url(location) else display_path(location)


def input_files(path: str | os.PathLike[str]) -> tuple[Location, list[Location]]:
    """``(root, files)``: the file itself, or the data files under a directory (or below a
    URL prefix, by key).

    Raises:
        UserError: nothing to score there.
    """
    if is_url(path):
        found = transfer.list_files(str(path), INPUT_SUFFIXES)
        if not found:
            raise UserError(f"{redact_url(str(path))} holds no .parquet or .csv object to score")
        return str(path), list(found)
    root = paths.resolve(path)
    if root.is_file():
        if root.suffix not in INPUT_SUFFIXES:
            raise UserError(f"{display_path(root)} is not a .parquet or .csv file")
        return root, [root]
    if not root.is_dir():
        raise UserError(f"input {display_path(root)} does not exist")
    files = sorted(p for p in root.rglob("*") if p.suffix in INPUT_SUFFIXES and p.is_file())
    if not files:
        raise UserError(f"{display_path(root)} holds no .parquet or .csv file to score")
    return root, list(files)


def _relative(root: Location, file: Location) -> str | None:
    """The file's name below the input directory; None when the input is the file itself."""
    if str(file) == str(root):
        return None
    if isinstance(root, Path) and isinstance(file, Path):
        return str(file.relative_to(root))
    return str(file)[len(str(root).rstrip("/")) + 1 :]


def _chunks(
    file: Path, columns: list[str], chunk_rows: int, *, shown: str | None = None
) -> Iterator[pd.DataFrame]:
    if file.suffix == ".csv":
        yield from pd.read_csv(file, usecols=columns, chunksize=chunk_rows)
        return
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(file)
    missing = [c for c in columns if c not in pf.schema_arrow.names]
    if missing:
        raise DataError(
            f"{shown or display_path(file)} lacks column(s) {missing}; it has "
            f"{pf.schema_arrow.names}"
        )
    for batch in pf.iter_batches(batch_size=chunk_rows, columns=columns):
        yield batch.to_pandas()


class _Writer:
    """Parquet or CSV output, appended chunk by chunk into a temporary file."""

    def __init__(self, target: Path) -> None:
        if target.suffix not in OUTPUT_SUFFIXES:
            raise UserError(f"--output {display_path(target)} must end in .parquet or .csv")
        target.parent.mkdir(parents=True, exist_ok=True)
        self.target = target
        self.tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        self._parquet: Any = None
        self._csv_header = True

    def write(self, frame: pd.DataFrame) -> None:
        if self.target.suffix == ".csv":
            frame.to_csv(self.tmp, mode="a", header=self._csv_header, index=False)
            self._csv_header = False
            return
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(frame, preserve_index=False)
        if self._parquet is None:
            self._parquet = pq.ParquetWriter(self.tmp, table.schema)
        self._parquet.write_table(table.cast(self._parquet.schema))

    def commit(self) -> None:
        if self._parquet is None and not self.tmp.exists():  # no rows at all
            self.write(pd.DataFrame({PROBABILITY: pd.Series([], dtype="float64")}))
        if self._parquet is not None:
            self._parquet.close()
            self._parquet = None
        os.replace(self.tmp, self.target)

    def abort(self) -> None:
        if self._parquet is not None:
            self._parquet.close()
        self.tmp.unlink(missing_ok=True)


def score_files(
    predictor: Predictor,
    input_path: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    id_column: str | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    progress: Callable[[str], None] | None = None,
) -> BatchReport:
    """Score every row of the input into ``output`` (see the module doc).

    Raises:
        UserError: no input, a missing id or feature column, a bad output name.
        StorageError: the disk filled up while writing.
    """
    if chunk_rows < 1:
        raise UserError(f"--chunk-rows must be at least 1, got {chunk_rows}")
    if not str(output).endswith(OUTPUT_SUFFIXES):
        raise UserError(f"--output {show(str(output))} must end in .parquet or .csv")
    root, files = input_files(input_path)
    features = list(predictor.features.feature_columns)
    columns = features + ([id_column] if id_column and id_column not in features else [])
    start = time.perf_counter()
    rows = 0
    target: Location = str(output) if is_url(output) else paths.resolve(output)
    with transfer.published(target) as local_target:  # a URL: uploaded once complete
        writer = _Writer(local_target)
        try:
            for file in files:
                with transfer.fetched(file) as local:
                    offset = _score_file(predictor, local, root, file, columns, chunk_rows,
                                         id_column, writer)  # fmt: skip
                rows += offset
                if progress:
                    progress(f"   {show(file)}: {offset:,} rows")
            writer.commit()
        except OSError as exc:
            writer.abort()
            if is_environment_oserror(exc):
                raise storage_error(exc, "writing the scores to", show(target)) from exc
            raise UserError(f"cannot score into {show(target)}: {exc}") from exc
        except (ValueError, KeyError) as exc:
            writer.abort()
            if isinstance(exc, UserError):
                raise
            raise DataError(f"cannot score {show(root)}: {exc}") from exc
        except BaseException:
            writer.abort()
            raise
    return BatchReport(target, len(files), rows, time.perf_counter() - start)


def _score_file(
    predictor: Predictor,
    local: Path,
    root: Location,
    file: Location,
    columns: list[str],
    chunk_rows: int,
    id_column: str | None,
    writer: _Writer,
) -> int:
    """Score one input file into ``writer``; its row count."""
    source = _relative(root, file)
    offset = 0
    for chunk in _chunks(local, columns, chunk_rows, shown=show(file)):
        ids = chunk[id_column] if id_column else range(offset, offset + len(chunk))
        out = pd.DataFrame({id_column or "row": ids})
        if source is not None:
            out["source"] = source
        out[PROBABILITY] = predictor.predict_proba(chunk)
        writer.write(out)
        offset += len(chunk)
    return offset
