"""Assign rows to train/val/test: at random (seeded) or by time, in bounded memory.

- Random: row ``i`` (counted over all sources) draws ``u = hash(seed, i)`` in [0, 1) and
  goes to train if ``u < f_train``, to val if ``u < f_train + f_val``, else to test. The
  hash depends on the row's index only, so the split does not depend on block sizes.
- By time: a first pass reads only the time column and keeps a uniform sample of at most
  :data:`SAMPLE_ROWS` values (bottom-k by a per-row hash), whose quantiles give two cut
  times; a second pass sends ``t < cut1`` to train, ``cut1 <= t < cut2`` to val and
  ``t >= cut2`` to test. Rows with the same time land in the same split, and nothing is
  sorted but the sample. Up to :data:`SAMPLE_ROWS` rows the cuts are exact quantiles.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from ml.data.importer.sources import Source
from ml.errors import DataImportError

SAMPLE_ROWS = 2_000_000
U64 = npt.NDArray[np.uint64]


def _splitmix64(x: U64) -> U64:
    with np.errstate(over="ignore"):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def row_uniform(seed: int, start: int, n: int) -> npt.NDArray[np.float64]:
    """``n`` uniforms in [0, 1) for rows ``start .. start+n-1`` under ``seed``."""
    rows = np.arange(start, start + n, dtype=np.uint64)
    key = _splitmix64(np.asarray([seed], dtype=np.uint64))[0]
    bits = _splitmix64(rows ^ key) >> np.uint64(11)
    return bits.astype(np.float64) / float(1 << 53)


def ratio_assignment(
    seed: int, start: int, n: int, fractions: tuple[float, float, float]
) -> npt.NDArray[np.int8]:
    """Split index (0 train, 1 val, 2 test) of rows ``start .. start+n-1``."""
    u = row_uniform(seed, start, n)
    return np.searchsorted(np.cumsum(fractions[:2]), u, side="right").astype(np.int8)


def time_values(batch: pa.RecordBatch, column: str, source: Source, start: int) -> Any:
    """The time column as numbers (timestamps as integers); nulls and NaN are errors."""
    values = batch.column(column)
    if pa.types.is_temporal(values.type):
        values = values.cast(pa.int64()) if values.type.bit_width == 64 else values.cast(pa.int32())
    arr = values.to_numpy(zero_copy_only=False)
    bad = values.is_null()
    if pa.types.is_floating(values.type):
        bad = pc.or_(bad, pc.is_nan(values))
    if pc.any(bad).as_py():
        i = int(np.flatnonzero(np.asarray(bad))[0])
        raise source.error(start + i, column, "the time is empty; every row needs one to be split")
    return arr


class TimeSample:
    """A uniform sample of at most ``SAMPLE_ROWS`` time values, kept by a per-row hash."""

    def __init__(self, seed: int, limit: int = SAMPLE_ROWS) -> None:
        self.seed = seed ^ 0x7157
        self.limit = limit
        self.keys = np.zeros(0)
        self.values: npt.NDArray[Any] = np.zeros(0)
        self.rows = 0

    def add(self, values: npt.NDArray[Any]) -> None:
        keys = row_uniform(self.seed, self.rows, len(values))
        self.rows += len(values)
        self.keys = np.concatenate([self.keys, keys])
        self.values = np.concatenate([self.values.astype(values.dtype), values])
        if len(self.keys) > 2 * self.limit:
            self._trim()

    def _trim(self) -> None:
        if len(self.keys) > self.limit:
            keep = np.argpartition(self.keys, self.limit)[: self.limit]
            self.keys, self.values = self.keys[keep], self.values[keep]

    def cuts(self, fractions: tuple[float, float, float], column: str) -> tuple[Any, Any]:
        """The two cut times; raise when a split would get no rows."""
        self._trim()
        ordered = np.sort(self.values)
        n = len(ordered)
        if n == 0:
            raise DataImportError("the source holds no rows")
        c1 = ordered[min(int(fractions[0] * n), n - 1)]
        c2 = ordered[min(int((fractions[0] + fractions[1]) * n), n - 1)]
        empty = [name for name, ok in (("train", c1 > ordered[0]), ("val", c2 > c1)) if not ok]
        if empty:
            raise DataImportError(
                f"time column {column!r} cannot be cut {fractions}: split(s) {empty} would get "
                f"no rows (its values range over {_distinct(ordered)}); choose other --split "
                "fractions or give the splits as files (--train/--val/--test)"
            )
        return c1, c2


def _distinct(ordered: npt.NDArray[Any]) -> str:
    distinct = np.unique(ordered)
    return f"{len(distinct)} distinct value(s), {distinct[0]} to {distinct[-1]}"


def time_assignment(times: npt.NDArray[Any], cuts: tuple[Any, Any]) -> npt.NDArray[np.int8]:
    """Split index (0 train, 1 val, 2 test) of each time."""
    return np.searchsorted(np.asarray(cuts), times, side="right").astype(np.int8)


def time_cuts(
    batches: Iterable[tuple[Source, int, pa.RecordBatch]],
    column: str,
    fractions: tuple[float, float, float],
    seed: int,
) -> tuple[Any, Any]:
    """First pass: the cut times from every source's time column."""
    sample = TimeSample(seed)
    for source, start, batch in batches:
        sample.add(time_values(batch, column, source, start))
    return sample.cuts(fractions, column)
