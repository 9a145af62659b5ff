"""Feature preprocessing fitted on the training split only.

Categorical columns get a vocabulary each: the train values seen at least
``min_frequency`` times, sorted, mapped to ids ``1..V``; id ``0`` is the
out-of-vocabulary (OOV) bucket for rarer, unseen and missing values, so the model learns
one shared "unknown" embedding from the rare train values. Numeric columns are
standardised with the train mean and standard deviation; NaN/inf either become the train
mean (``numeric_nan="impute"``) or are an error naming the file and column (``"error"``).

Encoding is vectorised (a pandas hash lookup per column, or one table lookup for small
non-negative integer ids), never a per-row Python loop. The fitted state is plain
Python (lists, dicts, floats) so a checkpoint holding it loads with
``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from ml.config import NUMERIC_NAN_POLICIES, FeatureSpec
from ml.errors import PreprocessingError

# PreprocessingError stays importable from here for older callers.
__all__ = ["FORMAT_VERSION", "OOV_ID", "PreprocessingError", "Preprocessor"]

FORMAT_VERSION = 1
OOV_ID = 0
# Integer vocabularies whose values lie in [0, this) are encoded with one array lookup.
_DENSE_LOOKUP_LIMIT = 1 << 24


@dataclass(frozen=True)
class _Field:
    name: str
    kind: str  # "int" or "str": the type of the vocabulary values
    vocab: tuple[Any, ...]


@dataclass(frozen=True)
class _Numeric:
    name: str
    mean: float
    std: float


class Preprocessor:
    """Fitted vocabularies and scaling; build it with :meth:`fit` or :meth:`from_state`."""

    def __init__(
        self,
        spec: FeatureSpec,
        fields: Sequence[_Field],
        numerics: Sequence[_Numeric],
        *,
        min_frequency: int,
        numeric_nan: str,
    ) -> None:
        self.spec = spec
        self.fields = tuple(fields)
        self.numerics = tuple(numerics)
        self.min_frequency = min_frequency
        self.numeric_nan = numeric_nan
        self._lookups: dict[str, Any] = {}

    # --- fitting ----------------------------------------------------------------------

    @classmethod
    def fit(
        cls,
        df: pd.DataFrame,
        spec: FeatureSpec,
        *,
        min_frequency: int = 2,
        numeric_nan: str = "impute",
        source: str = "train data",
    ) -> Preprocessor:
        """Fit vocabularies and scaling on ``df`` (the training split).

        Args:
            df: training rows with the spec's feature columns.
            spec: the feature columns.
            min_frequency: categories seen fewer times than this go to the OOV bucket.
            numeric_nan: ``impute`` (NaN/inf → train mean) or ``error``.
            source: names the data in error messages (e.g. the parquet path).

        Raises:
            PreprocessingError: a column is missing or a numeric column has no finite value
                (or any NaN/inf when ``numeric_nan="error"``).
        """
        if min_frequency < 1:
            raise PreprocessingError(f"min_frequency must be >= 1, got {min_frequency}")
        if numeric_nan not in NUMERIC_NAN_POLICIES:
            raise PreprocessingError(
                f"numeric_nan must be one of {NUMERIC_NAN_POLICIES}, got {numeric_nan!r}"
            )
        _require_columns(df, spec.feature_columns, source)
        fields = [_fit_field(df[c], c, min_frequency) for c in spec.categorical]
        numerics = []
        for c in spec.numeric:
            x = _as_float(df[c], c, source)
            finite = np.isfinite(x)
            if not finite.all() and numeric_nan == "error":
                _raise_nonfinite(x, finite, c, source)
            if not finite.any():
                raise PreprocessingError(
                    f"{source}: numeric column {c!r} has no finite value to fit a mean on"
                )
            vals = x[finite]
            mean = float(vals.mean())
            std = float(vals.std())
            # A constant column would divide by zero; scaling by 1 keeps it at 0.
            numerics.append(_Numeric(c, mean, std if std > 1e-12 else 1.0))
        return cls(spec, fields, numerics, min_frequency=min_frequency, numeric_nan=numeric_nan)

    # --- encoding ---------------------------------------------------------------------

    @property
    def vocab_sizes(self) -> list[int]:
        """Embedding rows per categorical field: the vocabulary plus the OOV bucket."""
        return [len(f.vocab) + 1 for f in self.fields]

    @property
    def num_numeric(self) -> int:
        return len(self.numerics)

    def transform(
        self,
        df: pd.DataFrame,
        *,
        source: str = "data",
        numeric_nan: str | None = None,
    ) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.float32]]:
        """Encode ``df`` into ``(categorical ids, scaled numerics)``.

        Args:
            df: rows with (at least) the feature columns; extra columns are ignored.
            source: names the data in error messages.
            numeric_nan: override the fitted NaN policy (the predictor always imputes).

        Returns:
            ``cat`` of shape (rows, categorical fields), int32 ids with 0 = OOV, and
            ``num`` of shape (rows, numeric fields), float32 standardised values.

        Raises:
            PreprocessingError: a feature column is missing, a numeric column holds
                non-numbers, or NaN/inf appear under the ``error`` policy.
        """
        policy = numeric_nan or self.numeric_nan
        _require_columns(df, self.spec.feature_columns, source)
        n = len(df)
        cat = np.empty((n, len(self.fields)), dtype=np.int32)
        for j, f in enumerate(self.fields):
            cat[:, j] = self._encode_field(df[f.name], f)
        num = np.empty((n, len(self.numerics)), dtype=np.float32)
        for j, s in enumerate(self.numerics):
            x = _as_float(df[s.name], s.name, source)
            finite = np.isfinite(x)
            if not finite.all():
                if policy == "error":
                    _raise_nonfinite(x, finite, s.name, source)
                x = np.where(finite, x, s.mean)
            num[:, j] = (x - s.mean) / s.std
        return cat, num

    def _encode_field(self, values: pd.Series, f: _Field) -> npt.NDArray[np.int32]:
        if isinstance(values.dtype, pd.CategoricalDtype):
            # Encode the (few) categories once, then gather by the per-row codes.
            cats = _coerce(pd.Series(values.cat.categories), f.kind)
            ids = np.append(self._lookup(cats, f), OOV_ID).astype(np.int32)
            codes = values.cat.codes.to_numpy()
            return ids[np.where(codes < 0, len(ids) - 1, codes)]
        return self._lookup(_coerce(values, f.kind), f)

    def _lookup(self, values: pd.Series, f: _Field) -> npt.NDArray[np.int32]:
        table = self._lookups.get(f.name)
        if table is None:
            table = self._build_lookup(f)
            self._lookups[f.name] = table
        if isinstance(table, np.ndarray):
            if pd.api.types.is_integer_dtype(values.dtype) and not isinstance(
                values.dtype, pd.api.extensions.ExtensionDtype
            ):
                v = values.to_numpy()
                inside = (v >= 0) & (v < len(table))
                out: npt.NDArray[np.int32] = np.where(inside, table[np.where(inside, v, 0)], OOV_ID)
                return out.astype(np.int32, copy=False)
            table = self._index(f)
        idx = table.get_indexer(pd.Index(values))
        return (idx + 1).astype(np.int32)

    def _build_lookup(self, f: _Field) -> Any:
        if f.kind == "int" and f.vocab and min(f.vocab) >= 0 and max(f.vocab) < _DENSE_LOOKUP_LIMIT:
            table = np.zeros(max(f.vocab) + 1, dtype=np.int32)
            table[np.asarray(f.vocab, dtype=np.int64)] = np.arange(1, len(f.vocab) + 1)
            return table
        return self._index(f)

    def _index(self, f: _Field) -> pd.Index:
        key = f"{f.name}\0index"
        idx: pd.Index | None = self._lookups.get(key)
        if idx is None:
            idx = pd.Index(list(f.vocab), dtype="int64" if f.kind == "int" else object)
            self._lookups[key] = idx
        return idx

    # --- plain state ------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Plain-Python state (lists, dicts, floats) for the checkpoint."""
        return {
            "format_version": FORMAT_VERSION,
            "features": self.spec.to_dict(),
            "min_frequency": self.min_frequency,
            "numeric_nan": self.numeric_nan,
            "categorical": [
                {"name": f.name, "kind": f.kind, "vocab": list(f.vocab)} for f in self.fields
            ],
            "numeric": [{"name": s.name, "mean": s.mean, "std": s.std} for s in self.numerics],
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Preprocessor:
        """Rebuild a preprocessor from :meth:`state_dict` output."""
        try:
            if state["format_version"] != FORMAT_VERSION:
                raise PreprocessingError(
                    f"preprocessor format_version {state['format_version']} is not supported "
                    f"(expected {FORMAT_VERSION}); retrain the model with this version"
                )
            spec = FeatureSpec.from_dict(state["features"])
            fields = [_Field(d["name"], d["kind"], tuple(d["vocab"])) for d in state["categorical"]]
            numerics = [
                _Numeric(d["name"], float(d["mean"]), float(d["std"])) for d in state["numeric"]
            ]
            return cls(
                spec,
                fields,
                numerics,
                min_frequency=int(state["min_frequency"]),
                numeric_nan=str(state["numeric_nan"]),
            )
        except (KeyError, TypeError) as exc:
            raise PreprocessingError(f"preprocessor state is malformed: missing {exc}") from exc


# --- helpers ----------------------------------------------------------------------------


def _require_columns(df: pd.DataFrame, columns: Sequence[str], source: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise PreprocessingError(
            f"{source}: missing feature column(s) {missing}; the model needs {list(columns)}"
        )


def _kind(values: pd.Series) -> str:
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


def _fit_field(values: pd.Series, name: str, min_frequency: int) -> _Field:
    kind = _kind(values)
    counts = _coerce(values, kind).value_counts(dropna=True)
    kept = counts.index[counts.to_numpy() >= min_frequency]
    if kind == "int":
        vocab: tuple[Any, ...] = tuple(sorted(int(v) for v in kept))
    else:
        vocab = tuple(sorted(str(v) for v in kept))
    return _Field(name, kind, vocab)


def _coerce(values: pd.Series, kind: str) -> pd.Series:
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


def _as_float(values: pd.Series, name: str, source: str) -> npt.NDArray[np.float64]:
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


def _raise_nonfinite(
    x: npt.NDArray[np.float64], finite: npt.NDArray[np.bool_], name: str, source: str
) -> None:
    n_nan = int(np.isnan(x).sum())
    n_inf = int((~finite).sum()) - n_nan
    raise PreprocessingError(
        f"{source}: numeric column {name!r} has {n_nan} NaN and {n_inf} inf value(s) and "
        "data.numeric_nan is 'error'; clean the column or set data.numeric_nan: impute "
        "(replaces them with the train mean)"
    )
