from __future__ import annotations

import pyarrow as pa
import pytest

from ml.config import FeatureSpec
from ml.data import schema


@pytest.mark.parametrize(
    ("tp", "kind"),
    [
        (pa.int8(), "integer"),
        (pa.uint64(), "integer"),
        (pa.float32(), "float"),
        (pa.bool_(), "bool"),
        (pa.string(), "string"),
        (pa.large_string(), "string"),
        (pa.dictionary(pa.int32(), pa.string()), "string"),
        (pa.timestamp("s"), "timestamp[s]"),
    ],
)
def test_type_kind(tp: pa.DataType, kind: str) -> None:
    assert schema.type_kind(tp) == kind


def test_role_type_rules() -> None:
    assert schema.is_categorical_type(pa.int64()) and schema.is_categorical_type(pa.string())
    assert not schema.is_categorical_type(pa.float64())
    assert schema.is_numeric_type(pa.int32()) and schema.is_numeric_type(pa.float64())
    assert not schema.is_numeric_type(pa.string())
    assert schema.is_label_type(pa.bool_()) and schema.is_label_type(pa.int8())
    assert not schema.is_label_type(pa.float64())


def test_role_of() -> None:
    spec = FeatureSpec(label="y", categorical=("a",), numeric=("x",))
    assert [schema.role_of(spec, c) for c in ("y", "a", "x")] == ["label", "categorical", "numeric"]
