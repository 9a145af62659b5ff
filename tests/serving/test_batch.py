"""ml.serving.batch: chunked scoring of parquet/CSV files equals predict_proba."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from ml.errors import DataError, UserError
from ml.registry.model_registry import ModelRegistry
from ml.serving.batch import score_files
from ml.serving.predictor import Predictor
from testkit.serving import NAME


@pytest.fixture(scope="module")
def predictor(registry_template: Path) -> Predictor:
    return ModelRegistry(registry_template).load(NAME, "v1", "production")


def _raw(features: Path, split: str) -> pd.DataFrame:
    return pq.read_table(features / split / "data.parquet").to_pandas()


def test_parquet_file_in_chunks_equals_predict_proba(
    predictor: Predictor, tiny_features_dir: Path, tmp_path: Path
) -> None:
    src = tiny_features_dir / "test" / "data.parquet"
    report = score_files(predictor, src, tmp_path / "out.parquet", chunk_rows=128)
    out = pd.read_parquet(tmp_path / "out.parquet")
    df = _raw(tiny_features_dir, "test")
    assert report.rows == len(df) == len(out) and report.files == 1
    assert out.columns.tolist() == ["row", "probability"]
    assert out["row"].tolist() == list(range(len(df)))
    np.testing.assert_allclose(out["probability"], predictor.predict_proba(df), rtol=1e-6)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.parquet"]  # no temp file left


def test_csv_with_an_id_column(
    predictor: Predictor, tiny_features_dir: Path, tmp_path: Path
) -> None:
    df = _raw(tiny_features_dir, "val")
    df.insert(0, "impression_id", [f"imp-{i}" for i in range(len(df))])
    df.to_csv(tmp_path / "in.csv", index=False)
    score_files(predictor, tmp_path / "in.csv", tmp_path / "out.csv", id_column="impression_id")
    out = pd.read_csv(tmp_path / "out.csv")
    assert out.columns.tolist() == ["impression_id", "probability"]
    assert out["impression_id"].tolist() == df["impression_id"].tolist()
    np.testing.assert_allclose(out["probability"], predictor.predict_proba(df), rtol=1e-6)


def test_a_directory_scores_every_file_with_its_source(
    predictor: Predictor, tiny_features_dir: Path, tmp_path: Path
) -> None:
    report = score_files(predictor, tiny_features_dir, tmp_path / "all.parquet", chunk_rows=500)
    out = pd.read_parquet(tmp_path / "all.parquet")
    assert report.files == 3 and report.rows == 3000
    assert out["source"].unique().tolist() == [
        "test/data.parquet",
        "train/data.parquet",
        "val/data.parquet",
    ]
    train = out[out["source"] == "train/data.parquet"]
    want = predictor.predict_proba(_raw(tiny_features_dir, "train"))
    np.testing.assert_allclose(train["probability"], want, rtol=1e-6)


def test_bad_inputs_are_user_errors(
    predictor: Predictor, tiny_features_dir: Path, tmp_path: Path
) -> None:
    src = tiny_features_dir / "test" / "data.parquet"
    with pytest.raises(DataError, match=r"lacks column\(s\) \['order_id'\]"):
        score_files(predictor, src, tmp_path / "o.parquet", id_column="order_id")
    pd.DataFrame({"user_id": [1]}).to_csv(tmp_path / "thin.csv", index=False)
    with pytest.raises(DataError, match="cannot score"):
        score_files(predictor, tmp_path / "thin.csv", tmp_path / "o.csv")
    with pytest.raises(UserError, match=r"must end in \.parquet or \.csv"):
        score_files(predictor, src, tmp_path / "o.json")
    with pytest.raises(UserError, match="does not exist"):
        score_files(predictor, tmp_path / "nope", tmp_path / "o.csv")
    assert not (tmp_path / "o.csv").exists() and not list(tmp_path.glob(".o.*"))
