"""The two kinds of lock the registry takes: ``fcntl.flock`` on a lock file.

- :class:`FileLock`, the per-model lock ``.registry/<name>/lock``: every writer of a
  model (publication, promote, rollback, delete, gc) holds it, with a timeout.
- :class:`WriterLock`, ``.registry/<name>/writers/<id>``: held by the live writer of the
  temporary directory ``.tmp-<id>`` for the directory's whole life, from before it is
  created until after it is renamed or removed. ``gc`` removes a temporary directory
  only when nobody holds its writer lock, so liveness never depends on timing.

flock locks belong to the open file description, so two threads (or two registries)
in one process that each open the file exclude each other like separate processes.
The kernel drops a lock when its holder dies, even on SIGKILL, so a crashed writer
never leaves a model locked or a temporary directory looking alive.
"""

from __future__ import annotations

import fcntl
import os
import random
import socket
import time
from pathlib import Path
from types import TracebackType

from ml.errors import RegistryLockTimeoutError
from ml.fsutil import O_CLOEXEC, O_NOFOLLOW

_OPEN = os.O_RDWR | O_NOFOLLOW | O_CLOEXEC


class FileLock:
    """Exclusive lock on ``path`` held inside a ``with`` block.

    The holder writes ``pid host time`` into the file so a timeout can say who holds it.
    """

    def __init__(self, path: Path, timeout: float, what: str) -> None:
        self.path = path
        self.timeout = timeout
        self.what = what
        self._fd: int | None = None

    def __enter__(self) -> FileLock:
        fd = os.open(self.path, _OPEN | os.O_CREAT, 0o644)
        try:
            self._wait(fd)
            info = f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%X')}\n"
            os.ftruncate(fd, 0)
            os.pwrite(fd, info.encode(), 0)
        except BaseException:
            os.close(fd)  # closing drops the lock if we got it
            raise
        self._fd = fd
        return self

    def _wait(self, fd: int) -> None:
        deadline = time.monotonic() + self.timeout
        delay = 0.001
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise RegistryLockTimeoutError(
                        f"could not lock {self.what} within {self.timeout:g} s: {self.path} "
                        f"is held by {_read_holder(fd) or 'another process'}; wait for it to "
                        "finish, or raise the timeout (ModelRegistry(lock_timeout=...)). If "
                        "that process is gone and the lock stays held, the file system does "
                        "not release flock locks (see docs/registry.md, NFS)"
                    ) from None
                # Jitter so many waiting processes do not wake in lockstep.
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 0.05)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # drops the lock


class WriterLock:
    """ "The writer of this temporary directory is alive", held from before its creation.

    The file is created, locked, then checked to still be the one at ``path``: ``gc``
    unlinks a lock file only while holding its lock itself (:func:`remove_if_free`), so
    a writer that opened a file ``gc`` was unlinking sees the mismatch and starts over.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        while True:
            fd = os.open(self.path, _OPEN | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)  # only gc's probe can hold it, briefly
                mine = os.fstat(fd)
                try:
                    there = os.lstat(self.path)
                except FileNotFoundError:
                    there = None
            except BaseException:
                os.close(fd)
                raise
            if there is not None and (there.st_dev, there.st_ino) == (mine.st_dev, mine.st_ino):
                self._fd = fd
                return
            os.close(fd)

    def release(self) -> None:
        """Remove the lock file, then drop the lock (in that order: see the class doc)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            self.path.unlink(missing_ok=True)
        finally:
            os.close(fd)


def probe_lock(path: Path) -> str:
    """``"held"`` when a live process holds ``path``'s lock, ``"free"`` or ``"missing"``."""
    try:
        fd = os.open(path, _OPEN)
    except FileNotFoundError:
        return "missing"
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return "held"
    finally:
        os.close(fd)  # closing drops a lock we took
    return "free"


def remove_if_free(path: Path) -> bool:
    """Unlink a writer lock file nobody holds (holding it meanwhile); False when held."""
    try:
        fd = os.open(path, _OPEN)
    except FileNotFoundError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return False
    try:
        path.unlink(missing_ok=True)
    finally:
        os.close(fd)
    return True


def _read_holder(fd: int) -> str:
    try:
        return os.pread(fd, 200, 0).decode(errors="replace").strip()
    except OSError:
        return ""
