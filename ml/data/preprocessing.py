"""Feature preprocessing fitted on the training split only.

Categorical columns get a vocabulary each: the train values seen at least
``min_frequency`` times, sorted, mapped to ids ``1..V``; id ``0`` is the
out-of-vocabulary (OOV) bucket for rarer, unseen and missing values, so the model learns
one shared "unknown" embedding from the rare train values. A field listed in
``features.hash_buckets`` keeps no vocabulary: every value is hashed into one of ``N``
buckets (ids ``1..N``, 0 only for a missing value; :mod:`ml.data.hashing`), at training,
evaluation, serving and batch scoring alike, since all of them encode through here.

Numeric columns are robust to the heavy tails of counts and prices in real logs: each is
winsorised at its train 0.1%/99.9% quantiles and standardised with the train mean and
standard deviation of the clipped values, and (``numeric_bins`` > 0) also cut at its
train quantiles into up to ``numeric_bins`` bins that become one extra categorical field
each (id 0: missing), so a model learns a non-linear, monotone or not, effect per bin.
NaN/inf either become the train mean (``numeric_nan="impute"``; their bin is "missing")
or are an error naming the file and column (``"error"``).

Encoding is vectorised (a pandas hash lookup per column, or one table lookup for small
non-negative integer ids), never a per-row Python loop. The fitted state is plain
Python (lists, dicts, floats) so a checkpoint holding it loads with
``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from ml.choices import NUMERIC_NAN_POLICIES
from ml.config import FeatureSpec
from ml.data.columns import (
    Field,
    Numeric,
    as_float,
    coerce,
    fit_field,
    fit_numeric,
    raise_nonfinite,
    require_columns,
)
from ml.data.hashing import HASH_NAME, bucket_ids
from ml.errors import PreprocessingError

__all__ = ["FORMAT_VERSION", "OOV_ID", "Preprocessor"]

FORMAT_VERSION = 2
#: A state with a hashed field is version 3 (older code must refuse it rather than encode
#: the field as all-OOV); one without stays 2, so older code still serves it.
HASHED_FORMAT_VERSION = 3
#: Older states this code still reads (version 1: no clipping, no bins).
READABLE_FORMAT_VERSIONS = (1, 2, 3)
OOV_ID = 0
# Integer vocabularies whose values lie in [0, this) are encoded with one array lookup.
_DENSE_LOOKUP_LIMIT = 1 << 24


class Preprocessor:
    """Fitted vocabularies and scaling; build it with :meth:`fit` or :meth:`from_state`."""

    def __init__(
        self,
        spec: FeatureSpec,
        fields: Sequence[Field],
        numerics: Sequence[Numeric],
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
        numeric_bins: int = 0,
        source: str = "train data",
    ) -> Preprocessor:
        """Fit vocabularies and scaling on ``df`` (the training split).

        Args:
            df: training rows with the spec's feature columns.
            spec: the feature columns.
            min_frequency: categories seen fewer times than this go to the OOV bucket.
            numeric_nan: ``impute`` (NaN/inf → train mean) or ``error``.
            numeric_bins: quantile bins per numeric column, each an extra categorical
                field (0 or 1: none).
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
        require_columns(df, spec.feature_columns, source)
        fields = [
            fit_field(df[c], c, min_frequency, spec.hash_buckets.get(c, 0))
            for c in spec.categorical
        ]
        numerics = []
        for c in spec.numeric:
            x = as_float(df[c], c, source)
            finite = np.isfinite(x)
            if not finite.all() and numeric_nan == "error":
                raise_nonfinite(x, finite, c, source)
            if not finite.any():
                raise PreprocessingError(
                    f"{source}: numeric column {c!r} has no finite value to fit a mean on"
                )
            numerics.append(fit_numeric(c, x[finite], numeric_bins))
        return cls(spec, fields, numerics, min_frequency=min_frequency, numeric_nan=numeric_nan)

    # --- encoding ---------------------------------------------------------------------

    @property
    def vocab_sizes(self) -> list[int]:
        """Embedding rows per model field: each categorical field's vocabulary plus the OOV
        bucket, then each binned numeric's bins plus the missing bin."""
        return [f.size for f in self.fields] + [len(s.edges) + 2 for s in self.numerics if s.edges]

    @property
    def field_names(self) -> list[str]:
        """The model's categorical fields: the categorical columns, then ``<numeric>#bin``."""
        return [f.name for f in self.fields] + [f"{s.name}#bin" for s in self.numerics if s.edges]

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
            ``cat`` of shape (rows, :attr:`field_names`), int32 ids with 0 = OOV (or the
            missing bin), and ``num`` of shape (rows, numeric fields), float32 clipped and
            standardised values.

        Raises:
            PreprocessingError: a feature column is missing, a numeric column holds
                non-numbers, or NaN/inf appear under the ``error`` policy.
        """
        policy = numeric_nan or self.numeric_nan
        require_columns(df, self.spec.feature_columns, source)
        n = len(df)
        cat = np.empty((n, len(self.field_names)), dtype=np.int32)
        for j, f in enumerate(self.fields):
            cat[:, j] = self._encode_field(df[f.name], f)
        raw = [as_float(df[s.name], s.name, source) for s in self.numerics]
        if policy == "error":
            for x, s in zip(raw, self.numerics, strict=True):
                finite = np.isfinite(x)
                if not finite.all():
                    raise_nonfinite(x, finite, s.name, source)
        num = self.encode_numerics(raw, cat[:, len(self.fields) :])
        return cat, num

    def encode_numerics(
        self, raw: Sequence[npt.NDArray[np.float64]], bins_out: npt.NDArray[np.int32]
    ) -> npt.NDArray[np.float32]:
        """Scale the raw numeric columns (NaN/inf → train mean) and write their bin ids
        (0: missing) into ``bins_out`` (rows, binned numerics); returns the scaled block.

        The one numeric encoding: :meth:`transform` and the scoring service's fast path
        both call it. Values are taken at float32 precision, as training loads them, so a
        float64 column at serving encodes exactly as its training copy did.
        """
        n = len(raw[0]) if raw else bins_out.shape[0]
        num = np.empty((n, len(self.numerics)), dtype=np.float32)
        k = 0
        for j, (x, s) in enumerate(zip(raw, self.numerics, strict=True)):
            # at float32 precision, as training read them (ml.data.loading): a float64
            # value a hair below a bin edge would otherwise fall in another bin at serving
            x = np.asarray(x, dtype=np.float32).astype(np.float64)
            finite = np.isfinite(x)
            scaled, bins = s.encode(np.where(finite, x, s.mean))
            num[:, j] = scaled
            if bins is not None:
                bins_out[:, k] = np.where(finite, bins, 0)
                k += 1
        return num

    def _encode_field(self, values: pd.Series, f: Field) -> npt.NDArray[np.int32]:
        if isinstance(values.dtype, pd.CategoricalDtype):
            # Encode the (few) categories once, then gather by the per-row codes.
            cats = coerce(pd.Series(values.cat.categories), f.kind)
            ids = np.append(self._lookup(cats, f), OOV_ID).astype(np.int32)
            codes = values.cat.codes.to_numpy()
            return ids[np.where(codes < 0, len(ids) - 1, codes)]
        return self._lookup(coerce(values, f.kind), f)

    def _lookup(self, values: pd.Series, f: Field) -> npt.NDArray[np.int32]:
        if f.buckets:
            return bucket_ids(values, f.kind, f.buckets)
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

    def _build_lookup(self, f: Field) -> Any:
        if f.kind == "int" and f.vocab and min(f.vocab) >= 0 and max(f.vocab) < _DENSE_LOOKUP_LIMIT:
            table = np.zeros(max(f.vocab) + 1, dtype=np.int32)
            table[np.asarray(f.vocab, dtype=np.int64)] = np.arange(1, len(f.vocab) + 1)
            return table
        return self._index(f)

    def _index(self, f: Field) -> pd.Index:
        key = f"{f.name}\0index"
        idx: pd.Index | None = self._lookups.get(key)
        if idx is None:
            idx = pd.Index(list(f.vocab), dtype="int64" if f.kind == "int" else object)
            self._lookups[key] = idx
        return idx

    # --- plain state ------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Plain-Python state (lists, dicts, floats) for the checkpoint."""
        hashed = any(f.buckets for f in self.fields)
        return {
            "format_version": HASHED_FORMAT_VERSION if hashed else FORMAT_VERSION,
            "features": self.spec.to_dict(),
            "min_frequency": self.min_frequency,
            "numeric_nan": self.numeric_nan,
            "categorical": [_field_state(f) for f in self.fields],
            "numeric": [
                {"name": s.name, "mean": s.mean, "std": s.std, "lo": s.lo, "hi": s.hi}
                | {"edges": list(s.edges)}
                for s in self.numerics
            ],
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Preprocessor:
        """Rebuild a preprocessor from :meth:`state_dict` output."""
        try:
            if state["format_version"] not in READABLE_FORMAT_VERSIONS:
                raise PreprocessingError(
                    f"preprocessor format_version {state['format_version']} is not supported "
                    f"(this code reads {READABLE_FORMAT_VERSIONS}); retrain the model with "
                    "this version"
                )
            spec = FeatureSpec.from_dict(state["features"])
            fields = [_field_from_state(d) for d in state["categorical"]]
            numerics = [
                Numeric(
                    d["name"],
                    float(d["mean"]),
                    float(d["std"]),
                    float(d.get("lo", float("-inf"))),
                    float(d.get("hi", float("inf"))),
                    tuple(float(e) for e in d.get("edges", ())),
                )
                for d in state["numeric"]
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


def _field_state(f: Field) -> dict[str, Any]:
    state: dict[str, Any] = {"name": f.name, "kind": f.kind, "vocab": list(f.vocab)}
    if f.buckets:
        state |= {"hash_buckets": f.buckets, "hash": HASH_NAME}
    return state


def _field_from_state(d: dict[str, Any]) -> Field:
    buckets = int(d.get("hash_buckets", 0))
    if buckets and d.get("hash") != HASH_NAME:
        raise PreprocessingError(
            f"field {d['name']!r} was hashed with {d.get('hash')!r}, which this code does not "
            f"compute (it hashes with {HASH_NAME!r}); retrain the model with this version"
        )
    return Field(d["name"], d["kind"], tuple(d["vocab"]), buckets)
