"""Column facts of a parquet file from its row-group statistics, reading rows only if needed.

Null counts and min/max come from the footer's statistics when the writer stored them,
else from the column (one row group at a time); positives and NaN/inf counts always read
the column, one row group at a time, so memory stays bounded by a row group.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq


def _stats(pf: pq.ParquetFile, idx: int) -> Iterator[Any]:
    for rg in range(pf.num_row_groups):
        yield pf.metadata.row_group(rg).column(idx).statistics


def null_count(pf: pq.ParquetFile, col: str, idx: int) -> int:
    """Nulls in column ``col`` (index ``idx`` in the file's schema)."""
    total = 0
    for rg, st in enumerate(_stats(pf, idx)):
        if st is not None and st.has_null_count:
            total += st.null_count
        else:
            total += pf.read_row_group(rg, columns=[col]).column(0).null_count
    return total


def int_min_max(pf: pq.ParquetFile, col: str, idx: int) -> tuple[int | None, int | None]:
    """(min, max) of an integer or boolean column as ints; (None, None) when all null."""
    lo: int | None = None
    hi: int | None = None
    for rg, st in enumerate(_stats(pf, idx)):
        if st is not None and st.has_min_max:
            a, b = st.min, st.max
        else:
            mm = pc.min_max(pf.read_row_group(rg, columns=[col]).column(0))
            a, b = mm["min"].as_py(), mm["max"].as_py()
        if a is None:
            continue
        a, b = int(a), int(b)
        lo = a if lo is None else min(lo, a)
        hi = b if hi is None else max(hi, b)
    return lo, hi


def count_positives(pf: pq.ParquetFile, col: str) -> int:
    """Sum of a 0/1 (or boolean) column."""
    total = 0
    for rg in range(pf.num_row_groups):
        values = pf.read_row_group(rg, columns=[col]).column(0)
        s = pc.sum(pc.cast(values, pa.int64())).as_py()
        total += int(s or 0)
    return total


def nonfinite(pf: pq.ParquetFile, col: str, tp: pa.DataType) -> tuple[int, int]:
    """(NaN count, inf count) of a numeric column; integer columns cannot hold either."""
    if not pa.types.is_floating(tp):
        return 0, 0
    n_nan = n_inf = 0
    for rg in range(pf.num_row_groups):
        values = pf.read_row_group(rg, columns=[col]).column(0)
        n_nan += int(pc.sum(pc.cast(pc.is_nan(values), pa.int64())).as_py() or 0)
        n_inf += int(pc.sum(pc.cast(pc.is_inf(values), pa.int64())).as_py() or 0)
    return n_nan, n_inf
