from __future__ import annotations

import errno
from collections.abc import Callable
from pathlib import Path

import pytest

from ml import errors as ml_errors
from ml.errors import (
    AlreadyExistsError,
    ExtraFileError,
    IntegrityError,
    InvalidNameError,
    InvalidRunError,
    ModelNotFoundError,
    NoPreviousVersionError,
    RegistryAccessError,
    RegistryError,
    RegistryLockTimeoutError,
    RegistryStorageError,
    VersionInUseError,
    VersionNotFoundError,
)
from ml.registry.model_registry import ModelRegistry
from ml.registry.oserrors import os_errors, translate_oserror

MakeRun = Callable[..., Path]

USER_ERRORS = (
    InvalidNameError,
    InvalidRunError,
    ExtraFileError,
    ModelNotFoundError,
    VersionNotFoundError,
    AlreadyExistsError,
    VersionInUseError,
    NoPreviousVersionError,
    IntegrityError,
    RegistryAccessError,
)


@pytest.mark.parametrize("cls", USER_ERRORS)
def test_user_errors_are_registry_and_user_errors(cls: type[Exception]) -> None:
    assert issubclass(cls, RegistryError)
    assert issubclass(cls, ml_errors.UserError)
    assert not issubclass(cls, ml_errors.RetryableError)


def test_environment_errors_are_retryable_with_exit_3() -> None:
    storage = RegistryStorageError(errno.ENOSPC, "disk full")
    assert isinstance(storage, ml_errors.StorageError) and isinstance(storage, OSError)
    assert isinstance(storage, RegistryError)
    assert storage.exit_code == 3
    assert issubclass(RegistryLockTimeoutError, ml_errors.LockTimeoutError)
    assert issubclass(RegistryLockTimeoutError, TimeoutError)
    assert RegistryLockTimeoutError("x").exit_code == 3
    assert VersionNotFoundError("x").exit_code == 2
    assert issubclass(VersionNotFoundError, LookupError)


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EIO, errno.EROFS])
def test_translate_environment_oserror_names_path_and_cause(code: int, tmp_path: Path) -> None:
    exc = OSError(code, "boom", str(tmp_path / "models" / "x"))
    err = translate_oserror(exc, "writing the version", None)
    assert isinstance(err, RegistryStorageError)
    assert err.errno == code
    assert str(tmp_path / "models" / "x") in str(err)
    assert "writing the version" in str(err) and "boom" in str(err)
    assert err.__cause__ is exc


def test_translate_uses_the_callers_path_when_the_os_gave_none(tmp_path: Path) -> None:
    err = translate_oserror(OSError(errno.EIO, "I/O error"), "copying", tmp_path / "tmp-x")
    assert f"copying: {tmp_path / 'tmp-x'}: I/O error" in str(err)


def test_translate_access_problems_are_user_errors(tmp_path: Path) -> None:
    err = translate_oserror(PermissionError(errno.EACCES, "Permission denied", "/m"), "x", None)
    assert isinstance(err, RegistryAccessError)
    assert "Permission denied" in str(err) and "permissions" in str(err)
    err = translate_oserror(OSError(errno.ENOTDIR, "Not a directory", "/m/x"), "x", None)
    assert isinstance(err, RegistryAccessError)


def test_translate_a_followed_link_is_an_integrity_error() -> None:
    err = translate_oserror(OSError(errno.ELOOP, "Too many levels", "/m/lock"), "locking", None)
    assert isinstance(err, IntegrityError)
    assert "/m/lock is a symbolic link" in str(err)


def test_translate_unwraps_a_generic_storage_error(tmp_path: Path) -> None:
    cause = OSError(errno.ENOSPC, "No space left on device")
    generic = ml_errors.storage_error(cause, "writing", tmp_path / "f")
    err = translate_oserror(generic, "saving the index", tmp_path / "f")
    assert isinstance(err, RegistryStorageError)
    assert str(err).count("No space left on device") == 1


def test_os_errors_passes_registry_errors_through() -> None:
    with pytest.raises(VersionNotFoundError), os_errors("x"):
        raise VersionNotFoundError("kept")
    with pytest.raises(ml_errors.CheckpointError), os_errors("x"):
        raise ml_errors.CheckpointError("not an OSError: kept")
    with pytest.raises(RegistryStorageError), os_errors("x"):
        raise OSError(errno.ENOSPC, "full")


def test_register_into_a_root_that_is_a_file_names_it(home: Path, make_run: MakeRun) -> None:
    (home / "models").write_text("not a directory")
    with pytest.raises(RegistryAccessError, match=r"registry root models is a regular file"):
        ModelRegistry("models").register(make_run())


def test_a_lock_file_replaced_by_a_link_is_refused(
    registry: ModelRegistry, make_run: MakeRun, home: Path, tmp_path: Path
) -> None:
    registry.register(make_run())
    lock = home / "models" / ".registry" / "ctr_model" / "lock"
    lock.unlink()
    target = tmp_path / "elsewhere-lock"
    target.write_text("")
    lock.symlink_to(target)
    with pytest.raises(IntegrityError, match=r"lock is a symbolic link"):
        registry.promote_to_production("ctr_model", "v1")


def test_a_history_replaced_by_a_link_is_refused(
    registry: ModelRegistry, make_run: MakeRun, home: Path, tmp_path: Path
) -> None:
    registry.register(make_run())
    history = home / "models" / ".registry" / "ctr_model" / "history.jsonl"
    target = tmp_path / "elsewhere.jsonl"
    target.write_bytes(history.read_bytes())
    history.unlink()
    history.symlink_to(target)
    with pytest.raises(IntegrityError, match=r"history.jsonl is a symbolic link"):
        registry.register(make_run())
    with pytest.raises(IntegrityError, match=r"history.jsonl is a symbolic link"):
        registry.history("ctr_model")
