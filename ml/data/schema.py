"""Column-type rules every split of a features directory obeys.

Checked by :mod:`ml.data.validate`, relied on by the preprocessing:

- label: integer or boolean, values 0/1, no nulls;
- categorical: integer or string (dictionary-encoded strings count as strings);
- numeric: integer or floating point.

The directory layout (file names, ``schema.json``) lives in :mod:`ml.data.layout`.
"""

from __future__ import annotations

import pyarrow as pa

from ml.config import FeatureSpec

# Older imports: the default world's spec now lives with the generator.

__all__ = ["is_categorical_type", "is_label_type", "is_numeric_type", "role_of", "type_kind"]


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
