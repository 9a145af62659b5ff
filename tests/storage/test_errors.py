from __future__ import annotations

from ml.errors import RetryableError, UserError
from ml.storage import errors


def test_storage_errors_sit_on_the_branch_that_says_what_to_do() -> None:
    for cls in (
        errors.InvalidLocationError,
        errors.BucketNotFoundError,
        errors.AccessDeniedError,
        errors.ObjectNotFoundError,
    ):
        assert issubclass(cls, UserError) and cls.exit_code == 2
    for cls in (errors.StorageUnavailableError, errors.ConditionFailedError):
        assert issubclass(cls, RetryableError) and cls.exit_code == 3
    assert issubclass(errors.ObjectNotFoundError, LookupError)
