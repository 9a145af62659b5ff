"""Errors of the storage layer, each on the branch of :mod:`ml.errors` that says what to do.

::

    StorageLayerError                    base: catch this for any storage failure
    ├── InvalidLocationError (UserError)     a malformed URL, an unsupported scheme or key
    ├── BucketNotFoundError (UserError)      the bucket does not exist
    ├── AccessDeniedError (UserError)        wrong or missing credentials, no permission
    ├── ObjectNotFoundError (UserError, LookupError)   no object at that key
    ├── StorageUnavailableError (RetryableError)       endpoint down, timeout, 503 SlowDown
    └── ConditionFailedError (RetryableError)          a conditional write lost (412/409):
                                                       another writer got there first

Every message names the URL (passwords redacted, see :func:`ml.storage.url.redact_url`)
and the cause, and never a credential.
"""

from __future__ import annotations

from ml import errors as _errors


class StorageLayerError(_errors.CtrPipelineError):
    """Base of every error :mod:`ml.storage` raises."""


class InvalidLocationError(StorageLayerError, _errors.UserError, ValueError):
    """A URL, scheme or key cannot be used (fix the location): exit 2."""


class BucketNotFoundError(StorageLayerError, _errors.UserError):
    """The bucket (container) does not exist: create it or fix the URL. Exit 2."""


class AccessDeniedError(StorageLayerError, _errors.UserError):
    """Credentials are wrong or missing, or they lack a permission. Exit 2."""


class ObjectNotFoundError(StorageLayerError, _errors.UserError, LookupError):
    """No object at the key."""


class StorageUnavailableError(StorageLayerError, _errors.RetryableError):
    """The store cannot be reached or is throttling: a retry may help. Exit 3."""


class ConditionFailedError(StorageLayerError, _errors.RetryableError):
    """A conditional write lost: the object exists (create) or changed (compare-and-swap).

    Callers that write conditionally handle it; one that escapes says that another
    writer changed the same object at the same time, and a retry starts over.
    """
