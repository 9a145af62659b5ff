"""Per-column pieces of the preprocessing: fitted field states and value coercion.

:class:`Field` (a categorical vocabulary) and :class:`Numeric` (clip range, scaling and
quantile bin edges of a numeric column) are what :class:`ml.data.preprocessing.Preprocessor`
holds; the functions here fit them on train values and bring raw values (ints, strings,
floats, pandas categoricals) to the vocabulary's type.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from ml.errors import PreprocessingError

#: Numerics are clipped to these train quantiles before scaling.
CLIP_QUANTILES = (0.001, 0.999)


@dataclass(frozen=True)
class Field:
    name: str
    kind: str  # "int" or "str": the type of the vocabulary values
    vocab: tuple[Any, ...]
    buckets: int = 0  # > 0: hashed into this many buckets (ml.data.hashing), no vocab

    @property
    def size(self) -> int:
        """Embedding rows: the vocabulary (or the buckets) plus id 0 (OOV or missing)."""
        return (self.buckets or len(self.vocab)) + 1


@dataclass(frozen=True)
class Numeric:
    name: str
    mean: float
    std: float
    lo: float = float("-inf")
    hi: float = float("inf")
    edges: tuple[float, ...] = ()  # bin edges; () = no bin field

    def encode(self, x: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.float32], Any]:
        """``(scaled values, bin ids or None)`` of finite, imputed values ``x``."""
        scaled = ((np.clip(x, self.lo, self.hi) - self.mean) / self.std).astype(np.float32)
        if not self.edges:
            return scaled, None
        return scaled, np.searchsorted(np.asarray(self.edges), x, side="right").astype(np.int32) + 1


def fit_numeric(name: str, vals: npt.NDArray[np.float64], bins: int) -> Numeric:
    """Clip range, mean/std of the clipped values, and quantile bin edges of one column."""
    lo, hi = (float(q) for q in np.quantile(vals, CLIP_QUANTILES))
    clipped = np.clip(vals, lo, hi)
    std = float(clipped.std())
    edges: tuple[float, ...] = ()
    if bins > 1:
        cuts = np.unique(np.quantile(vals, np.linspace(0.0, 1.0, bins + 1)[1:-1]))
        edges = tuple(float(e) for e in cuts)
    # A constant column would divide by zero; scaling by 1 keeps it at 0.
    return Numeric(name, float(clipped.mean()), std if std > 1e-12 else 1.0, lo, hi, edges)


def require_columns(df: pd.DataFrame, columns: Sequence[str], source: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise PreprocessingError(
            f"{source}: missing feature column(s) {missing}; the model needs {list(columns)}"
        )


def value_kind(values: pd.Series) -> str:
    dtype = values.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        dtype = dtype.categories.dtype
    if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_integer_dtype(dtype):
        return "int"
    if pd.api.types.is_float_dtype(dtype):
        # Integer ids read as float because of missing values are still integer ids.
        v = values.to_numpy(dtype=np.float64, na_value=np.nan)
        v = v[np.isfinite(v)]
        return "int" if np.array_equal(v, np.round(v)) else "str"
    return "str"


def fit_field(values: pd.Series, name: str, min_frequency: int, buckets: int = 0) -> Field:
    """The vocabulary of one column (``buckets`` > 0: only its kind; values are hashed)."""
    kind = value_kind(values)
    if buckets:
        return Field(name, kind, (), buckets)
    counts = coerce(values, kind).value_counts(dropna=True)
    return Field(name, kind, vocabulary(counts, kind, min_frequency))


def vocabulary(counts: pd.Series, kind: str, min_frequency: int) -> tuple[Any, ...]:
    """The sorted values of ``counts`` (value -> count) seen at least ``min_frequency`` times."""
    kept = counts.index[counts.to_numpy() >= min_frequency]
    if kind == "int":
        return tuple(sorted(int(v) for v in kept))
    return tuple(sorted(str(v) for v in kept))


def coerce(values: pd.Series, kind: str) -> pd.Series:
    """Bring values to the vocabulary's type; what cannot be converted becomes missing."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return values  # categories are coerced separately
    if kind == "int":
        if pd.api.types.is_integer_dtype(values.dtype) and not isinstance(
            values.dtype, pd.api.extensions.ExtensionDtype
        ):
            return values
        if pd.api.types.is_bool_dtype(values.dtype):
            return values.astype(np.int64)
        num = pd.to_numeric(values, errors="coerce")
        arr = num.to_numpy(dtype=np.float64, na_value=np.nan)
        whole = np.isfinite(arr) & (arr == np.round(arr))
        return pd.Series(pd.array(np.where(whole, arr, 0).astype(np.int64), dtype="Int64")).where(
            whole, pd.NA
        )
    if pd.api.types.is_object_dtype(values.dtype) or pd.api.types.is_string_dtype(values.dtype):
        return (
            values.astype(object)
            .where(values.notna(), None)
            .map(lambda v: v if v is None or isinstance(v, str) else str(v))
        )
    if pd.api.types.is_float_dtype(values.dtype):
        arr = values.to_numpy(dtype=np.float64, na_value=np.nan)
        as_int = np.isfinite(arr) & (arr == np.round(arr))
        text = np.where(
            as_int, np.round(arr).astype("int64", copy=False).astype(str), arr.astype(str)
        )
        return pd.Series(text, dtype=object).where(np.isfinite(arr), None)
    return values.astype(str).where(values.notna(), None)


def as_float(values: pd.Series, name: str, source: str) -> npt.NDArray[np.float64]:
    if pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype):
        return values.to_numpy(dtype=np.float64, na_value=np.nan)
    converted = pd.to_numeric(values, errors="coerce")
    bad = converted.isna() & values.notna()
    if bad.any():
        example = values[bad].iloc[0]
        raise PreprocessingError(
            f"{source}: numeric column {name!r} holds non-numeric value(s) such as "
            f"{example!r} ({int(bad.sum())} row(s)); fix the data or list the column under "
            "features.categorical"
        )
    return converted.to_numpy(dtype=np.float64, na_value=np.nan)


def raise_nonfinite(
    x: npt.NDArray[np.float64], finite: npt.NDArray[np.bool_], name: str, source: str
) -> None:
    n_nan = int(np.isnan(x).sum())
    n_inf = int((~finite).sum()) - n_nan
    raise PreprocessingError(
        f"{source}: numeric column {name!r} has {n_nan} NaN and {n_inf} inf value(s) and "
        "data.numeric_nan is 'error'; clean the column or set data.numeric_nan: impute "
        "(replaces them with the train mean)"
    )
