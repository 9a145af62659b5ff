"""File-system helpers for the registry: hashed copies, fsync, atomic small writes.

Nothing here follows a symbolic link inside the registry: files are opened with
``O_NOFOLLOW`` and directories are checked with ``lstat``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import threading
import uuid
from pathlib import Path
from typing import Any

from ml.errors import UserError

CHUNK = 1 << 20  # fits in L2: the hash reads what readinto just wrote from cache
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


class SourceChangedError(UserError):
    """The source file changed while it was being copied."""


def fsync_dir(path: Path) -> None:
    """fsync a directory so a rename/create inside it survives a power cut."""
    fd = os.open(path, os.O_RDONLY | _O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sha256_file(path: Path) -> tuple[str, int]:
    """sha256 and size of a regular file, never following a link."""
    fd = os.open(path, os.O_RDONLY | _O_NOFOLLOW | _O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path} is not a regular file")
        return _hash_fd(fd, 0)
    finally:
        os.close(fd)


def _stat_key(st: os.stat_result) -> tuple[int, int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _copy_fd(src_fd: int, dst_fd: int, size: int) -> None:
    """Copy in the kernel when possible (copy_file_range, sendfile), else through a buffer."""
    offset = 0
    copy_file_range = getattr(os, "copy_file_range", None)
    if copy_file_range is not None:
        try:
            while offset < size:
                n = copy_file_range(src_fd, dst_fd, size - offset, offset, offset)
                if n == 0:
                    break
                offset += n
        except OSError:
            offset = 0  # e.g. EXDEV on old kernels, unsupported fs: restart the plain way
    if offset < size:
        os.lseek(dst_fd, offset, os.SEEK_SET)
        os.lseek(src_fd, offset, os.SEEK_SET)
        while True:
            chunk = os.read(src_fd, CHUNK)
            if not chunk:
                break
            view = memoryview(chunk)
            while view:
                view = view[os.write(dst_fd, view) :]
    os.ftruncate(dst_fd, size)


def _hash_fd(fd: int, size: int) -> tuple[str, int]:
    """sha256 of ``fd`` read from offset 0 with ``pread``-style reads into one buffer.

    Not mmap: a source truncated while it is hashed would kill the process with SIGBUS
    instead of raising a clear error.
    """
    h = hashlib.sha256()
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    done = 0
    os.lseek(fd, 0, os.SEEK_SET)
    with os.fdopen(fd, "rb", buffering=0, closefd=False) as f:
        while n := f.readinto(buf):
            h.update(view[:n])
            done += n
    return h.hexdigest(), done


def copy_many_hashed(pairs: list[tuple[Path, Path]]) -> list[tuple[str, int]]:
    """Copy each ``src`` to the new file ``dst`` (fsynced); return ``(sha256, size)`` each.

    Each copy runs in the kernel (copy_file_range) and is fsynced on its own thread while
    this thread hashes the sources (hashlib releases the GIL), so the cost is close to
    ``cp`` + ``sync`` rather than their sum with the hash, and the fsyncs of all files
    overlap (the journal commits them together). A source must not change meanwhile:
    its inode, size and timestamps are compared before and after, and a change raises
    :class:`SourceChangedError`. Each ``dst`` must not exist (``O_EXCL``).
    """
    opened: list[tuple[int, os.stat_result, int]] = []
    workers: list[threading.Thread] = []
    errors: list[BaseException] = []
    results: list[tuple[str, int]] = []
    try:
        for src, dst in pairs:
            src_fd = os.open(src, os.O_RDONLY | _O_CLOEXEC)
            before = os.fstat(src_fd)
            if not stat.S_ISREG(before.st_mode):
                os.close(src_fd)
                raise OSError(f"{src} is not a regular file")
            dst_fd = os.open(
                dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_CLOEXEC, 0o644
            )
            opened.append((src_fd, before, dst_fd))

            def _copy(src: Path = src, dst_fd: int = dst_fd, size: int = before.st_size) -> None:
                try:
                    # Its own descriptor: the copy must not move the hashing side's offset.
                    fd = os.open(src, os.O_RDONLY | _O_CLOEXEC)
                    try:
                        _copy_fd(fd, dst_fd, size)
                    finally:
                        os.close(fd)
                    os.fsync(dst_fd)
                except BaseException as exc:  # re-raised on the calling thread
                    errors.append(exc)

            worker = threading.Thread(target=_copy, name="registry-copy", daemon=True)
            worker.start()
            workers.append(worker)
        for (src, _), (src_fd, before, _) in zip(pairs, opened, strict=True):
            digest, hashed = _hash_fd(src_fd, before.st_size)
            results.append((digest, hashed))
            after = os.fstat(src_fd)
            if (
                hashed != before.st_size
                or _stat_key(after) != _stat_key(before)
                or _stat_key(os.stat(src)) != _stat_key(before)
            ):
                raise SourceChangedError(
                    f"{src} changed while it was being copied (size {before.st_size} -> "
                    f"{after.st_size}); register it again once the writer has finished"
                )
    finally:
        for worker in workers:
            worker.join()
        for src_fd, _, dst_fd in opened:
            os.close(src_fd)
            os.close(dst_fd)
    if errors:
        raise errors[0]
    return results


def copy_hashed(src: Path, dst: Path) -> tuple[str, int]:
    """:func:`copy_many_hashed` for one file."""
    return copy_many_hashed([(src, dst)])[0]


def fsync_paths(paths: list[Path]) -> None:
    """fsync several files/directories at once so one journal commit covers them all."""

    def _one(path: Path) -> None:
        fd = os.open(path, os.O_RDONLY | _O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    threads = [threading.Thread(target=_one, args=(p,), daemon=True) for p in paths[1:]]
    for t in threads:
        t.start()
    try:
        _one(paths[0])
    finally:
        for t in threads:
            t.join()


def write_file(path: Path, data: bytes, *, sync: bool = True) -> None:
    """Create ``path`` (must not exist) with ``data`` and fsync it (unless ``sync=False``)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_CLOEXEC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)


def dumps_json(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n").encode()


def replace_file(path: Path, data: bytes, *, sync: bool = True) -> None:
    """Atomically replace ``path`` with ``data`` (temp file + rename; fsynced if ``sync``).

    Without ``sync`` a crash may lose the update but never leaves a torn file.
    """
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex}")
    try:
        write_file(tmp, data, sync=sync)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if sync:
        fsync_dir(path.parent)


def read_regular(path: Path, limit: int = 64 << 20) -> bytes:
    """Read a small regular file without following a link."""
    fd = os.open(path, os.O_RDONLY | _O_NOFOLLOW | _O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(f"{path} is not a regular file")
        if st.st_size > limit:
            raise OSError(f"{path} is larger than {limit} bytes")
        with os.fdopen(fd, "rb", closefd=False) as f:
            return f.read()
    finally:
        os.close(fd)


def is_real_dir(path: Path) -> bool:
    """True for a directory that is not a symbolic link."""
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False


def is_regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except (FileNotFoundError, NotADirectoryError):
        return False


def remove_tree(path: Path) -> None:
    """Remove a directory tree (never following links; a link itself is unlinked)."""
    if os.path.islink(path) or not path.is_dir():
        path.unlink(missing_ok=True)
        return
    shutil.rmtree(path, ignore_errors=False)
