"""Exceptions raised by the model registry, and the one place OS errors become them.

Every error names the model, the version and the directory involved, and says how to
fix the problem. ``RegistryError`` sits under :class:`ml.errors.CtrPipelineError`; each
concrete error also derives from the branch that says what to do about it
(:class:`ml.errors.UserError`: fix the input, CLI exit 2; :class:`ml.errors.RetryableError`:
the environment failed, CLI exit 3, the DAG retries). The tree::

    RegistryError                      base: catch this to handle any registry failure
    ├── InvalidNameError (ValueError)  a model name, version, stage or ref is malformed
    ├── InvalidRunError (ValueError)   the training run directory cannot be registered
    │   └── ExtraFileError             a file passed as ``extra_files`` cannot be added
    ├── NotFoundError (LookupError)
    │   ├── ModelNotFoundError         no such model (or no visible version) in a stage
    │   └── VersionNotFoundError       the model exists, that version does not
    ├── AlreadyExistsError             a different artifact already sits at that place
    ├── VersionInUseError              refusing to delete what ``current`` points at
    ├── NoPreviousVersionError         rollback has nothing to go back to
    ├── IntegrityError                 a file differs from its manifest, or a link escapes
    ├── RegistryAccessError            the registry's storage cannot be used as it is:
    │                                  permission denied, a file where a directory belongs
    ├── RegistryStorageError (OSError) disk full, I/O error, read-only file system
    │   │                              (also ml.errors.StorageError: retryable)
    │   └── TookEffectError            ... after the change took effect: it stands, and
    │                                  a retry returns the same result
    └── LockTimeoutError (TimeoutError) another process holds the model's lock too long
                                       (also ml.errors.LockTimeoutError: retryable)

Every class above except ``RegistryStorageError`` and ``LockTimeoutError`` is also a
``ml.errors.UserError``. :func:`os_errors` turns an ``OSError`` raised inside a registry
operation into one of these, naming the path and the cause.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager

from ml import errors as _errors
from ml.fsutil import display_path


class RegistryError(_errors.CtrPipelineError):
    """Base class of every error the registry raises on purpose."""


class InvalidNameError(RegistryError, _errors.UserError, ValueError):
    """A model name, version, stage or version reference is malformed."""


class InvalidRunError(RegistryError, _errors.UserError, ValueError):
    """The training run directory is missing, incomplete or holds unreadable files."""


class ExtraFileError(InvalidRunError):
    """A file given in ``register(..., extra_files=...)`` has a bad name or cannot be read."""


class NotFoundError(RegistryError, _errors.UserError, LookupError):
    """A model or version does not exist (or is not visible: deleted, half-written)."""


class ModelNotFoundError(NotFoundError):
    """No such model in the stage, or it has no visible version."""


class VersionNotFoundError(NotFoundError):
    """The model exists in the stage, the requested version does not."""


class AlreadyExistsError(RegistryError, _errors.UserError):
    """A different artifact already exists where the registry would write."""


class VersionInUseError(RegistryError, _errors.UserError):
    """The version is the one ``production/<name>/current`` points at."""


class NoPreviousVersionError(RegistryError, _errors.UserError):
    """Rollback was asked for, but the history holds no earlier production version."""


class IntegrityError(RegistryError, _errors.UserError):
    """Stored files differ from their manifest, or the layout holds an unsafe link.

    ``problems`` lists each finding (one file per entry).
    """

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = list(problems or [])


class RegistryAccessError(RegistryError, _errors.UserError):
    """A registry path cannot be used: permission denied, not a directory, read-only."""


class RegistryStorageError(RegistryError, _errors.StorageError):
    """Disk full or an I/O error while reading or writing the registry (retryable)."""


class TookEffectError(RegistryStorageError):
    """The change took effect, then recording it (index, history) hit a storage error.

    ``operation`` is the operation's intent (``kind``, ``version``, ...). The change stands;
    a retry of the same call is safe (it returns the same result, never a second change).
    """

    def __init__(self, code: int, message: str, operation: dict[str, object]) -> None:
        super().__init__(code, message)
        self.operation = operation


class LockTimeoutError(RegistryError, _errors.LockTimeoutError):
    """The per-model lock could not be taken within the timeout."""


#: errno values that mean "a path in the registry is not usable as it is" (fix by hand).
_ACCESS_ERRNOS = frozenset(
    {errno.EACCES, errno.EPERM, errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.ENOTEMPTY}
)


def translate_oserror(exc: OSError, action: str, path: str | os.PathLike[str] | None) -> Exception:
    """The registry error for ``exc``, raised while ``action`` on ``path``.

    ``exc.filename`` wins over ``path`` when the OS named the file. Environment failures
    (ENOSPC, EIO, EROFS...) become :class:`RegistryStorageError`; a link where the registry
    expects a file (ELOOP from ``O_NOFOLLOW``) an :class:`IntegrityError`; anything else a
    :class:`RegistryAccessError`.
    """
    if isinstance(exc, _errors.StorageError) and isinstance(exc.__cause__, OSError):
        exc = exc.__cause__  # ml.fsutil already wrapped it: describe the original
    where = exc.filename if exc.filename is not None else path
    shown = display_path(where) if where is not None else "the registry"
    cause = _errors.describe_oserror(exc)
    if _errors.is_environment_oserror(exc):
        err: Exception = RegistryStorageError(
            exc.errno or 0,
            f"{action}: {shown}: {cause}; free space or fix the storage, then retry "
            "(a retry is safe: it completes or undoes what this call started)",
        )
    elif exc.errno == errno.ELOOP:
        err = IntegrityError(
            f"{action}: {shown} is a symbolic link; the registry never follows links below "
            "its root. Replace it with a regular file or directory"
        )
    else:
        hint = (
            "check the permissions of the registry directory (--base-dir)"
            if exc.errno in (errno.EACCES, errno.EPERM)
            else "point --base-dir at a directory the registry may use, or fix the path"
        )
        err = RegistryAccessError(f"{action}: {shown}: {cause}; {hint}")
    err.__cause__ = exc
    return err


@contextmanager
def os_errors(action: str, path: str | os.PathLike[str] | None = None) -> Iterator[None]:
    """Turn an ``OSError`` (or a generic ``StorageError``) raised inside into a registry error.

    Registry errors pass through unchanged, so nested uses keep the innermost message.
    """
    try:
        yield
    except RegistryError:
        raise
    except _errors.CtrPipelineError as exc:
        if not isinstance(exc, _errors.StorageError):
            raise
        raise translate_oserror(exc, action, path) from exc
    except OSError as exc:
        raise translate_oserror(exc, action, path) from exc
