from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ml.config import FeatureSpec
from ml.data.loading import check_features_dir, load_split
from ml.errors import DataLoadError

SPEC = FeatureSpec(label="click", categorical=("site", "user"), numeric=("price",))


def _write(root: Path, split: str, df: pd.DataFrame) -> None:
    (root / split).mkdir(parents=True, exist_ok=True)
    df.to_parquet(root / split / "data.parquet")


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "site": ["a", "b", "a"],
            "user": np.array([1, 300, 2], dtype=np.int64),
            "price": [1.5, 2.5, np.nan],
            "click": [0, 1, 0],
            "unused": ["x", "y", "z"],
        }
    )


def test_load_split_reads_only_spec_columns_compactly(tmp_path: Path) -> None:
    _write(tmp_path, "train", _frame())
    df = load_split(tmp_path, "train", SPEC)
    assert list(df.columns) == ["click", "site", "user", "price"]
    assert df["click"].dtype == np.int8
    assert df["price"].dtype == np.float32
    assert df["user"].dtype == np.int16  # 300 needs 16 bits
    assert isinstance(df["site"].dtype, pd.CategoricalDtype)
    assert np.isnan(df["price"].iloc[2])


def test_load_split_missing_column_is_named(tmp_path: Path) -> None:
    _write(tmp_path, "train", _frame().drop(columns=["price"]))
    with pytest.raises(DataLoadError, match=r"has no column\(s\) \['price'\]"):
        load_split(tmp_path, "train", SPEC)


def test_load_split_bad_label_is_an_error(tmp_path: Path) -> None:
    df = _frame()
    df["click"] = [0, 2, 1]
    _write(tmp_path, "train", df)
    with pytest.raises(DataLoadError, match="label column 'click' must hold only 0 and 1"):
        load_split(tmp_path, "train", SPEC)


def test_load_split_text_in_numeric_column_is_an_error(tmp_path: Path) -> None:
    df = _frame()
    df["price"] = ["1", "2", "3"]
    _write(tmp_path, "train", df)
    with pytest.raises(DataLoadError, match="numeric column 'price'"):
        load_split(tmp_path, "train", SPEC)


def test_check_features_dir_names_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(DataLoadError, match="ctr-pipeline data generate"):
        check_features_dir(tmp_path / "absent")
    _write(tmp_path, "train", _frame())
    with pytest.raises(DataLoadError, match=r"missing .*val/data\.parquet"):
        check_features_dir(tmp_path)
