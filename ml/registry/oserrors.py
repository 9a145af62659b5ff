"""Where an ``OSError`` inside a registry operation becomes a registry error.

:func:`os_errors` wraps an operation; :func:`translate_oserror` picks the class (the
classes themselves are in :mod:`ml.errors`, under ``RegistryError``): environment failures
(ENOSPC, EIO, EROFS...) → ``RegistryStorageError`` (retryable); a link where the registry
expects a file → ``IntegrityError``; anything else → ``RegistryAccessError``. Each message
names the path and the cause.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager

from ml import errors as _errors
from ml.errors import IntegrityError, RegistryAccessError, RegistryError, RegistryStorageError
from ml.fsutil import display_path


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
