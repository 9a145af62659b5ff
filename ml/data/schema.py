"""On-disk layout of a features directory and the column-type rules every split obeys.

A features directory holds one parquet file per split and a ``schema.json``::

    <features_dir>/
    ├── schema.json            {"label", "categorical", "numeric", ...generator info}
    ├── train/data.parquet
    ├── val/data.parquet
    └── test/data.parquet

Column kinds (checked by :mod:`ml.data.validate`, relied on by the preprocessing):

- label: integer or boolean, values 0/1, no nulls;
- categorical: integer or string (dictionary-encoded strings count as strings);
- numeric: integer or floating point.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pyarrow as pa

from ml.config import FeatureSpec

SPLITS: tuple[str, ...] = ("train", "val", "test")
DATA_FILE = "data.parquet"
SCHEMA_FILE = "schema.json"

#: The generator's columns (the same as ``config/model_config.yaml``).
DEFAULT_SPEC = FeatureSpec(
    label="click",
    categorical=(
        "user_id",
        "item_id",
        "advertiser_id",
        "item_category",
        "site_category",
        "user_segment",
        "device_type",
        "ad_position",
        "hour_of_day",
        "day_of_week",
    ),
    numeric=("user_age", "item_price", "user_hist_ctr", "ad_quality", "session_depth"),
)


def split_path(features_dir: str | os.PathLike[str], split: str) -> Path:
    """``<features_dir>/<split>/data.parquet``."""
    return Path(features_dir) / split / DATA_FILE


def schema_path(features_dir: str | os.PathLike[str]) -> Path:
    """``<features_dir>/schema.json``."""
    return Path(features_dir) / SCHEMA_FILE


def read_schema(features_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Read ``schema.json``; raise ``ValueError`` naming the file when it is missing or bad."""
    path = schema_path(features_dir)
    if not path.is_file():
        raise ValueError(
            f"{path} does not exist; generate the data with `ctr-pipeline data generate`"
        )
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path} is not valid JSON ({exc}); regenerate the data") from exc
    if not isinstance(raw, dict):
        raise ValueError(f"{path} must hold a JSON object, got {type(raw).__name__}")
    return raw


def spec_from_schema(schema: dict[str, Any]) -> FeatureSpec:
    """The :class:`FeatureSpec` named by a parsed ``schema.json``."""
    return FeatureSpec.from_dict(
        {k: schema[k] for k in ("label", "categorical", "numeric") if k in schema},
        where=SCHEMA_FILE,
    )


def _value_type(tp: pa.DataType) -> pa.DataType:
    return tp.value_type if pa.types.is_dictionary(tp) else tp


def type_kind(tp: pa.DataType) -> str:
    """A coarse kind for an arrow type: integer, float, bool, string or the type's own name."""
    tp = _value_type(tp)
    if pa.types.is_integer(tp):
        return "integer"
    if pa.types.is_floating(tp):
        return "float"
    if pa.types.is_boolean(tp):
        return "bool"
    if pa.types.is_string(tp) or pa.types.is_large_string(tp):
        return "string"
    if hasattr(pa.types, "is_string_view") and pa.types.is_string_view(tp):
        return "string"
    return str(tp)


def is_categorical_type(tp: pa.DataType) -> bool:
    """Categorical columns hold integer ids or strings."""
    return type_kind(tp) in ("integer", "string")


def is_numeric_type(tp: pa.DataType) -> bool:
    """Numeric columns hold integers or floats."""
    return type_kind(tp) in ("integer", "float")


def is_label_type(tp: pa.DataType) -> bool:
    """The label is an integer or boolean 0/1 column."""
    return type_kind(tp) in ("integer", "bool")


def role_of(spec: FeatureSpec, column: str) -> str:
    """``label``, ``categorical`` or ``numeric`` for a column of ``spec``."""
    if column == spec.label:
        return "label"
    return "categorical" if column in spec.categorical else "numeric"
