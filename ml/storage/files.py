"""One file at a location, local or in a bucket: what the data and run layers read through.

:class:`FileRef` gives a local path and an object URL the same few operations: whether it
is there (with a *stamp* that changes when its content does), open it for reading, hash
it, read it whole. A local path keeps its POSIX code (``stat``, pyarrow's own local
reads); an object is read with ranged GETs through :class:`RangeReader`, a seekable file
that pyarrow's parquet reader accepts, so only the footer and the column chunks asked
for are fetched (column pruning works on a bucket as on disk).

Why ranged GETs through obstore rather than ``pyarrow.fs.S3FileSystem``: measured here
(docs/storage.md, "Features in a bucket") they read a 2M-row split as fast or faster,
and they keep one client, one credential chain and one error translation
(:func:`ml.storage.store.translate`) for the registry, the runs and the data.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from ml.storage.url import ObjectUrl, is_url

Location = str | Path
#: ``[size, mtime_ns]`` of a local file, ``[size, ETag]`` of an object
Stamp = list[int | str]


def join(location: Location, *parts: str) -> Location:
    """``location/parts``: a path joined as a path, a URL with ``/``."""
    if isinstance(location, str) and is_url(location):
        return "/".join([location.rstrip("/"), *parts])
    return Path(location).joinpath(*parts)


def show(location: Location) -> str:
    """The location for messages: a URL redacted, a path relative to the base directory."""
    from ml.fsutil import display_path

    return display_path(location)


def _env_key() -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("AWS_")))


@lru_cache(maxsize=32)
def _bucket_store(scheme: str, bucket: str, env: tuple[tuple[str, str], ...]) -> Any:
    from ml.storage import open_store

    del env  # part of the cache key only: new credentials or endpoint, new client
    return open_store(f"{scheme}://{bucket}")


def store_and_key(url: str) -> tuple[Any, str]:
    """The (cached) :class:`~ml.storage.store.ObjectStore` of the URL's bucket and the key."""
    parsed = ObjectUrl.parse(url)
    return _bucket_store(parsed.scheme, parsed.bucket, _env_key()), parsed.prefix


class RangeReader(io.RawIOBase):
    """A read-only, seekable file over one object: each ``read`` is one ranged GET."""

    def __init__(self, store: Any, key: str, size: int) -> None:
        super().__init__()
        self._store, self._key, self._size, self._pos = store, key, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def read(self, size: int | None = -1) -> bytes:
        end = self._size if size is None or size < 0 else min(self._size, self._pos + size)
        if end <= self._pos:
            return b""
        data: bytes = self._store.get_range(self._key, self._pos, end)
        self._pos = end
        return data

    def readall(self) -> bytes:
        return self.read(-1)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


@dataclass(frozen=True)
class FileRef:
    """A file at a local path or an object URL (``s3://bucket/key``)."""

    location: Location

    @property
    def remote(self) -> bool:
        return isinstance(self.location, str) and is_url(self.location)

    def __str__(self) -> str:
        return show(self.location)

    def stamp(self) -> Stamp | None:
        """``[size, mtime_ns]`` (local) or ``[size, ETag]`` (object); None when absent.

        Raises:
            StorageLayerError: the bucket is missing, access is denied, the endpoint is down.
        """
        if self.remote:
            store, key = store_and_key(str(self.location))
            info = store.head(key)
            if info is None:
                return None
            return [info.size, info.version.etag or info.version.version or ""]
        try:
            st = Path(self.location).stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        if not Path(self.location).is_file():
            return None
        return [st.st_size, st.st_mtime_ns]

    def is_file(self) -> bool:
        return self.stamp() is not None

    def size(self) -> int:
        stamp = self.stamp()
        return int(stamp[0]) if stamp is not None else 0

    def open(self) -> Any:
        """What pyarrow reads: the local path itself, or a :class:`RangeReader`."""
        if not self.remote:
            return Path(self.location)
        store, key = store_and_key(str(self.location))
        info = store.head(key)
        if info is None:
            from ml.errors import ObjectNotFoundError

            raise ObjectNotFoundError(f"no object at {self}")
        return RangeReader(store, key, info.size)

    def read_bytes(self) -> bytes:
        if self.remote:
            store, key = store_and_key(str(self.location))
            return bytes(store.get(key))
        return Path(self.location).read_bytes()

    def sha256(self) -> str:
        """The content's SHA-256 (streamed): the same for a file and its uploaded object."""
        if self.remote:
            store, key = store_and_key(str(self.location))
            return str(store.sha256(key)[0])
        from ml.fsutil import sha256_file

        return sha256_file(Path(self.location))[0]
