"""Every error ``ml`` raises on purpose, under one root.

Three branches, by what the caller should do about it::

    CtrPipelineError                 root: catch this to handle any pipeline error
    ├── UserError                    fix your input: CLI "error: ..." exit 2; DAG fails, no retry
    │   ├── ConfigError (ValueError)         ml.config: bad file, key, type or range
    │   ├── BaseDirError                     ml.paths: $CTR_PIPELINE_HOME unusable
    │   ├── DataError (ValueError)           ml.data: the features cannot be used
    │   │   ├── FeatureValidationError       validation found problems (.problems)
    │   │   ├── DataLoadError                a split file or column is missing/unreadable
    │   │   ├── PreprocessingError           values cannot be encoded
    │   │   ├── GenerationError              bad generator arguments or target directory
    │   │   └── DataImportError              a source file cannot be imported (file, line)
    │   ├── TrainingError (ValueError)       ml.training: bad run directory, no CUDA...
    │   │   └── CheckpointError              a checkpoint is missing, unreadable or foreign
    │   ├── GateConfigError (ValueError)     a gate threshold is out of range
    │   ├── TuningError (ValueError)         a bad search space or study
    │   └── RegistryUserError …              see ml/registry/errors.py (names, not found…)
    ├── RetryableError                the environment failed, a retry may help:
    │   │                            CLI exit 3; DAG task retried
    │   ├── StorageError (OSError)           disk full, I/O error, read-only file system
    │   ├── LockTimeoutError (TimeoutError)  another process held a lock too long
    │   └── ServiceUnavailableError          a database, broker or server is unreachable
    └── GateFailedError              a verdict, not a fault: the model failed a quality
                                     gate. CLI exit 1; DAG fails, no retry

The registry's errors (``ml/registry/errors.py``) hang under ``UserError`` or
``RetryableError`` through their own base ``RegistryError``, so ``except RegistryError``
still catches every registry failure.

Boundaries translate once: ``ml.cli.main`` maps the branches to exit codes,
``dags/training_pipeline_tasks.py`` maps ``UserError``/``GateFailedError`` to
``AirflowFailException`` and lets ``RetryableError`` retry. Messages name the file,
column, parameter or value and say how to fix it.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path


class CtrPipelineError(Exception):
    """Root of every error the pipeline raises on purpose."""

    #: Process exit status the CLI uses for this branch.
    exit_code = 1


class UserError(CtrPipelineError):
    """The input needs fixing (config, data, arguments): retrying cannot help."""

    exit_code = 2


class RetryableError(CtrPipelineError):
    """The environment failed (disk, I/O, lock, service): a retry may succeed."""

    exit_code = 3


class GateFailedError(CtrPipelineError):
    """A quality gate rejected the model (``report`` holds every gate's result)."""

    exit_code = 1

    def __init__(self, message: str, report: object | None = None) -> None:
        super().__init__(message)
        self.report = report


# --- user errors ------------------------------------------------------------------------


class ConfigError(UserError, ValueError):
    """The configuration file or a value in it is invalid."""


class BaseDirError(UserError):
    """The base directory cannot be determined or does not exist."""


class DataError(UserError, ValueError):
    """The feature data cannot be used as it is."""


class FeatureValidationError(DataError):
    """The features do not match the spec; ``problems`` lists every problem found."""

    def __init__(self, problems: list[str], features_dir: Path | str | None = None) -> None:
        from ml.fsutil import display_path

        self.problems = list(problems)
        self.features_dir = features_dir
        where = f" in {display_path(features_dir)}" if features_dir is not None else ""
        head = f"{len(self.problems)} problem(s) with the features{where}:"
        super().__init__("\n".join([head, *(f"  - {p}" for p in self.problems)]))


class DataLoadError(DataError):
    """A features directory, split file or column is missing or unusable."""


class PreprocessingError(DataError):
    """The data cannot be encoded (missing column, bad values, bad preprocessor state)."""


class GenerationError(DataError):
    """Bad generator arguments or an output directory that may not be written."""


class DataImportError(DataError):
    """A source file cannot be imported; the message names the file, line and field."""


class TrainingError(UserError, ValueError):
    """A training problem the user can fix: bad run directory, no CUDA, NaN loss."""


class CheckpointError(TrainingError):
    """A checkpoint is missing, unreadable, or not one this code can load."""


class GateConfigError(UserError, ValueError):
    """A gate threshold is out of range (names the parameter and the value)."""


class TuningError(UserError, ValueError):
    """A search space, study or trial setting is invalid."""


# --- environment errors -----------------------------------------------------------------


class StorageError(RetryableError, OSError):
    """Disk full, an I/O error or a read-only file system while reading or writing."""


class LockTimeoutError(RetryableError, TimeoutError):
    """A lock could not be taken within the timeout."""


class ServiceUnavailableError(RetryableError):
    """A database, broker or server the step needs cannot be reached."""


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
