"""A per-model inter-process lock: ``fcntl.flock`` on a lock file, with a timeout.

flock locks belong to the open file description, so two threads (or two registries)
in one process that each open the file exclude each other like separate processes.
The kernel drops the lock when the holder dies, even on SIGKILL, so a crashed writer
never leaves the model locked. The holder writes ``pid host time`` into the file so a
timeout can say who holds it.
"""

from __future__ import annotations

import fcntl
import os
import random
import socket
import time
from pathlib import Path
from types import TracebackType

from ml.registry.errors import LockTimeoutError

_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


class FileLock:
    """Exclusive lock on ``path`` held inside a ``with`` block."""

    def __init__(self, path: Path, timeout: float, what: str) -> None:
        self.path = path
        self.timeout = timeout
        self.what = what
        self._fd: int | None = None

    def __enter__(self) -> FileLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | _O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        deadline = time.monotonic() + self.timeout
        delay = 0.001
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = _read_holder(fd)
                    os.close(fd)
                    raise LockTimeoutError(
                        f"could not lock {self.what} within {self.timeout:g} s: {self.path} "
                        f"is held by {holder or 'another process'}; wait for it to finish, "
                        "or raise the timeout (ModelRegistry(lock_timeout=...)). If that "
                        "process is gone and the lock stays held, the file system does not "
                        "release flock locks (see docs/registry.md, NFS)"
                    ) from None
                # Jitter so many waiting processes do not wake in lockstep.
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 0.05)
        info = f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%H:%M:%S')}\n"
        os.ftruncate(fd, 0)
        os.pwrite(fd, info.encode(), 0)
        self._fd = fd
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)


def probe_lock(path: Path) -> str:
    """``"held"`` when a live process holds ``path``'s lock, ``"free"`` or ``"missing"``."""
    try:
        fd = os.open(path, os.O_RDWR | _O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return "missing"
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return "held"
    finally:
        os.close(fd)  # closing drops a lock we took
    return "free"


def _read_holder(fd: int) -> str:
    try:
        return os.pread(fd, 200, 0).decode(errors="replace").strip()
    except OSError:
        return ""
