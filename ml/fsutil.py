"""Small file-system helpers every area shares: atomic writes, fsync, sha256, JSON, paths.

- :func:`atomic_write` and friends write a temp file beside the target, fsync it and
  rename it into place: a crash leaves the old file or the new one, never half of one.
- :func:`read_json_object` reads a JSON object or raises an error that says which of
  "missing", "unreadable" and "not JSON" it was.
- :func:`display_path` shows a path relative to the base directory when it lies inside.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from ml.errors import UserError, describe_oserror, is_environment_oserror, storage_error

HASH_CHUNK = 1 << 20  # 1 MiB: stays in L2 while hashlib reads it
O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def utc_now() -> str:
    """Now in UTC as ISO 8601 with milliseconds and a ``Z`` (``2026-11-29T18:21:26.123Z``)."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def display_path(path: str | os.PathLike[str]) -> str:
    """``path`` relative to the base directory when it lies inside it, else absolute; a
    URL (``s3://...``) as it is, its secrets redacted."""
    from ml import paths
    from ml.storage.url import is_url, redact_url

    if is_url(path):
        return redact_url(str(path))

    p = Path(path)
    try:
        base = paths.base_dir()
    except UserError:
        return str(p)
    resolved = p if p.is_absolute() else base / p
    try:
        return str(resolved.relative_to(base))
    except ValueError:
        return str(resolved)


def fsync_path(path: str | os.PathLike[str]) -> None:
    """fsync a file or directory so a write, create or rename inside it survives a crash."""
    fd = os.open(path, os.O_RDONLY | O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """fsync a directory (its entries: creates, renames, unlinks)."""
    fsync_path(path)


def sha256_file(path: str | os.PathLike[str], *, follow_links: bool = True) -> tuple[str, int]:
    """sha256 hex digest and size of a regular file, read in 1 MiB chunks.

    Args:
        path: the file.
        follow_links: ``False`` refuses a symbolic link (``O_NOFOLLOW``).

    Raises:
        OSError: missing, not a regular file, or unreadable.
    """
    flags = os.O_RDONLY | O_CLOEXEC | (0 if follow_links else O_NOFOLLOW)
    fd = os.open(path, flags)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path} is not a regular file")
        h = hashlib.sha256()
        buf = bytearray(HASH_CHUNK)
        view = memoryview(buf)
        size = 0
        with os.fdopen(fd, "rb", buffering=0, closefd=False) as f:
            while n := f.readinto(buf):
                h.update(view[:n])
                size += n
        return h.hexdigest(), size
    finally:
        os.close(fd)


def atomic_write(path: Path, writer: Callable[[IO[bytes]], Any], *, mode: int = 0o644) -> None:
    """Write ``path`` via ``writer(fileobj)`` into a temp file beside it, fsync, rename.

    An ``OSError`` that a retry may fix (disk full, EIO) becomes a
    :class:`~ml.errors.StorageError` naming the file; the temp file is always removed.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            writer(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_name, path)
    except BaseException as exc:
        Path(tmp_name).unlink(missing_ok=True)
        if isinstance(exc, OSError) and is_environment_oserror(exc):
            raise storage_error(exc, "writing", path) from exc
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Atomically replace ``path`` with ``data``."""
    atomic_write(path, lambda fh: fh.write(data))


def atomic_write_text(path: Path, text: str) -> None:
    """Atomically replace ``path`` with ``text`` (UTF-8)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def dumps_json(data: Any) -> str:
    """Indented JSON with a trailing newline (the form every artifact is written in)."""
    return json.dumps(data, indent=2, default=str) + "\n"


def atomic_write_json(path: Path, data: Any) -> None:
    """Atomically replace ``path`` with ``data`` as indented JSON."""
    atomic_write_text(path, dumps_json(data))


def read_json_object(
    path: str | os.PathLike[str],
    *,
    what: str = "file",
    error: type[Exception] = UserError,
    hint: str = "",
) -> dict[str, Any]:
    """Read a JSON object, or raise ``error`` saying which of missing/unreadable/not JSON.

    Args:
        path: the file.
        what: names the file in messages (``"run summary"``, ``"metrics.json"``).
        error: the exception class to raise (called with one message argument).
        hint: appended to the message: how to fix it.
    """
    p = Path(path)
    suffix = f"; {hint}" if hint else ""
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{what} {p} does not exist{suffix}") from None
    except OSError as exc:
        if is_environment_oserror(exc):
            raise storage_error(exc, f"reading {what}", p) from exc
        raise error(f"{what} {p} cannot be read: {describe_oserror(exc)}{suffix}") from exc
    except UnicodeDecodeError as exc:
        raise error(f"{what} {p} is not UTF-8 text ({exc.reason}){suffix}") from exc
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise error(f"{what} {p} is not valid JSON ({exc}){suffix}") from exc
    if not isinstance(data, dict):
        raise error(f"{what} {p} must hold a JSON object, got {type(data).__name__}{suffix}")
    return data
