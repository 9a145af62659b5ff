"""``import_features``: stream source files into the standard features layout, atomically.

Sources are read batch by batch; each batch is checked (labels 0/1), routed to its split
(:mod:`~ml.data.importer.splitting`) and buffered per split up to
:data:`ROW_GROUP_ROWS` rows, then written as a parquet row group. Memory stays bounded by
a few blocks and three row groups, whatever the file size. Everything is written into a
temp directory beside the target and renamed into place (:mod:`ml.data.staging`): a
malformed line stops the import and leaves nothing behind. The target must be absent,
empty, or earlier output of ``data import`` or ``data generate`` (:func:`check_target`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ml import paths
from ml.data import layout
from ml.data.importer import splitting
from ml.data.importer.csv_source import CsvSource
from ml.data.importer.libsvm_source import LibsvmSource
from ml.data.importer.options import ImportOptions, detect_format
from ml.data.importer.plan import Plan, check_labels, make_plan
from ml.data.importer.sources import ParquetSource, Source
from ml.data.staging import staged
from ml.errors import DataImportError
from ml.fsutil import display_path, utc_now

IMPORTER_VERSION = 1
#: Rows per parquet row group (per split buffer).
ROW_GROUP_ROWS = 131_072


class _SplitWriter:
    """Buffers one split's batches and writes them as row groups."""

    def __init__(self, path: Path, schema: pa.Schema, label: str) -> None:
        self.path, self.schema, self.label = path, schema, label
        self.buffer: list[pa.RecordBatch] = []
        self.buffered = self.rows = self.positives = 0
        self.writer: pq.ParquetWriter | None = None

    def add(self, batch: pa.RecordBatch) -> None:
        if not batch.num_rows:
            return
        self.buffer.append(batch)
        self.buffered += batch.num_rows
        self.rows += batch.num_rows
        self.positives += int(pc.sum(batch.column(self.label)).as_py() or 0)
        if self.buffered >= ROW_GROUP_ROWS:
            self.flush()

    def flush(self) -> None:
        if not self.buffer:
            return
        if self.writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.writer = pq.ParquetWriter(self.path, self.schema, compression="zstd")
        table = pa.Table.from_batches(self.buffer, schema=self.schema)
        self.writer.write_table(table, row_group_size=table.num_rows)
        self.buffer, self.buffered = [], 0

    def close(self) -> None:
        self.flush()
        if self.writer is not None:
            self.writer.close()


def open_source(path: Path, opts: ImportOptions) -> Source:
    """The reader for ``path`` in its (detected) format."""
    fmt = detect_format(path, opts.format)
    if fmt == "parquet":
        return ParquetSource(path)
    if fmt == "libsvm":
        field_map = paths.resolve(opts.field_map) if opts.field_map is not None else None
        return LibsvmSource(
            path, field_map=field_map, field_ranges=opts.field_ranges, numeric=opts.numeric
        )
    return CsvSource(path, fmt, delimiter=opts.delimiter, header=opts.header, columns=opts.columns)


def import_features(opts: ImportOptions) -> dict[str, Any]:
    """Import the sources into ``opts.out_dir`` as ``{train,val,test}/data.parquet``.

    Returns:
        ``{"features_dir", "spec" (FeatureSpec), "rows", "positives", "base_ctr",
        "split", "sources", "ignored", "seconds"}``.

    Raises:
        DataImportError: bad options, a malformed line (file, line and field named), a
            split left empty, or a target that may not be written (a user's data).
    """
    start = time.perf_counter()
    opts.check()
    target = layout.features_location(opts.out_dir)
    inputs = opts.input_paths()
    for path in inputs:
        if isinstance(target, Path) and path.resolve().is_relative_to(target.resolve()):
            raise DataImportError(
                f"source {display_path(path)} lies inside the output directory "
                f"{display_path(target)}; import into another --out"
            )
    sources = [open_source(path, opts) for path in inputs]
    plan = make_plan(sources[0], opts)
    for source in sources:
        source.configure(plan.read_types)
    with staged(
        target,
        overwrite=opts.overwrite,
        may_replace=(layout.IMPORTER, layout.GENERATOR),
        error=DataImportError,
        command="ctr-pipeline data import",
    ) as tmp:
        writers = {
            s: _SplitWriter(layout.split_path(tmp, s), plan.schema, plan.spec.label)
            for s in layout.SPLITS
        }
        split_info = _route(sources, opts, plan, writers)
        for writer in writers.values():
            writer.close()
        empty = [s for s, w in writers.items() if w.rows == 0]
        if empty:
            raise DataImportError(
                f"split(s) {empty} got no rows; give more data or other --split fractions"
            )
        schema = _schema_json(plan, sources, opts, writers, split_info)
        layout.write_schema(tmp, schema)
    return {
        "features_dir": str(target),
        "spec": plan.spec,
        "rows": schema["rows"],
        "positives": schema["positives"],
        "base_ctr": schema["base_ctr"],
        "split": split_info,
        "sources": [s.shown for s in sources],
        "ignored": list(plan.ignored),
        "seconds": round(time.perf_counter() - start, 3),
    }


def _route(
    sources: list[Source], opts: ImportOptions, plan: Plan, writers: dict[str, _SplitWriter]
) -> dict[str, Any]:
    label = plan.spec.label
    files = opts.split_files()
    if files is not None:
        for split, source in zip(files, sources, strict=True):
            for row, batch in source.batches():
                check_labels(batch, label, source, row)
                writers[split].add(batch)
        return {"method": "files"}
    if plan.time_column is None:
        for offset, source, row, batch in _all_batches(sources):
            check_labels(batch, label, source, row)
            assign = splitting.ratio_assignment(opts.seed, offset + row, batch.num_rows, opts.split)
            _scatter(batch, assign, writers)
        return {"method": "random", "fractions": list(opts.split), "seed": opts.seed}
    column = plan.time_column
    first_pass = ((s, r, b) for _o, s, r, b in _all_batches(sources, [column]))
    cuts = splitting.time_cuts(first_pass, column, opts.split, opts.seed)
    for _offset, source, row, batch in _all_batches(sources):
        check_labels(batch, label, source, row)
        times = splitting.time_values(batch, column, source, row)
        _scatter(batch, splitting.time_assignment(times, cuts), writers)
    tp = plan.schema.field(column).type
    shown = [pa.array([c]).cast(tp)[0].as_py() for c in cuts]
    return {"method": "time", "column": column, "fractions": list(opts.split), "cuts": shown}


def _all_batches(
    sources: list[Source], columns: list[str] | None = None
) -> Iterator[tuple[int, Source, int, pa.RecordBatch]]:
    """``(rows before this source, source, row in source, batch)`` over every source."""
    offset = 0
    for source in sources:
        rows = 0
        for row, batch in source.batches(columns):
            yield offset, source, row, batch
            rows = row + batch.num_rows
        offset += rows


def _scatter(
    batch: pa.RecordBatch, assign: np.ndarray[Any, Any], writers: dict[str, _SplitWriter]
) -> None:
    for k, split in enumerate(layout.SPLITS):
        writers[split].add(batch.filter(pa.array(assign == k)))


def _schema_json(
    plan: Plan,
    sources: list[Source],
    opts: ImportOptions,
    writers: dict[str, _SplitWriter],
    split_info: dict[str, Any],
) -> dict[str, Any]:
    rows = {s: w.rows for s, w in writers.items()}
    positives = {s: w.positives for s, w in writers.items()}
    files = opts.split_files()
    roles = list(files) if files is not None else ["all"] * len(sources)
    schema: dict[str, Any] = {
        **plan.spec.to_dict(),
        "splits": list(layout.SPLITS),
        "rows": rows,
        "positives": positives,
        "base_ctr": round(sum(positives.values()) / max(sum(rows.values()), 1), 6),
    }
    if plan.time_column:
        schema["time_column"] = plan.time_column
    schema["imported"] = {
        "name": layout.IMPORTER_NAME,
        "version": IMPORTER_VERSION,
        "sources": [
            {"path": str(s.path), "format": s.format, "split": role, "size_bytes": _size(s)}
            for s, role in zip(sources, roles, strict=True)
        ],
        "split": split_info,
        "ignored_columns": list(plan.ignored),
        "imported_at": utc_now(),
    }
    return schema


def _size(source: Source) -> int:
    return source.path.stat().st_size
