"""Features in a bucket (``s3://``, a real S3 server): the same layout, validation,
fingerprint and column-pruned loads as on disk; failures name the URL."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ml.data import layout
from ml.data.generate.world_default import DEFAULT_SPEC
from ml.data.generate.writer import generate_features
from ml.data.lineage import ValidatedData
from ml.data.loading import load_split
from ml.data.validate import validate_data
from ml.errors import (
    AccessDeniedError,
    BucketNotFoundError,
    GenerationError,
    StorageUnavailableError,
)

ROWS = 3000


def test_generated_into_a_bucket_validates_like_the_same_data_on_disk(
    s3_env: str, tiny_features_dir: Path, project_home: Path
) -> None:
    url = f"{s3_env}/features"
    generate_features(url, rows=ROWS, seed=7)  # the same rows and seed as tiny_features_dir
    assert layout.writer_of(url) == layout.GENERATOR and not layout.missing_splits(url)
    remote = validate_data(url, DEFAULT_SPEC, "impute")
    local = validate_data(tiny_features_dir, DEFAULT_SPEC, "impute")
    assert remote.digest == local.digest  # the content's hash, wherever it lies
    assert remote.rows == local.rows and remote.root == url
    size, etag = remote.stamps["train/data.parquet"]
    assert isinstance(etag, str) and etag and size == local.stamps["train/data.parquet"][0]
    again = ValidatedData.from_dict(remote.to_dict())
    assert again.root == url and again.current() and again.current(url)
    with pytest.raises(GenerationError, match=f"{url} already holds features; pass --overwrite"):
        generate_features(url, rows=ROWS, seed=8)
    generate_features(url, rows=ROWS, seed=8, overwrite=True)
    assert not again.current()  # new ETags: a step holding the old validation re-checks


def test_load_split_from_a_bucket_reads_only_the_spec_columns(
    s3_env: str, project_home: Path
) -> None:
    url = f"{s3_env}/features"
    generate_features(url, rows=ROWS, seed=7)
    spec = DEFAULT_SPEC.from_dict(
        {"label": "click", "categorical": ["user_id"], "numeric": ["item_price"]}
    )
    df = load_split(url, "val", spec)
    assert list(df.columns) == ["click", "user_id", "item_price"] and len(df) == 450


def test_features_in_a_bucket_fail_with_the_url_and_the_right_branch(
    s3_env: str, project_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(BucketNotFoundError, match="s3://no-such-bucket-ctr/f") as info:
        validate_data("s3://no-such-bucket-ctr/f", DEFAULT_SPEC, "impute")
    assert info.value.exit_code == 2
    url = f"{s3_env}/features"
    generate_features(url, rows=ROWS, seed=7)
    secret = os.environ["AWS_SECRET_ACCESS_KEY"]
    with monkeypatch.context() as no_credentials:
        no_credentials.delenv("AWS_ACCESS_KEY_ID")
        no_credentials.delenv("AWS_SECRET_ACCESS_KEY")
        with pytest.raises(AccessDeniedError, match=f"{url}/train/data.parquet") as e:
            load_split(url, "train", DEFAULT_SPEC)
    assert e.value.exit_code == 2 and "credentials" in str(e.value)
    assert secret not in str(e.value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens
    with pytest.raises(StorageUnavailableError, match=url) as down:
        validate_data(url, DEFAULT_SPEC, "impute")
    assert down.value.exit_code == 3
