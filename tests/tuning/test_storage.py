"""ml.tuning.storage: journal files under the base directory, a database by URL."""

from __future__ import annotations

import socket
from pathlib import Path

import optuna
import pytest

from ml.errors import ServiceUnavailableError, TuningError
from ml.tuning.storage import STORAGE_ENV, FlockLock, StorageSpec, journal_path, mask_url


def test_default_storage_is_a_journal_file_per_study_under_the_base_dir(
    project_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(STORAGE_ENV, raising=False)
    spec = StorageSpec.from_env()
    assert spec.url is None and spec.study_names() == []
    storage = spec.open("s1")
    optuna.create_study(study_name="s1", storage=storage)
    assert journal_path("s1") == project_home / "experiments" / "tuning" / "s1.log"
    assert journal_path("s1").is_file()
    assert spec.study_names() == ["s1"]
    assert str(project_home / "experiments" / "tuning") in spec.describe()


def test_storage_url_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(STORAGE_ENV, " postgresql://u:pw@db:5432/optuna ")
    spec = StorageSpec.from_env()
    assert spec.url == "postgresql://u:pw@db:5432/optuna"
    assert spec.describe() == "postgresql://u:***@db:5432/optuna"


def test_mask_url_hides_the_password() -> None:
    assert mask_url("postgresql+psycopg2://me:s3cret@h/db") == "postgresql+psycopg2://me:***@h/db"
    assert "s3cret" not in mask_url("not a url me:s3cret@host")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_database_is_one_error_naming_the_url_without_password() -> None:
    url = f"postgresql+psycopg2://me:s3cret@127.0.0.1:{_closed_port()}/optuna"
    with pytest.raises(ServiceUnavailableError) as info:
        StorageSpec(url).open("any")
    message = str(info.value)
    assert "tuning storage postgresql+psycopg2://me:***@127.0.0.1:" in message
    assert "s3cret" not in message and STORAGE_ENV in message


def test_unusable_url_is_a_user_error() -> None:
    with pytest.raises(TuningError, match="is not a usable SQLAlchemy URL"):
        StorageSpec("nosuchdialect://x/y").open("any")


def test_sqlite_url_works_as_rdb_storage_with_heartbeat(tmp_path: Path) -> None:
    spec = StorageSpec(f"sqlite:///{tmp_path / 'optuna.db'}")
    storage = spec.open("s")
    assert isinstance(storage, optuna.storages.RDBStorage)
    assert storage.get_heartbeat_interval() is not None
    optuna.create_study(study_name="s", storage=storage)
    assert spec.study_names() == ["s"]


def test_flock_lock_excludes_threads_and_is_freed_when_its_holder_dies(tmp_path: Path) -> None:
    import subprocess
    import sys
    import threading
    import time

    lock = FlockLock(str(tmp_path / "j.log"))
    assert lock.path == str(tmp_path / "j.log.lock")
    order: list[str] = []
    with lock:
        other = threading.Thread(target=lambda: (lock.acquire(), order.append("b"), lock.release()))
        other.start()
        time.sleep(0.2)
        order.append("a")
    other.join(5)
    assert order == ["a", "b"]
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, lock.path], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    holder.kill()
    holder.wait()
    start = time.monotonic()
    with lock:
        assert time.monotonic() - start < 2  # no grace period to sit out


HOLD = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
time.sleep(60)
"""
