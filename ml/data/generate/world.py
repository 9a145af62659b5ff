"""What a synthetic world is, how its columns are stored, and the shared sampling helpers.

A *world* (:class:`WorldDef`) is a population (users, items, context) with fixed effect
sizes, all drawn from one world seed, and a rule that turns a row into the logit of its
true click probability. Rows are held internally as 0-based level indices for
categorical fields and floats for numeric ones (:data:`Rows`); :class:`Column` says how
each is stored in parquet (strings, integer ids with an offset, int64 or float64 numbers),
so :func:`to_table` writes a world's rows and :func:`rows_from_frame` reads them back for
the ground truth.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from ml.config import FeatureSpec
from ml.errors import DataError, GenerationError

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
#: Internal row form: categorical fields as 0-based level indices, numerics as floats.
Rows = dict[str, npt.NDArray[Any]]

CATEGORICAL = "categorical"
NUMERIC = "numeric"


@dataclass(frozen=True)
class Column:
    """How one generated column is stored.

    Exactly one form applies: ``levels`` (string categories, stored as strings), ``size``
    (integer ids: level index + ``offset``, stored as int64), or a numeric column (stored
    as int64 when ``integer``, else float64; NaN becomes null when ``nullable``).
    """

    name: str
    role: str
    levels: tuple[str, ...] = ()
    size: int = 0
    offset: int = 0
    integer: bool = False
    nullable: bool = False

    @classmethod
    def strings(cls, name: str, levels: tuple[str, ...]) -> Column:
        return cls(name, CATEGORICAL, levels=levels)

    @classmethod
    def ids(cls, name: str, size: int, offset: int = 1) -> Column:
        return cls(name, CATEGORICAL, size=size, offset=offset)

    @classmethod
    def number(cls, name: str, *, integer: bool = False, nullable: bool = False) -> Column:
        return cls(name, NUMERIC, integer=integer, nullable=nullable)


@dataclass(frozen=True)
class WorldDef:
    """A named world: its columns, its parameters and its ground-truth logit.

    ``build(rng)`` draws the parameters (a frozen dataclass with an ``intercept`` field,
    left at 0: the catalogue tunes it so the base CTR is ``target_ctr``); ``draw(params,
    rng, n)`` draws ``n`` rows; ``logit(params, rows)`` is the true logit, intercept
    included. Columns are listed categorical first, then numeric: the parquet order.
    """

    name: str
    version: int
    description: str
    target_ctr: float
    columns: tuple[Column, ...]
    build: Callable[[np.random.Generator], Any]
    draw: Callable[[Any, np.random.Generator, int], Rows]
    logit: Callable[[Any, Rows], FloatArray]
    #: Mixed into the seed of the world's parameters (the default world's keeps old data).
    salt: int
    label: str = "click"

    def __post_init__(self) -> None:
        roles = [c.role for c in self.columns]
        if roles != sorted(roles):  # "categorical" < "numeric"
            raise GenerationError(f"world {self.name}: list categorical columns before numeric")

    @property
    def spec(self) -> FeatureSpec:
        """The world's columns as a feature spec (what its schema.json records)."""
        return FeatureSpec(
            label=self.label,
            categorical=tuple(c.name for c in self.columns if c.role == CATEGORICAL),
            numeric=tuple(c.name for c in self.columns if c.role == NUMERIC),
        )


# --- sampling helpers -------------------------------------------------------------------


def zipf_cdf(rng: np.random.Generator, n: int, exponent: float) -> FloatArray:
    """CDF over ``n`` levels whose popularity follows rank^-exponent in a random order."""
    weights = 1.0 / np.arange(1, n + 1, dtype=np.float64) ** exponent
    weights = weights[rng.permutation(n)]
    cdf = np.cumsum(weights / weights.sum())
    cdf[-1] = 1.0
    return cdf


def cdf_of(weights: npt.ArrayLike) -> FloatArray:
    """CDF of (unnormalised) weights."""
    w = np.asarray(weights, dtype=np.float64)
    cdf = np.cumsum(w / w.sum())
    cdf[-1] = 1.0
    return cdf


def sample(cdf: FloatArray, rng: np.random.Generator, n: int) -> IntArray:
    """``n`` level indices drawn from a CDF."""
    return np.searchsorted(cdf, rng.random(n), side="right").astype(np.int64)


def sigmoid(x: FloatArray) -> FloatArray:
    out: FloatArray = 1.0 / (1.0 + np.exp(-x))
    return out


def tune_intercept(world: WorldDef, params: Any, world_seed: int) -> Any:
    """``params`` with the intercept that makes the mean true probability ``target_ctr``."""
    rows = world.draw(params, np.random.default_rng([world_seed, 1]), 50_000)
    base = world.logit(params, rows)
    lo, hi = -8.0, 8.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if float(np.mean(sigmoid(base + mid))) < world.target_ctr:
            lo = mid
        else:
            hi = mid
    return dataclasses.replace(params, intercept=(lo + hi) / 2)


# --- rows <-> parquet -------------------------------------------------------------------


def to_table(world: WorldDef, rows: Rows, label: npt.NDArray[np.bool_]) -> pa.Table:
    """The stored form of ``rows``: the label, then the world's columns in order."""
    columns: dict[str, pa.Array] = {world.label: pa.array(label.astype(np.int64))}
    for col in world.columns:
        values = rows[col.name]
        if col.levels:
            dictionary = pa.array(col.levels, type=pa.string())
            indices = pa.array(values.astype(np.int32))
            columns[col.name] = pa.DictionaryArray.from_arrays(
                indices, dictionary
            ).dictionary_decode()
        elif col.size:
            columns[col.name] = pa.array(values + col.offset)
        elif col.integer:
            columns[col.name] = pa.array(values.astype(np.int64))
        else:
            floats = values.astype(np.float64)
            columns[col.name] = pa.array(floats, from_pandas=col.nullable)
    return pa.table(columns)


def rows_from_frame(world: WorldDef, df: Any) -> Rows:
    """Stored columns (a DataFrame or a mapping of arrays) -> the world's internal rows.

    Raises:
        DataError: a column is missing or holds a value the world does not know.
    """
    rows: Rows = {}
    for col in world.columns:
        if col.name not in df:
            raise DataError(
                f"true_probability needs column {col.name!r}, which is missing; it is defined "
                f"only for the columns of world {world.name!r}: {list(world.spec.feature_columns)}"
            )
        rows[col.name] = _decode(col, df[col.name])
    return rows


def _decode(col: Column, values: Any) -> npt.NDArray[Any]:
    if col.levels:
        import pandas as pd

        raw_obj = np.asarray(values, dtype=object)
        idx = np.asarray(pd.Index(col.levels).get_indexer(pd.Index(raw_obj)), dtype=np.int64)
        if (idx < 0).any():
            bad = raw_obj[idx < 0][0]
            raise DataError(
                f"column {col.name!r} has value {bad!r}, which the generator's world does not "
                f"know (expected one of {list(col.levels[:4])}...)"
            )
        return idx
    if col.size:
        raw = np.asarray(values)
        if raw.dtype.kind not in "iu":
            raise DataError(f"column {col.name!r} must hold integers, got dtype {raw.dtype}")
        idx = raw.astype(np.int64) - col.offset
        outside = (idx < 0) | (idx >= col.size)
        if outside.any():
            raise DataError(
                f"column {col.name!r} has value {raw[outside][0]}, outside the generator's "
                f"range [{col.offset}, {col.offset + col.size - 1}]"
            )
        return idx
    return np.asarray(values, dtype=np.float64)
