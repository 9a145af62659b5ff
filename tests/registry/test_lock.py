from __future__ import annotations

import fcntl
import os
import threading
import time
from pathlib import Path

import pytest

from ml.errors import RegistryLockTimeoutError
from ml.registry._lock import FileLock, WriterLock, probe_lock, remove_if_free


def test_file_lock_timeout_names_the_lock_and_holder(tmp_path: Path) -> None:
    path = tmp_path / "lock"
    with FileLock(path, 1, "first"):
        assert probe_lock(path) == "held"
        with pytest.raises(
            RegistryLockTimeoutError,
            match=r"could not lock model 'm' within 0.1 s: .* held by pid \d+",
        ):
            FileLock(path, 0.1, "model 'm'").__enter__()
    assert probe_lock(path) == "free"


def test_file_lock_is_released_on_exit_even_after_an_error(tmp_path: Path) -> None:
    path = tmp_path / "lock"
    with pytest.raises(RuntimeError), FileLock(path, 1, "x"):
        raise RuntimeError
    with FileLock(path, 0.1, "x"):
        pass


def test_probe_lock_reports_missing(tmp_path: Path) -> None:
    assert probe_lock(tmp_path / "nothing") == "missing"


def test_writer_lock_is_held_until_released_then_gone(tmp_path: Path) -> None:
    path = tmp_path / "writer"
    lock = WriterLock(path)
    lock.acquire()
    assert probe_lock(path) == "held"
    assert remove_if_free(path) is False
    assert path.exists()
    lock.release()
    assert not path.exists()
    lock.release()  # twice is harmless


def test_remove_if_free_unlinks_a_dead_writers_lock(tmp_path: Path) -> None:
    path = tmp_path / "writer"
    path.write_text("")
    assert remove_if_free(path) is True
    assert not path.exists()
    assert remove_if_free(path) is True


def test_writer_lock_survives_gc_unlinking_the_file_it_opened(tmp_path: Path) -> None:
    """gc holds the lock and unlinks the file while the writer waits on it: the writer
    must notice it locked an orphan and lock a new file instead."""
    path = tmp_path / "writer"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)  # what remove_if_free holds while it unlinks
    writer = WriterLock(path)
    thread = threading.Thread(target=writer.acquire)
    thread.start()
    time.sleep(0.1)  # the writer has opened the file and waits in flock
    path.unlink()
    os.close(fd)
    thread.join(5)
    assert not thread.is_alive()
    assert probe_lock(path) == "held"  # a new file, really held
    writer.release()
