"""Exceptions raised by the model registry.

Every error names the model, the version and the directory involved, and says how to
fix the problem. ``RegistryError`` sits under :class:`ml.errors.CtrPipelineError`; each
concrete error also derives from the branch that says what to do about it
(:class:`ml.errors.UserError`: fix the input; :class:`ml.errors.RetryableError`: the
environment failed, retry). The tree::

    RegistryError                      base: catch this to handle any registry failure
    ├── InvalidNameError (ValueError)  a model name, version, stage or ref is malformed
    ├── InvalidRunError (ValueError)   the training run directory cannot be registered
    ├── NotFoundError (LookupError)
    │   ├── ModelNotFoundError         no such model (or no visible version) in a stage
    │   └── VersionNotFoundError       the model exists, that version does not
    ├── AlreadyExistsError             a different artifact already sits at that place
    ├── VersionInUseError              refusing to delete what ``current`` points at
    ├── NoPreviousVersionError         rollback has nothing to go back to
    ├── IntegrityError                 a file differs from its manifest, or a link escapes
    └── LockTimeoutError               another process holds the model's lock too long
                                       (also ml.errors.LockTimeoutError: retryable)

Every class above except ``LockTimeoutError`` is also a ``ml.errors.UserError``.
"""

from __future__ import annotations

from ml import errors as _errors


class RegistryError(_errors.CtrPipelineError):
    """Base class of every error the registry raises on purpose."""


class InvalidNameError(RegistryError, _errors.UserError, ValueError):
    """A model name, version, stage or version reference is malformed."""


class InvalidRunError(RegistryError, _errors.UserError, ValueError):
    """The training run directory is missing, incomplete or holds unreadable files."""


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


class LockTimeoutError(RegistryError, _errors.LockTimeoutError):
    """The per-model lock could not be taken within the timeout."""
