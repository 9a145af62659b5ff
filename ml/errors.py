"""Every error ``ml`` raises on purpose, under one root, in this one module.

The tree, drawn from the classes by :func:`draw_tree` (tests/test_errors.py checks that
this drawing is current; ``python -m ml.errors`` prints it)::

  CtrPipelineError                                      Root: catch this for any pipeline error.
  ├── UserError                                         Fix the input (config, data, args): exit 2.
  │   ├── ConfigError (ValueError)                      A bad config file, key, type or range.
  │   ├── BaseDirError                                  $CTR_PIPELINE_HOME is unusable.
  │   ├── DataError (ValueError)                        The features cannot be used as they are.
  │   │   ├── FeatureValidationError                    Validation found problems (``.problems``).
  │   │   ├── DataLoadError                             A split file or column missing/unreadable.
  │   │   ├── PreprocessingError                        Values cannot be encoded.
  │   │   ├── GenerationError                           Bad generator arguments or target directory.
  │   │   └── DataImportError                           A source file cannot be imported.
  │   ├── TrainingError (ValueError)                    Bad run directory, no CUDA, NaN loss.
  │   │   └── CheckpointError                           A missing, unreadable or foreign checkpoint.
  │   ├── GateConfigError (ValueError)                  A gate threshold is out of range.
  │   ├── TuningError (ValueError)                      A bad search space, study or trial setting.
  │   ├── CardError                                     A card, comparison or run cannot be built.
  │   ├── ServingError                                  Bad serving settings (A/B file, limits).
  │   ├── RequestValidationError                        A request body that cannot be scored (422).
  │   ├── AuthError                                     An unusable token file or auth setting.
  │   ├── BodyTooLargeError                             A request body over the limit (413).
  │   ├── RequestIdRefusedError                         Feedback for a request id it refuses.
  │   │   ├── UnknownRequestIdError                     An id this service did not issue (404).
  │   │   └── ExpiredRequestIdError                     An id older than the feedback TTL (410).
  │   └── SourceChangedError                            A file changed while it was being copied.
  ├── RetryableError                                    The environment failed, retry: exit 3.
  │   ├── StorageError (OSError)                        Disk full, I/O error, read-only file system.
  │   ├── LockTimeoutError (TimeoutError)               Another process held a lock too long.
  │   ├── ServiceUnavailableError                       A database, broker or server is unreachable.
  │   └── WorkerFailedError                             A torchrun training process died.
  ├── GateFailedError                                   A quality gate rejected the model: exit 1.
  │   └── DriftDetectedError                            Drift past max_psi with drift_action fail.
  ├── RegistryError                                     Base of every registry error.
  │   ├── InvalidNameError (UserError, ValueError)      A malformed name, version, stage or ref.
  │   ├── InvalidRunError (UserError, ValueError)       The run directory cannot be registered.
  │   │   └── ExtraFileError                            An ``extra_files`` entry is bad.
  │   ├── NotFoundError (UserError, LookupError)        No such model or version (or not visible).
  │   │   ├── ModelNotFoundError                        No such model in the stage.
  │   │   └── VersionNotFoundError                      The model exists, that version does not.
  │   ├── AlreadyExistsError (UserError)                Something else sits where it would write.
  │   ├── VersionInUseError (UserError)                 Refused: it is production's ``current``.
  │   ├── NoPreviousVersionError (UserError)            Rollback has nothing to go back to.
  │   ├── IntegrityError (UserError)                    A file differs from its manifest, or a link.
  │   ├── RegistryAccessError (UserError)               Permission denied, a file for a directory.
  │   ├── RegistryStorageError (StorageError)           Disk full or I/O error in the registry.
  │   │   └── TookEffectError                           It took effect; recording it then failed.
  │   └── RegistryLockTimeoutError (LockTimeoutError)   A model's lock was held too long.
  └── StorageLayerError                                 Base of every ml.storage error.
      ├── InvalidLocationError (UserError, ValueError)  A URL, scheme or key that cannot be used.
      ├── BucketNotFoundError (UserError)               The bucket (container) does not exist.
      ├── AccessDeniedError (UserError)                 Credentials wrong, missing or not allowed.
      ├── ObjectNotFoundError (UserError, LookupError)  No object at the key.
      ├── StorageUnavailableError (RetryableError)      Endpoint down, timeout, 503 SlowDown.
      └── ConditionFailedError (RetryableError)         A conditional write lost (412/409).

What the caller should do depends on the branch: ``UserError``: fix the input (CLI
``error: ...`` exit 2; the DAG fails without retrying); ``RetryableError``: the environment
failed, a retry may help (CLI exit 3; the DAG retries); ``GateFailedError``: a verdict,
not a fault (CLI exit 1; the DAG fails). ``RegistryError`` groups the registry's errors,
each of which is also on one of those branches (shown in parentheses).

Boundaries translate once: ``ml.cli.main`` maps the branches to exit codes,
``dags/training_pipeline_tasks.py`` maps ``UserError``/``GateFailedError`` to
``AirflowFailException`` and lets ``RetryableError`` retry. Messages name the file,
column, parameter or value and say how to fix it. How an ``OSError`` becomes one of
these: :func:`storage_error` here, ``ml.registry.oserrors`` in the registry.
"""

from __future__ import annotations

import errno
import inspect
import os
import sys
from typing import Any


class CtrPipelineError(Exception):
    """Root: catch this for any pipeline error."""

    #: Process exit status the CLI uses for this branch.
    exit_code = 1


class UserError(CtrPipelineError):
    """Fix the input (config, data, args): exit 2."""

    exit_code = 2


class RetryableError(CtrPipelineError):
    """The environment failed, retry: exit 3."""

    exit_code = 3


class GateFailedError(CtrPipelineError):
    """A quality gate rejected the model: exit 1.

    ``report`` holds every gate's result.
    """

    exit_code = 1

    def __init__(self, message: str, report: object | None = None) -> None:
        super().__init__(message)
        self.report = report


class DriftDetectedError(GateFailedError):
    """Drift past max_psi with drift_action fail."""


# --- user errors ------------------------------------------------------------------------


class ConfigError(UserError, ValueError):
    """A bad config file, key, type or range."""


class BaseDirError(UserError):
    """$CTR_PIPELINE_HOME is unusable."""


class DataError(UserError, ValueError):
    """The features cannot be used as they are."""


class FeatureValidationError(DataError):
    """Validation found problems (``.problems``)."""

    def __init__(self, problems: list[str], features_dir: str | None = None) -> None:
        """``features_dir`` as it is shown (``ml.fsutil.display_path``), or None."""
        self.problems = list(problems)
        self.features_dir = features_dir
        where = f" in {features_dir}" if features_dir is not None else ""
        head = f"{len(self.problems)} problem(s) with the features{where}:"
        super().__init__("\n".join([head, *(f"  - {p}" for p in self.problems)]))


class DataLoadError(DataError):
    """A split file or column missing/unreadable."""


class PreprocessingError(DataError):
    """Values cannot be encoded."""


class GenerationError(DataError):
    """Bad generator arguments or target directory."""


class DataImportError(DataError):
    """A source file cannot be imported."""


class TrainingError(UserError, ValueError):
    """Bad run directory, no CUDA, NaN loss."""


class CheckpointError(TrainingError):
    """A missing, unreadable or foreign checkpoint."""


class GateConfigError(UserError, ValueError):
    """A gate threshold is out of range."""


class TuningError(UserError, ValueError):
    """A bad search space, study or trial setting."""


class CardError(UserError):
    """A card, comparison or run cannot be built."""


class ServingError(UserError):
    """Bad serving settings (A/B file, limits)."""


class RequestValidationError(UserError):
    """A request body that cannot be scored (422).

    ``errors`` are FastAPI-style entries (``loc``, ``msg``, ``type``).
    """

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors))


class AuthError(UserError):
    """An unusable token file or auth setting."""


class BodyTooLargeError(UserError):
    """A request body over the limit (413).

    ``declared`` is its Content-Length, or ``read`` the bytes read before stopping.
    """

    def __init__(self, limit: int, *, declared: int | None = None, read: int = 0) -> None:
        self.limit, self.declared, self.read = limit, declared, read
        if declared is not None:
            text = f"the body is {declared:,} bytes"
        else:
            text = f"the body is over {limit:,} bytes (stopped reading at {read:,})"
        super().__init__(f"{text}; the limit is {limit:,}")


class RequestIdRefusedError(UserError):
    """Feedback for a request id it refuses.

    ``reason`` is the Prometheus label it is counted under.
    """

    reason = "unknown_request"


class UnknownRequestIdError(RequestIdRefusedError):
    """An id this service did not issue (404)."""

    reason = "unknown_request"


class ExpiredRequestIdError(RequestIdRefusedError):
    """An id older than the feedback TTL (410)."""

    reason = "expired_request"


class SourceChangedError(UserError):
    """A file changed while it was being copied."""


# --- environment errors -----------------------------------------------------------------


class StorageError(RetryableError, OSError):
    """Disk full, I/O error, read-only file system."""


class LockTimeoutError(RetryableError, TimeoutError):
    """Another process held a lock too long."""


class ServiceUnavailableError(RetryableError):
    """A database, broker or server is unreachable."""


class WorkerFailedError(RetryableError):
    """A torchrun training process died."""


# --- the registry ---------------------------------------------------------------------
# Each concrete registry error is a RegistryError (catch that for any registry failure)
# and sits on the branch that says what to do about it: UserError or RetryableError.


class RegistryError(CtrPipelineError):
    """Base of every registry error."""


class InvalidNameError(RegistryError, UserError, ValueError):
    """A malformed name, version, stage or ref."""


class InvalidRunError(RegistryError, UserError, ValueError):
    """The run directory cannot be registered."""


class ExtraFileError(InvalidRunError):
    """An ``extra_files`` entry is bad."""


class NotFoundError(RegistryError, UserError, LookupError):
    """No such model or version (or not visible)."""


class ModelNotFoundError(NotFoundError):
    """No such model in the stage."""


class VersionNotFoundError(NotFoundError):
    """The model exists, that version does not."""


class AlreadyExistsError(RegistryError, UserError):
    """Something else sits where it would write."""


class VersionInUseError(RegistryError, UserError):
    """Refused: it is production's ``current``."""


class NoPreviousVersionError(RegistryError, UserError):
    """Rollback has nothing to go back to."""


class IntegrityError(RegistryError, UserError):
    """A file differs from its manifest, or a link.

    ``problems`` lists each finding (one file per entry).
    """

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = list(problems or [])


class RegistryAccessError(RegistryError, UserError):
    """Permission denied, a file for a directory."""


class RegistryStorageError(RegistryError, StorageError):
    """Disk full or I/O error in the registry."""


class TookEffectError(RegistryStorageError):
    """It took effect; recording it then failed.

    The change stands (a retry of the same call returns the same result, never a second
    change); ``operation`` is its intent (``kind``, ``version``, ...). Recording it in the
    index or history hit a storage error; the message says who finishes that.
    """

    def __init__(self, code: int, message: str, operation: dict[str, object]) -> None:
        super().__init__(code, message)
        self.operation = operation


class RegistryLockTimeoutError(RegistryError, LockTimeoutError):
    """A model's lock was held too long."""


# --- the storage layer (ml/storage) -----------------------------------------------------
# Each is a StorageLayerError (catch that for any storage failure) on the branch that says
# what to do. Messages name the URL (passwords redacted) and the cause, never a credential.


class StorageLayerError(CtrPipelineError):
    """Base of every ml.storage error."""


class InvalidLocationError(StorageLayerError, UserError, ValueError):
    """A URL, scheme or key that cannot be used."""


class BucketNotFoundError(StorageLayerError, UserError):
    """The bucket (container) does not exist."""


class AccessDeniedError(StorageLayerError, UserError):
    """Credentials wrong, missing or not allowed."""


class ObjectNotFoundError(StorageLayerError, UserError, LookupError):
    """No object at the key."""


class StorageUnavailableError(StorageLayerError, RetryableError):
    """Endpoint down, timeout, 503 SlowDown."""


class ConditionFailedError(StorageLayerError, RetryableError):
    """A conditional write lost (412/409).

    The object exists (create) or changed (compare-and-swap). Callers that write
    conditionally handle it; one that escapes says another writer changed the same object
    at the same time, and a retry starts over.
    """


#: errno values that mean "the environment failed" rather than "the input is wrong".
ENVIRONMENT_ERRNOS = frozenset(
    {
        errno.ENOSPC,
        errno.EDQUOT,
        errno.EIO,
        errno.EROFS,
        errno.ENOMEM,
        errno.EAGAIN,
        errno.ESTALE,
        errno.ETIMEDOUT,
        errno.EMFILE,
        errno.ENFILE,
    }
)


def is_environment_oserror(exc: BaseException) -> bool:
    """True for an ``OSError`` that a retry (or freeing space) may fix."""
    return isinstance(exc, OSError) and exc.errno in ENVIRONMENT_ERRNOS


def describe_oserror(exc: OSError) -> str:
    """``No space left on device`` style text of an ``OSError`` (without the path)."""
    if exc.strerror:
        return exc.strerror
    if exc.errno:
        return os.strerror(exc.errno)
    return str(exc) or type(exc).__name__


def storage_error(exc: OSError, action: str, path: str | os.PathLike[str] | None) -> StorageError:
    """A :class:`StorageError` for ``exc`` that says what was being done and where.

    Args:
        exc: the ``OSError`` (ENOSPC, EIO, ...).
        action: what failed, e.g. ``"writing the run directory"``.
        path: the file or directory involved.
    """
    where = f" {os.fspath(path)}" if path is not None else ""
    err = StorageError(
        exc.errno or 0,
        f"{action}{where} failed: {describe_oserror(exc)}; free space or fix the storage, "
        "then retry",
    )
    err.__cause__ = exc
    return err


# --- the drawing ------------------------------------------------------------------------

_BUILTIN_NOTED = (ValueError, LookupError, OSError, TimeoutError)


def _children(cls: type) -> list[type]:
    """Classes of this module whose first base is ``cls``, in definition order."""
    here = [c for c in globals().values() if inspect.isclass(c) and c.__module__ == __name__]
    return [c for c in here if c.__bases__[0] is cls]


def _label(cls: type) -> str:
    others = [b.__name__ for b in cls.__bases__[1:] if b.__module__ == __name__]
    builtins = [b.__name__ for b in cls.__bases__ if b in _BUILTIN_NOTED]
    extra = others + builtins
    return cls.__name__ + (f" ({', '.join(extra)})" if extra else "")


def draw_tree() -> str:
    """The class tree of this module's errors, one line per class with its summary."""
    rows: list[tuple[str, str]] = []

    def walk(cls: type, prefix: str, last: bool, top: bool) -> None:
        branch = "" if top else ("└── " if last else "├── ")
        head = f"{prefix}{branch}{_label(cls)}"
        summary = inspect.cleandoc(cls.__doc__ or "").split("\n")[0]
        rows.append((head, summary))
        kids = _children(cls)
        inner = prefix + ("" if top else ("    " if last else "│   "))
        for i, kid in enumerate(kids):
            walk(kid, inner, i == len(kids) - 1, False)

    walk(CtrPipelineError, "", True, True)
    width = max(len(head) for head, _ in rows)
    return "\n".join(f"  {head:<{width}}  {summary}".rstrip() for head, summary in rows)


if __name__ == "__main__":
    sys.stdout.write(draw_tree() + "\n")
