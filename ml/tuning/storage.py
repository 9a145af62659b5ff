"""Where studies live: a journal file per study, or a database (``$CTR_TUNING_STORAGE``).

- Default: Optuna's journal storage, one append-only file per study at
  ``<base>/experiments/tuning/<study>.log``. Appends hold an exclusive ``flock`` on
  ``<study>.log.lock`` (:class:`FlockLock`), so several processes on one machine (or on
  a file system with working ``flock``, NFSv4 included) can run trials of one study.
  Unlike Optuna's lock files, a waiter wakes the moment the lock is free (no sleeping
  back-off, which made two workers slower than one here), and a killed holder releases
  it at once (no 30-second grace period).
- ``$CTR_TUNING_STORAGE`` set to a SQLAlchemy URL (e.g.
  ``postgresql+psycopg2://postgres@127.0.0.1:5432/ctr_pipeline_optuna``): Optuna's RDB
  storage, with a heartbeat every :data:`HEARTBEAT_S` seconds, so a trial whose worker
  stopped beating for :data:`GRACE_S` seconds is failed and its parameters retried.

An unreachable database is a :class:`~ml.errors.ServiceUnavailableError` naming the URL
without its password; an unusable journal directory a
:class:`~ml.errors.StorageError`.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ml import paths
from ml.errors import ServiceUnavailableError, TuningError, is_environment_oserror, storage_error

if TYPE_CHECKING:
    import optuna

STORAGE_ENV = "CTR_TUNING_STORAGE"
TUNING_DIR = "experiments/tuning"
JOURNAL_SUFFIX = ".log"
#: RDB heartbeat: a running trial records one every HEARTBEAT_S seconds; one silent for
#: GRACE_S seconds is stale (failed, and retried with the same parameters).
HEARTBEAT_S = 10
GRACE_S = 30


def mask_url(url: str) -> str:
    """``url`` with its password replaced by ``***`` (for logs and errors)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return url.split("@", 1)[-1] if "@" in url else url


@dataclass(frozen=True)
class StorageSpec:
    """Which storage: ``url`` of a database, or None for the journal files."""

    url: str | None = None

    @classmethod
    def from_env(cls) -> StorageSpec:
        url = os.environ.get(STORAGE_ENV, "").strip()
        return cls(url or None)

    def describe(self) -> str:
        """The masked URL, or the journal directory."""
        if self.url:
            return mask_url(self.url)
        return f"journal files in {tuning_dir()}"

    def open(self, study_name: str) -> optuna.storages.BaseStorage:
        """The storage holding ``study_name`` (created when missing)."""
        if self.url:
            return _rdb(self.url)
        return _journal(journal_path(study_name))

    def study_names(self) -> list[str]:
        """Every study this storage holds."""
        if self.url:
            import optuna

            return list(optuna.study.get_all_study_names(_rdb(self.url)))
        root = tuning_dir()
        if not root.is_dir():
            return []
        return sorted(p.name[: -len(JOURNAL_SUFFIX)] for p in root.glob(f"*{JOURNAL_SUFFIX}"))

    def reap_lock(self, study_name: str) -> Any:
        """A lock serialising the reaping of dead workers' trials (journal files only;
        a database refuses to finish a trial twice)."""
        if self.url:
            return contextlib.nullcontext()
        return FlockLock(str(journal_path(study_name)) + ".reap")


def tuning_dir() -> Path:
    """``<base>/experiments/tuning``: journals, and one directory of trial runs per study."""
    return paths.resolve(TUNING_DIR)


def journal_path(study_name: str) -> Path:
    return tuning_dir() / f"{study_name}{JOURNAL_SUFFIX}"


def study_dir(study_name: str) -> Path:
    """The study's trial run directories, ``tuning.json`` and plot."""
    return tuning_dir() / study_name


class FlockLock:
    """An exclusive ``flock`` on ``<path>.lock``, as Optuna's journal backend takes locks
    (``acquire``/``release``) and as a context manager. Each acquire opens its own file
    description, so threads of one process exclude each other too."""

    def __init__(self, path: str) -> None:
        self.path = path if path.endswith(".lock") else path + ".lock"
        self._held = threading.local()

    def acquire(self) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
        self._held.fd = fd
        return True

    def release(self) -> None:
        fd = getattr(self._held, "fd", None)
        if fd is None:
            raise RuntimeError(f"{self.path} is not locked by this thread")
        self._held.fd = None
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def __enter__(self) -> FlockLock:
        self.acquire()
        return self

    def __exit__(self, *_: object) -> None:
        self.release()


def _journal(path: Path) -> optuna.storages.BaseStorage:
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock: Any = FlockLock(str(path))
        backend = JournalFileBackend(str(path), lock_obj=lock)
    except OSError as exc:
        if is_environment_oserror(exc):
            raise storage_error(exc, "opening the tuning journal", path) from exc
        raise TuningError(f"cannot open the tuning journal {path}: {exc}") from exc
    return JournalStorage(backend)


@functools.lru_cache(maxsize=4)
def _rdb(url: str) -> optuna.storages.BaseStorage:
    import optuna
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError

    shown = mask_url(url)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return RDBStorage(
                url,
                engine_kwargs={"pool_pre_ping": True},
                heartbeat_interval=HEARTBEAT_S,
                grace_period=GRACE_S,
                heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=3),
            )
    except (ArgumentError, ImportError) as exc:
        raise TuningError(f"{STORAGE_ENV}={shown} is not a usable SQLAlchemy URL: {exc}") from None
    except SQLAlchemyError as exc:
        raise unreachable(url, exc) from None


def unreachable(url: str, exc: BaseException) -> ServiceUnavailableError:
    """The one error for a tuning database that cannot be used right now."""
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return ServiceUnavailableError(
        f"tuning storage {mask_url(url)} is unreachable ({reason[0] if reason else exc}); "
        f"start the database server and create the database, or unset {STORAGE_ENV} to use "
        "journal files under the base directory"
    )
