"""ml.storage.transfer: whole files fetched from and published to a location (real S3)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml import storage
from ml.errors import InvalidLocationError, ObjectNotFoundError
from ml.storage import transfer


def test_split_and_join_urls_and_paths() -> None:
    assert transfer.split("s3://b/dir/f.parquet") == ("s3://b/dir", "f.parquet")
    assert transfer.split("s3://b/f.csv") == ("s3://b", "f.csv")
    with pytest.raises(InvalidLocationError, match="names a bucket, not an object"):
        transfer.split("s3://b")
    assert transfer.join("s3://b/f/", "train", "data.parquet") == "s3://b/f/train/data.parquet"
    assert transfer.join("/x/f", "train") == "/x/f/train"


def test_published_uploads_once_complete_and_fetched_reads_it_back(s3_env: str) -> None:
    url = f"{s3_env}/out/scores.csv"
    with transfer.published(url) as local:
        local.write_text("row,probability\n0,0.5\n")
        assert not transfer.exists(url)  # nothing visible before the block ends
    assert transfer.exists(url)
    with transfer.fetched(url) as local:
        assert local.read_text() == "row,probability\n0,0.5\n"
        where = local
    assert not where.exists()  # the temporary copy is gone
    assert transfer.list_files(f"{s3_env}/out", (".csv",)) == [url]


def test_published_uploads_nothing_after_an_error(s3_env: str) -> None:
    url = f"{s3_env}/out/half.parquet"
    with pytest.raises(RuntimeError), transfer.published(url) as local:
        local.write_bytes(b"half")
        raise RuntimeError("the scoring failed")
    assert not transfer.exists(url)
    assert storage.open_store(s3_env).list_objects("out/") == []


def test_fetched_missing_object_names_the_url(s3_env: str) -> None:
    missing = pytest.raises(ObjectNotFoundError, match=f"downloading {s3_env}/nope.parquet")
    with missing, transfer.fetched(f"{s3_env}/nope.parquet"):
        pass


def test_local_paths_resolve_against_the_base_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CTR_PIPELINE_HOME", str(tmp_path))
    with transfer.published("out.csv") as local:
        assert local == tmp_path / "out.csv"
    with transfer.fetched("in.csv") as local:
        assert local == tmp_path / "in.csv"
