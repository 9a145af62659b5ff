"""A compact profile of a model's training data, stored with each registered version.

``data_profile.json`` (:data:`PROFILE_FILE`) is added to a version through the registry's
``register(..., extra_files=...)`` extension point, so it is covered by the version's
manifest. It holds, per feature column of the training split:

- categorical: the ``top_k`` most frequent values with their shares, the share of all
  other values (``other``) and of missing values (``missing``), and the number of
  distinct values;
- numeric: ``cuts``, the distinct decile boundaries of the finite values, and the share
  of rows in each of the ``len(cuts) + 1`` bins ``(-inf, c1], (c1, c2], ..., (ck, inf)``,
  the share of missing values (null, NaN, inf: what the predictor imputes), plus
  summary quantiles, mean and standard deviation for people.

A few kilobytes whatever the data size. The data is read one column at a time
(:class:`SplitColumns`: in place, column-pruned, from a local file or a bucket), so memory
stays bounded by one column of the split. :mod:`ml.monitoring.drift` compares new data
with it bin by bin.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from ml import paths
from ml.config import FeatureSpec
from ml.errors import DataError, StorageLayerError
from ml.fsutil import dumps_json, utc_now

PROFILE_FILE = "data_profile.json"
FORMAT_VERSION = 1
DEFAULT_TOP_K = 20
DEFAULT_BINS = 10
#: Quantiles kept for people (the drift check uses the bins).
SUMMARY_QUANTILES = (0.0, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 1.0)

FloatArray = npt.NDArray[np.float64]


class SplitColumns:
    """The split ``<features_dir>/<split>/data.parquet``, read one column at a time.

    The file is found through :func:`ml.data.layout.split_file`, so it may be local or
    in a bucket; an object is read through ranged GETs (:class:`ml.storage.files.FileRef`),
    so only the footer and the columns asked for are fetched, as on disk. Use it as a
    context manager (a local file is closed at the end).

    Raises:
        DataError: the file is missing or is not a readable parquet file.
        StorageLayerError: the bucket cannot be read (its own message and exit code).
    """

    def __init__(self, features_dir: str | os.PathLike[str], split: str) -> None:
        import pyarrow.parquet as pq

        from ml.data.layout import split_file

        ref = split_file(features_dir, split)
        self.shown = str(ref)
        try:
            self._file = pq.ParquetFile(ref.open())
        except StorageLayerError:
            raise
        except Exception as exc:  # pyarrow raises several types for a missing/corrupt file
            raise DataError(f"cannot read {self.shown}: {exc}") from exc

    def __enter__(self) -> SplitColumns:
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.close()

    @property
    def rows(self) -> int:
        return int(self._file.metadata.num_rows)

    def column(self, column: str) -> pd.Series:
        """One column as a pandas Series (dictionary strings → category).

        Raises:
            DataError: the file has no such column or it cannot be read.
        """
        if column not in self._file.schema_arrow.names:
            raise DataError(f"{self.shown} has no column {column!r}")
        try:
            table = self._file.read(columns=[column])
        except StorageLayerError:
            raise
        except (OSError, KeyError, ValueError) as exc:
            raise DataError(f"cannot read column {column!r} of {self.shown}: {exc}") from exc
        series: pd.Series = table.column(0).to_pandas()
        return series


def _key(value: Any) -> int | str:
    """A category value as a JSON key: integral numbers as int, everything else as str."""
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return int(value)
    return str(value)


def category_counts(values: pd.Series) -> tuple[dict[int | str, int], int]:
    """``({value: count}, missing count)``; values normalised by :func:`_key`."""
    counts = values.value_counts(dropna=True, sort=False)
    out: dict[int | str, int] = {}
    for value, count in zip(counts.index, counts.to_numpy(), strict=True):
        if count:
            key = _key(value)
            out[key] = out.get(key, 0) + int(count)
    return out, int(values.isna().sum())


def numeric_values(values: pd.Series) -> FloatArray:
    """float64 values; null → NaN (non-numbers are a :class:`DataError`)."""
    if pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype):
        return values.to_numpy(dtype=np.float64, na_value=np.nan)
    converted = pd.to_numeric(values, errors="coerce")
    if bool((converted.isna() & values.notna()).any()):
        raise DataError(f"numeric column {values.name!r} holds non-numeric values")
    return converted.to_numpy(dtype=np.float64, na_value=np.nan)


def profile_categorical(values: pd.Series, top_k: int = DEFAULT_TOP_K) -> dict[str, Any]:
    counts, missing = category_counts(values)
    n = max(len(values), 1)
    top = sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))[:top_k]
    top_total = sum(c for _, c in top)
    return {
        "top": [[value, count / n] for value, count in top],
        "other": (n - missing - top_total) / n if len(values) else 0.0,
        "missing": missing / n,
        "distinct": len(counts),
    }


def profile_numeric(values: pd.Series, bins: int = DEFAULT_BINS) -> dict[str, Any]:
    x = numeric_values(values)
    finite = x[np.isfinite(x)]
    n = max(len(x), 1)
    if len(finite) == 0:
        return {"cuts": [], "shares": [0.0], "missing": len(x) / n, "quantiles": {}}
    probs = np.arange(1, bins) / bins
    cuts = np.unique(np.quantile(finite, probs))
    counts = np.bincount(np.searchsorted(cuts, finite, side="left"), minlength=len(cuts) + 1)
    summary = np.quantile(finite, SUMMARY_QUANTILES)
    return {
        "cuts": [float(c) for c in cuts],
        "shares": [float(c) / n for c in counts],
        "missing": (len(x) - len(finite)) / n,
        "quantiles": {f"{q:g}": float(v) for q, v in zip(SUMMARY_QUANTILES, summary, strict=True)},
        "mean": float(finite.mean()),
        "std": float(finite.std()),
    }


def build_profile(
    features_dir: str | os.PathLike[str],
    spec: FeatureSpec,
    *,
    split: str = "train",
    top_k: int = DEFAULT_TOP_K,
    bins: int = DEFAULT_BINS,
) -> dict[str, Any]:
    """Profile the feature columns of ``<features_dir>/<split>/data.parquet``.

    Raises:
        DataError: the split file or a column cannot be read.
    """
    with SplitColumns(features_dir, split) as data:
        return {
            "format_version": FORMAT_VERSION,
            "created_at": utc_now(),
            "source": {"features_dir": str(features_dir), "split": split, "rows": data.rows},
            "top_k": top_k,
            "bins": bins,
            "categorical": {
                c: profile_categorical(data.column(c), top_k) for c in spec.categorical
            },
            "numeric": {c: profile_numeric(data.column(c), bins) for c in spec.numeric},
        }


def profile_bytes(profile: dict[str, Any]) -> bytes:
    """The profile as the bytes stored in the registry (indented JSON, trailing newline)."""
    return dumps_json(profile).encode()


def profile_extra_files(run_dir: str | os.PathLike[str]) -> dict[str, bytes]:
    """``{PROFILE_FILE: bytes}`` for ``register(..., extra_files=...)``: the profile of the
    training run's train split (its ``run.json`` names the features directory, its
    ``config.yaml`` the columns).

    Returns an empty mapping, with a warning logged, when the data is gone or unreadable:
    the version is registered without a profile and the drift check says so later.
    """
    import logging

    from ml.config import load_config
    from ml.errors import UserError
    from ml.training import run_dir as rd

    run = paths.resolve(run_dir)
    try:
        features = rd.read_run_info(run).get("features_dir")
        if not features:
            raise DataError(f"{run / rd.RUN_JSON} names no features_dir")
        spec = load_config(run / rd.CONFIG_YAML).features
        profile = build_profile(features, spec)
    except (UserError, OSError) as exc:
        logging.getLogger("ml.monitoring").warning(
            "No data profile for %s (drift checks against it will be skipped): %s", run, exc
        )
        return {}
    return {PROFILE_FILE: profile_bytes(profile)}
