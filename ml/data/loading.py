"""Read one split of the feature data into a compact, column-pruned DataFrame.

Only the label and feature columns named by the :class:`~ml.config.FeatureSpec` are read
(parquet column pruning); numeric features become float32, the label int8, string
categories pandas ``category`` (dictionary-encoded, a few bytes a row) and integer
categories the narrowest integer type that holds them. At 10M rows that keeps the frame
well under 1 GB before encoding. The directory may be a bucket prefix (``s3://...``): the
same columns are read with ranged GETs (:class:`ml.storage.files.FileRef`).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd

from ml.config import FeatureSpec
from ml.data.layout import SPLITS, features_location, remote_exists, split_file
from ml.errors import DataLoadError, StorageLayerError
from ml.storage.files import Location, show

__all__ = ["check_features_dir", "load_split", "to_frame"]

_HOW_TO_GET_DATA = (
    "import your data with `ctr-pipeline data import` or generate synthetic data with "
    "`ctr-pipeline data generate`"
)


def check_features_dir(
    features_dir: str | os.PathLike[str], splits: tuple[str, ...] = SPLITS
) -> Location:
    """Return the resolved features directory (or URL) or raise naming what is missing.

    Raises:
        DataLoadError: the directory or one of the split files does not exist.
        StorageLayerError: a bucket that is missing, refused or unreachable.
    """
    root = features_location(features_dir)
    if not remote_exists(root) if isinstance(root, str) else not root.is_dir():
        raise DataLoadError(
            f"features directory {show(root)} does not exist; {_HOW_TO_GET_DATA}, or pass "
            "--features-dir / set data.features_dir in the config"
        )
    refs = [split_file(root, s) for s in splits]
    missing = [str(r) for r in refs if not r.is_file()]
    if missing:
        raise DataLoadError(
            f"features directory {show(root)} is incomplete: missing {', '.join(missing)}; "
            f"every split needs <split>/data.parquet ({_HOW_TO_GET_DATA})"
        )
    return root


def load_split(
    features_dir: str | os.PathLike[str],
    split: str,
    spec: FeatureSpec,
    *,
    with_label: bool = True,
) -> pd.DataFrame:
    """Load the spec's columns of ``<features_dir>/<split>/data.parquet`` compactly.

    Args:
        features_dir: directory holding ``{train,val,test}/data.parquet``.
        split: ``train``, ``val`` or ``test`` (any sub-directory name works).
        spec: which columns are the label, categorical and numeric features.
        with_label: also read and check the label column.

    Returns:
        A DataFrame with exactly the spec's columns.

    Raises:
        DataLoadError: the file is missing or unreadable, a column is missing, the label is
            not 0/1, a numeric column is not numeric, or the split is empty.
    """
    import pyarrow.parquet as pq

    ref = split_file(features_dir, split)
    path: Any = str(ref) if ref.remote else ref.location
    if not ref.is_file():
        raise DataLoadError(f"{path} does not exist; {_HOW_TO_GET_DATA}")
    # a local file is read by pyarrow itself; an object through ranged GETs
    source = ref.open()
    try:
        schema = pq.read_schema(source)
    except StorageLayerError:
        raise  # the bucket or the endpoint, not the file: its own message and exit code
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        raise DataLoadError(f"{path} is not a readable parquet file: {exc}") from exc
    wanted = list(spec.all_columns if with_label else spec.feature_columns)
    missing = [c for c in wanted if c not in schema.names]
    if missing:
        raise DataLoadError(
            f"{path} has no column(s) {missing}; its columns are {schema.names}. Fix the data "
            "or the `features` section of the config"
        )
    table = pq.read_table(source if not ref.remote else ref.open(), columns=wanted)
    if table.num_rows == 0:
        raise DataLoadError(f"{path} has no rows")
    return to_frame(table, spec, path)


def to_frame(table: Any, spec: FeatureSpec, path: Any) -> pd.DataFrame:
    """The compact DataFrame of an arrow ``table`` holding (some of) the spec's columns:
    the label int8 (checked 0/1), numerics float32, categoricals as :func:`load_split`
    keeps them. ``path`` names the data in errors (a file, or a file and row group).

    Raises:
        DataLoadError: the label is not 0/1 or a numeric column is not numeric.
    """
    out: dict[str, pd.Series] = {}
    # Convert and drop one column at a time so only one uncompressed column is extra.
    for name in [c for c in spec.all_columns if c in table.column_names]:
        col = table.column(name)
        table = table.drop_columns([name])
        if name == spec.label:
            out[name] = _label(col.to_pandas(), path, name)
        elif name in spec.numeric:
            out[name] = _numeric(col.to_pandas(), path, name)
        else:
            out[name] = _categorical(col, name)
        del col
    return pd.DataFrame(out, copy=False)


def _label(values: pd.Series, path: Any, name: str) -> pd.Series:
    if not (pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values)):
        raise DataLoadError(f"{path}: label column {name!r} must be 0/1, got dtype {values.dtype}")
    arr = values.to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isin(arr, (0.0, 1.0))
    if bad.any():
        raise DataLoadError(
            f"{path}: label column {name!r} must hold only 0 and 1; found "
            f"{int(bad.sum())} other value(s), e.g. {arr[bad][:3].tolist()}"
        )
    return pd.Series(arr.astype(np.int8), name=name)


def _numeric(values: pd.Series, path: Any, name: str) -> pd.Series:
    if not (pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values)):
        raise DataLoadError(
            f"{path}: numeric column {name!r} has dtype {values.dtype}; convert it to numbers "
            "or list it under features.categorical"
        )
    return pd.Series(values.to_numpy(dtype=np.float32, na_value=np.nan), name=name)


def _categorical(col: Any, name: str) -> pd.Series:
    import pyarrow as pa
    import pyarrow.compute as pc

    assert isinstance(col, pa.ChunkedArray)
    if pa.types.is_integer(col.type) and col.null_count == 0 and len(col) > 0:
        lo, hi = pc.min_max(col).values()
        for dtype in (np.int8, np.int16, np.int32, np.int64):
            info = np.iinfo(dtype)
            if info.min <= lo.as_py() and hi.as_py() <= info.max:
                return pd.Series(col.to_numpy().astype(dtype, copy=False), name=name)
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        col = col.dictionary_encode()
    series: pd.Series = col.to_pandas()
    series.name = name
    return series
