"""File-system helpers the registry needs beyond :mod:`ml.fsutil`: hashed copies, no-follow I/O.

Nothing here follows a symbolic link: files are opened with ``O_NOFOLLOW`` and
directories are checked with ``lstat``. An ``OSError`` raised here names the file it
was about (``exc.filename``), so the caller's message can say which side failed: the
source being read or the registry being written.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import stat
import threading
from pathlib import Path

from ml.errors import SourceChangedError
from ml.fsutil import HASH_CHUNK, O_CLOEXEC, O_NOFOLLOW, fsync_dir

CHUNK = HASH_CHUNK  # fits in L2: the hash reads what readinto just wrote from cache
_READ = os.O_RDONLY | O_NOFOLLOW | O_CLOEXEC
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | O_NOFOLLOW | O_CLOEXEC


#: copy_file_range cannot copy this pair (old kernel, file system without it): copy by hand
_NO_COPY_RANGE = frozenset({errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL})


def _named(exc: OSError, path: Path) -> OSError:
    """``exc`` with ``path`` as its file name when the OS did not give one."""
    if exc.filename is not None or not exc.errno:
        return exc
    named = OSError(exc.errno, exc.strerror or os.strerror(exc.errno), str(path))
    named.__cause__ = exc
    return named


def _stat_key(st: os.stat_result) -> tuple[int, int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _copy_fd(src_fd: int, dst_fd: int, size: int) -> None:
    """Copy in the kernel when possible (copy_file_range), else through a buffer."""
    offset = 0
    copy_file_range = getattr(os, "copy_file_range", None)
    if copy_file_range is not None:
        try:
            while offset < size:
                n = copy_file_range(src_fd, dst_fd, size - offset, offset, offset)
                if n == 0:
                    break
                offset += n
        except OSError as exc:
            if exc.errno not in _NO_COPY_RANGE:
                raise  # a real failure (ENOSPC, EIO): not a reason to copy another way
            offset = 0  # an old kernel or a file system without it: the plain way
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


def _hash_fd(fd: int) -> tuple[str, int]:
    """sha256 and size of ``fd`` read from offset 0 into one reused buffer.

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


def _open_source(src: Path) -> tuple[int, os.stat_result]:
    fd = os.open(src, _READ)
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        kind = errno.EISDIR if stat.S_ISDIR(st.st_mode) else errno.EINVAL
        raise OSError(kind, "not a regular file", str(src))
    return fd, st


def copy_many_hashed(
    pairs: list[tuple[Path, Path]], *, mode: int | None = None
) -> list[tuple[str, int]]:
    """Copy each ``src`` to the new file ``dst`` (fsynced); return ``(sha256, size)`` each.

    Each copy runs in the kernel (copy_file_range) and is fsynced on its own thread while
    this thread hashes the sources (hashlib releases the GIL), so the cost is close to
    ``cp`` + ``sync`` rather than their sum with the hash, and the fsyncs of all files
    overlap (the journal commits them together). A source must not change meanwhile:
    its inode, size and timestamps are compared before and after, and a change raises
    :class:`SourceChangedError`. A source that is a link is refused (``ELOOP``). Each
    ``dst`` must not exist (``O_EXCL``); it gets ``mode``, or by default the source's
    permission bits (a private ``0600`` source stays private).
    """
    opened: list[tuple[int, os.stat_result, int]] = []
    workers: list[threading.Thread] = []
    errors: list[BaseException] = []
    results: list[tuple[str, int]] = []
    try:
        for src, dst in pairs:
            src_fd, before = _open_source(src)
            try:
                dst_fd = os.open(dst, _CREATE, stat.S_IMODE(before.st_mode) & 0o666)
                if mode is not None:
                    os.fchmod(dst_fd, mode)
            except BaseException:
                os.close(src_fd)
                raise
            opened.append((src_fd, before, dst_fd))

            def _copy(
                src: Path = src, dst: Path = dst, dst_fd: int = dst_fd, size: int = before.st_size
            ) -> None:
                try:
                    # Its own descriptor: the copy must not move the hashing side's offset.
                    fd = os.open(src, _READ)
                    try:
                        _copy_fd(fd, dst_fd, size)
                    finally:
                        os.close(fd)
                    os.fsync(dst_fd)
                except OSError as exc:  # re-raised on the calling thread
                    errors.append(_named(exc, dst))
                except BaseException as exc:
                    errors.append(exc)

            worker = threading.Thread(target=_copy, name="registry-copy", daemon=True)
            worker.start()
            workers.append(worker)
        for (src, _), (src_fd, before, _) in zip(pairs, opened, strict=True):
            try:
                digest, hashed = _hash_fd(src_fd)
                after = os.fstat(src_fd)
                now = os.lstat(src)
            except OSError as exc:
                raise _named(exc, src) from exc
            results.append((digest, hashed))
            if (
                hashed != before.st_size
                or _stat_key(after) != _stat_key(before)
                or _stat_key(now) != _stat_key(before)
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


def copy_hashed(src: Path, dst: Path, *, mode: int | None = None) -> tuple[str, int]:
    """:func:`copy_many_hashed` for one file."""
    return copy_many_hashed([(src, dst)], mode=mode)[0]


def fsync_paths(paths: list[Path]) -> None:
    """fsync several files/directories at once so one journal commit covers them all."""
    errors: list[OSError] = []

    def _one(path: Path) -> None:
        try:
            fd = os.open(path, os.O_RDONLY | O_CLOEXEC)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            errors.append(_named(exc, path))

    threads = [threading.Thread(target=_one, args=(p,), daemon=True) for p in paths[1:]]
    for t in threads:
        t.start()
    _one(paths[0])
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def _write_all(fd: int, data: bytes, path: Path, *, sync: bool) -> None:
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if sync:
            os.fsync(fd)
    except OSError as exc:
        raise _named(exc, path) from exc
    finally:
        os.close(fd)


def write_file(path: Path, data: bytes, *, sync: bool = True, mode: int = 0o644) -> None:
    """Create ``path`` (must not exist) with ``data`` and fsync it (unless ``sync=False``)."""
    _write_all(os.open(path, _CREATE, mode), data, path, sync=sync)


def append_line(path: Path, line: bytes, *, sync: bool = True) -> None:
    """Append one ``\\n``-terminated line to ``path`` (created 0644), never following a link.

    A writer killed mid-line leaves a fragment without its newline: the next append
    starts on a fresh line so its record stays whole (readers skip the fragment).
    """
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o644)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            line = b"\n" + line
    except BaseException:
        os.close(fd)
        raise
    _write_all(fd, line, path, sync=sync)
    if sync and size == 0:
        fsync_dir(path.parent)


def read_regular(path: Path, limit: int = 64 << 20) -> bytes:
    """Read a small regular file without following a link."""
    fd = os.open(path, _READ)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        if st.st_size > limit:
            raise OSError(errno.EFBIG, f"larger than {limit} bytes", str(path))
        with os.fdopen(fd, "rb", closefd=False) as f:
            return f.read()
    except OSError as exc:
        raise _named(exc, path) from exc
    finally:
        os.close(fd)


def is_real_dir(path: Path) -> bool:
    """True for a directory that is not a symbolic link."""
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except (FileNotFoundError, NotADirectoryError):
        return False


def is_regular(path: Path) -> bool:
    """True for a regular file that is not a symbolic link."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except (FileNotFoundError, NotADirectoryError):
        return False


def remove_tree(path: Path) -> None:
    """Remove a directory tree (never following links; a link itself is unlinked).

    A tree (or part of it) that another process removes meanwhile is not an error: what
    was asked for, its absence, holds.
    """
    if os.path.islink(path) or not path.is_dir():
        path.unlink(missing_ok=True)
        return

    def _gone_is_fine(
        func: object, failed: str, exc_info: tuple[type, BaseException, object]
    ) -> None:
        if not isinstance(exc_info[1], FileNotFoundError):
            raise exc_info[1]

    shutil.rmtree(path, onerror=_gone_is_fine)
