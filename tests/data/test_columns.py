from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.data.columns import (
    Numeric,
    as_float,
    coerce,
    fit_field,
    fit_numeric,
    raise_nonfinite,
    require_columns,
    value_kind,
)
from ml.errors import PreprocessingError


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        (pd.Series([1, 2, 3]), "int"),
        (pd.Series([True, False]), "int"),
        (pd.Series([1.0, np.nan, 3.0]), "int"),  # integer ids read as float (missing values)
        (pd.Series([1.5, 2.0]), "str"),
        (pd.Series(["a", "b"]), "str"),
        (pd.Series([1, 2]).astype("category"), "int"),
    ],
)
def test_value_kind(values: pd.Series, kind: str) -> None:
    assert value_kind(values) == kind


def test_fit_field_keeps_frequent_values_sorted() -> None:
    field = fit_field(pd.Series([3, 1, 3, 2, 1, 3]), "shop", min_frequency=2)
    assert (field.name, field.kind, field.vocab) == ("shop", "int", (1, 3))
    assert fit_field(pd.Series(["b", "a", "b"]), "c", 1).vocab == ("a", "b")


def test_coerce_to_int_turns_unconvertible_values_into_missing() -> None:
    out = coerce(pd.Series(["7", "x", "2.0", None]), "int")
    assert out.tolist()[0] == 7 and out.tolist()[2] == 2
    assert out.isna().tolist() == [False, True, False, True]


@pytest.mark.filterwarnings("ignore:invalid value encountered in cast")
def test_coerce_floats_to_str_drops_the_trailing_zero() -> None:
    assert coerce(pd.Series([1.0, 2.5, np.nan]), "str").tolist() == ["1", "2.5", None]


def test_fit_numeric_clips_scales_and_bins() -> None:
    vals = np.arange(1000, dtype=np.float64)
    num = fit_numeric("x", vals, bins=4)
    assert num.lo == pytest.approx(0.999) and num.hi == pytest.approx(998.001)
    assert len(num.edges) == 3 and num.std > 0
    scaled, bins = num.encode(np.array([-5.0, 500.0, 5000.0]))
    assert scaled[0] == pytest.approx((num.lo - num.mean) / num.std, rel=1e-5)
    assert bins.tolist() == [1, 3, 4]


def test_fit_numeric_constant_column_scales_by_one() -> None:
    num = fit_numeric("c", np.full(10, 3.0), bins=0)
    assert num.std == 1.0 and num.edges == ()
    scaled, bins = num.encode(np.array([3.0]))
    assert scaled.tolist() == [0.0] and bins is None
    assert isinstance(num, Numeric)


def test_as_float_names_a_non_numeric_value() -> None:
    assert as_float(pd.Series(["1.5", "2"]), "x", "train").tolist() == [1.5, 2.0]
    with pytest.raises(PreprocessingError, match=r"train: numeric column 'x' .* such as 'abc'"):
        as_float(pd.Series(["1", "abc"]), "x", "train")


def test_require_columns_and_raise_nonfinite_name_the_problem() -> None:
    with pytest.raises(PreprocessingError, match=r"missing feature column\(s\) \['b'\]"):
        require_columns(pd.DataFrame({"a": [1]}), ["a", "b"], "val")
    x = np.array([1.0, np.nan, np.inf])
    with pytest.raises(PreprocessingError, match="has 1 NaN and 1 inf value"):
        raise_nonfinite(x, np.isfinite(x), "x", "train")
