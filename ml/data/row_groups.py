"""Read one split a row group at a time: the streaming path's only reader of parquet.

:func:`iter_split` opens ``<features_dir>/<split>/data.parquet`` (a local path, or an
object in a bucket through ranged GETs, :class:`ml.storage.files.FileRef`), reads only
the spec's columns, and yields each row group in slices of at most ``batch_rows`` rows
(``ParquetFile.iter_batches``) as the same compact DataFrame :func:`ml.data.loading.load_split`
builds, so memory is bounded by a slice whatever the file's size.

Bad input is named precisely: a file whose footer is gone (truncated) cannot be opened
and the error names the file; a row group that cannot be decoded (a corrupt or cut-off
column chunk) names the file and the row group; a column whose type kind changes from
what the stream saw first (``expect``: the train split's kinds, so a val file whose
``user_id`` became a string is caught) names the file, the row group and both types.

:func:`split_rows` reads the row count from the footer only (the ``data.streaming: auto``
decision and the shard cache's sizes).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ml.config import FeatureSpec
from ml.data.layout import split_file
from ml.data.loading import to_frame
from ml.data.schema import type_kind
from ml.errors import DataLoadError, StorageLayerError

__all__ = ["BATCH_ROWS", "Chunk", "iter_split", "sample_split", "split_kinds", "split_rows"]

#: Rows decoded at a time: a few MB of columns, large enough that per-slice overhead is
#: noise (the encoder is vectorised per slice).
BATCH_ROWS = 65_536


@dataclass(frozen=True)
class Chunk:
    """One slice of a split: where it came from and its rows."""

    path: str
    row_group: int
    frame: pd.DataFrame
    #: ``<file>, row group N of M`` for messages
    where: str


def _open(features_dir: str | os.PathLike[str], split: str) -> tuple[Any, str]:
    import pyarrow.parquet as pq

    ref = split_file(features_dir, split)
    path = str(ref)
    if not ref.is_file():
        raise DataLoadError(
            f"{path} does not exist; import or generate the features (`ctr-pipeline data "
            "import` / `ctr-pipeline data generate`)"
        )
    try:
        return pq.ParquetFile(ref.open()), path
    except StorageLayerError:
        raise
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        raise DataLoadError(
            f"{path} is not a readable parquet file ({exc}); it is truncated or corrupt: "
            "write or import it again"
        ) from exc


def split_rows(features_dir: str | os.PathLike[str], split: str) -> int:
    """Rows of a split, from the parquet footer (no rows read)."""
    pf, _ = _open(features_dir, split)
    return int(pf.metadata.num_rows)


def split_kinds(
    features_dir: str | os.PathLike[str], split: str, spec: FeatureSpec
) -> dict[str, str]:
    """``{column: type kind}`` of the spec's columns in a split's schema."""
    pf, _ = _open(features_dir, split)
    schema = pf.schema_arrow
    return {c: type_kind(schema.field(c).type) for c in spec.all_columns if c in schema.names}


def iter_split(
    features_dir: str | os.PathLike[str],
    split: str,
    spec: FeatureSpec,
    *,
    with_label: bool = True,
    batch_rows: int = BATCH_ROWS,
    expect: dict[str, str] | None = None,
) -> Iterator[Chunk]:
    """The split's rows, row group by row group, in slices of at most ``batch_rows``.

    Args:
        features_dir: the features directory (local or a bucket URL).
        split: ``train``, ``val`` or ``test``.
        spec: which columns to read (label, categoricals, numerics).
        with_label: also read (and check) the label.
        batch_rows: the most rows one slice holds.
        expect: ``{column: type kind}`` the columns must keep (default: the kinds in
            this file's own schema).

    Raises:
        DataLoadError: the file is missing, truncated or corrupt (naming the row group
            when one cannot be read), a column is missing, or a column's type kind
            differs from ``expect``.
    """
    pf, path = _open(features_dir, split)
    wanted = list(spec.all_columns if with_label else spec.feature_columns)
    names = pf.schema_arrow.names
    missing = [c for c in wanted if c not in names]
    if missing:
        raise DataLoadError(
            f"{path} has no column(s) {missing}; its columns are {names}. Fix the data or "
            "the `features` section of the config"
        )
    import pyarrow as pa

    kinds = dict(expect or {})
    for rg in range(pf.num_row_groups):
        where = f"{path}, row group {rg} of {pf.num_row_groups}"
        batches = pf.iter_batches(batch_size=batch_rows, row_groups=[rg], columns=wanted)
        for batch in _guarded(batches, where):
            _check_kinds(batch.schema, kinds, where)
            yield Chunk(path, rg, to_frame(pa.Table.from_batches([batch]), spec, where), where)


def _guarded(batches: Iterator[Any], where: str) -> Iterator[Any]:
    """``batches``, with a decoding failure turned into an error naming ``where``."""
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except StorageLayerError:
            raise
        except Exception as exc:  # ArrowInvalid, OSError, ...: a corrupt or cut-off chunk
            raise DataLoadError(
                f"{where} cannot be read ({str(exc).strip()[:200]}); the file is truncated "
                "or corrupt: write or import it again"
            ) from exc
        yield batch


def _check_kinds(schema: Any, kinds: dict[str, str], where: str) -> None:
    """Record each column's kind the first time it is seen; raise when it changes."""
    for field in schema:
        kind = type_kind(field.type)
        seen = kinds.setdefault(field.name, kind)
        if seen != kind and {seen, kind} != {"integer", "bool"}:
            raise DataLoadError(
                f"{where}: column {field.name!r} is {kind} ({field.type}) here but {seen} "
                "earlier in the stream (the train split); the schema changed mid-stream: "
                "make the column's type the same in every file"
            )


def sample_split(
    features_dir: str | os.PathLike[str], split: str, spec: FeatureSpec, max_rows: int, seed: int
) -> pd.DataFrame:
    """The whole split when it has at most ``max_rows`` rows, else a seeded uniform sample
    of ``max_rows`` of them (in file order), read a row group at a time.

    Raises:
        DataLoadError: as :func:`iter_split`.
    """
    import numpy as np

    from ml.data.loading import load_split

    total = split_rows(features_dir, split)
    if total <= max_rows:
        return load_split(features_dir, split, spec)
    keep = np.zeros(total, dtype=bool)
    keep[np.random.default_rng(seed).choice(total, size=max_rows, replace=False)] = True
    parts, start = [], 0
    for chunk in iter_split(features_dir, split, spec):
        mask = keep[start : start + len(chunk.frame)]
        start += len(chunk.frame)
        parts.append(chunk.frame[mask])
    out = pd.concat(parts, ignore_index=True)
    for col in spec.categorical:  # slices' categories differ: one categorical again
        if out[col].dtype == object:
            out[col] = out[col].astype("category")
    return out
