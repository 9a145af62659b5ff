"""ml.pipeline.features: the feature DAG's steps."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from ml.errors import UserError
from ml.pipeline import features


def test_generate_then_publish(project_home: Path) -> None:
    out = features.generate(rows=2000, seed=3)
    assert out == {"features_path": "data/features/v1", "rows": 2000}
    extra = features.publish(out["features_path"], "config/model_config.yaml")
    assert extra["features_path"] == "data/features/v1" and extra["rows"] == 2000
    assert extra["uri"] == (project_home / "data" / "features" / "v1").as_uri()
    assert len(extra["digest"]) == 64


def test_generate_refuses_a_directory_of_user_files(project_home: Path) -> None:
    target = project_home / "data" / "features" / "v1"
    (target / "train").mkdir(parents=True)
    (target / "train" / "data.parquet").write_bytes(b"PAR1 not ours")
    (target / "README").write_text("our click logs")
    before = {
        p: hashlib.sha256(p.read_bytes()).hexdigest() for p in target.rglob("*") if p.is_file()
    }
    with pytest.raises(UserError, match=r"data/features/v1 holds data that was not written"):
        features.generate(rows=2000, seed=3)
    after = {
        p: hashlib.sha256(p.read_bytes()).hexdigest() for p in target.rglob("*") if p.is_file()
    }
    assert after == before


@pytest.mark.slow
def test_generate_then_publish_to_a_bucket(project_home: Path, s3_env: str) -> None:
    out = features.generate(rows=2000, seed=3, out=f"{s3_env}/features/v1")
    assert out == {"features_path": f"{s3_env}/features/v1", "rows": 2000}
    assert not (project_home / "data").exists()
    extra = features.publish(out["features_path"], "config/model_config.yaml")
    assert extra["uri"] == f"{s3_env}/features/v1" and extra["rows"] == 2000
    local = features.publish(
        features.generate(rows=2000, seed=3)["features_path"], "config/model_config.yaml"
    )
    assert extra["digest"] == local["digest"]  # the same data, wherever it lies
