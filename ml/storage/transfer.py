"""Whole files at a location (a local path or a URL) for code that reads and writes paths.

- :func:`fetched`: a local path to read: the path itself, or the object downloaded into
  a temporary directory that is removed afterwards;
- :func:`published`: a local path to write: the path itself, or a temporary file that is
  uploaded to the URL when the block ends without an error (an object appears whole, when
  its upload completes; nothing is uploaded after an error);
- :func:`list_files`: the files under a location with given suffixes, as locations.

Used by batch scoring (``predict --input/--output``) for files that are read whole
anyway; column-pruned reads of features from a bucket (loading, validation, the data
profile and the drift check) go through :mod:`ml.storage.files` instead.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ml import paths
from ml.storage.url import ObjectUrl, is_url, redact_url


def split(url: str) -> tuple[str, str]:
    """``s3://b/dir/f.parquet`` → ``("s3://b/dir", "f.parquet")``: the store and the key."""
    parsed = ObjectUrl.parse(url)
    parent, _, name = parsed.prefix.rpartition("/")
    if not name:
        from ml.errors import InvalidLocationError

        raise InvalidLocationError(f"{redact_url(url)!r} names a bucket, not an object")
    return ObjectUrl(parsed.scheme, parsed.bucket, parent).url(), name


def join(location: str, *parts: str) -> str:
    """``location/part/...`` for a URL or a local path (as text)."""
    if is_url(location):
        return "/".join([location.rstrip("/"), *parts])
    return str(Path(location).joinpath(*parts))


def exists(location: str | os.PathLike[str]) -> bool:
    """True when a file (or object) is there."""
    if not is_url(location):
        return paths.resolve(location).is_file()
    from ml import storage

    where, key = split(str(location))
    return storage.open_store(where).head(key) is not None


@contextmanager
def fetched(location: str | os.PathLike[str]) -> Iterator[Path]:
    """A local path holding the file at ``location`` for the duration of the block.

    Raises:
        ObjectNotFoundError: no object at the URL (a local path is returned as is).
    """
    if not is_url(location):
        yield paths.resolve(location)
        return
    from ml import storage

    where, key = split(str(location))
    tmp = Path(tempfile.mkdtemp(prefix="ctr-fetch-"))
    try:
        dest = tmp / key
        storage.open_store(where).download_file(key, dest)
        yield dest
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def published(location: str | os.PathLike[str]) -> Iterator[Path]:
    """A local path to write; for a URL it is uploaded there once the block succeeds."""
    if not is_url(location):
        yield paths.resolve(location)
        return
    from ml import storage

    where, key = split(str(location))
    store = storage.open_store(where)
    tmp = Path(tempfile.mkdtemp(prefix="ctr-publish-"))
    try:
        local = tmp / key
        yield local
        if local.exists():
            store.upload_file(key, local)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def list_files(location: str, suffixes: tuple[str, ...]) -> list[str]:
    """The URLs of the objects below ``location`` (a prefix) ending in ``suffixes``, by key;
    ``[location]`` when ``location`` itself names such an object (reading it says
    whether it is there, and why not: a missing bucket, object or permission)."""
    from ml import storage

    if location.endswith(suffixes):
        return [location]
    store = storage.open_store(location)
    keys = [o.key for o in store.list_objects("") if o.key.endswith(suffixes)]
    return [store.url.url(k) for k in keys]
