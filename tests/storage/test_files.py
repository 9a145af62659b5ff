"""FileRef and RangeReader without a server: local files, and ranged reads over a fake store."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ml.storage.files import FileRef, RangeReader, join, show


class _BytesStore:
    """The one ObjectStore method RangeReader calls, over bytes; counts the requests."""

    def __init__(self, data: bytes) -> None:
        self.data, self.fetched = data, 0

    def get_range(self, key: str, start: int, end: int) -> bytes:
        self.fetched += end - start
        return self.data[start:end]


def test_join_keeps_urls_and_paths_apart(tmp_path: Path) -> None:
    assert join("s3://b/features", "train", "data.parquet") == "s3://b/features/train/data.parquet"
    assert join(tmp_path, "train") == tmp_path / "train"
    assert show("s3://user:pw@b/x") == "s3://user:***@b/x"


def test_a_local_file_ref_stamps_opens_and_hashes(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    assert FileRef(path).stamp() is None and not FileRef(tmp_path).is_file()
    path.write_bytes(b"abc")
    ref = FileRef(path)
    assert ref.stamp() == [3, path.stat().st_mtime_ns] and ref.size() == 3
    assert ref.open() == path and ref.read_bytes() == b"abc"
    assert ref.sha256() == hashlib.sha256(b"abc").hexdigest() and not ref.remote


def test_range_reader_serves_parquet_reading_only_the_columns_asked_for(tmp_path: Path) -> None:
    table = pa.table({f"c{i}": list(range(20_000)) for i in range(8)})
    pq.write_table(table, tmp_path / "t.parquet")
    data = (tmp_path / "t.parquet").read_bytes()
    store = _BytesStore(data)
    got = pq.read_table(RangeReader(store, "k", len(data)), columns=["c3"])
    assert got.column("c3").to_pylist() == list(range(20_000))
    assert store.fetched < len(data) / 4  # the footer and one of eight column chunks
    whole = RangeReader(store, "k", len(data))
    assert whole.seek(-4, 2) == len(data) - 4 and whole.read() == b"PAR1" and whole.read() == b""
