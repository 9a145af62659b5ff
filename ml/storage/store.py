"""One object store addressed by URL: the primitives the registry and the data layer need.

:class:`ObjectStore` wraps an obstore store (``s3://`` today, see :mod:`ml.storage.s3`)
rooted at the URL's prefix; keys are relative to it. Besides plain get/put/list/delete it
offers the two conditional writes the registry's invariants rest on:

- :meth:`ObjectStore.put_if_absent`: create only (``If-None-Match: *``);
- :meth:`ObjectStore.put_if_match`: replace only the version read (``If-Match: <ETag>``).

Both raise :class:`~ml.errors.ConditionFailedError` when another writer won. For polling,
:meth:`ObjectStore.get_if_changed` sends ``If-None-Match: <ETag>`` on a GET: a 304
without a body while the object is unchanged.
Every other failure becomes one of the ``StorageLayerError`` classes of :mod:`ml.errors`,
naming the URL (redacted) and the cause: missing bucket, denied access and bad keys are
user errors (exit 2); an endpoint that is down, a timeout or a throttled request is
retryable (exit 3).
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import obstore
from obstore import exceptions as obx

from ml.errors import (
    AccessDeniedError,
    BucketNotFoundError,
    ConditionFailedError,
    InvalidLocationError,
    ObjectNotFoundError,
    StorageUnavailableError,
)
from ml.storage.url import ObjectUrl, redact_url

#: parts of a multipart upload; large enough to keep the request count low
UPLOAD_CHUNK = 16 << 20
DOWNLOAD_CHUNK = 8 << 20


@dataclass(frozen=True)
class Version:
    """What a compare-and-swap compares: the ETag (S3, Azure) and the version/generation."""

    etag: str | None
    version: str | None = None


@dataclass(frozen=True)
class ObjectInfo:
    """One listed or inspected object (``key`` relative to the store's URL)."""

    key: str
    size: int
    version: Version


class ObjectStore:
    """The objects below one URL. Build one with :func:`ml.storage.open_store`."""

    def __init__(self, url: ObjectUrl, store: Any) -> None:
        self.url = url
        self._store = store

    def __repr__(self) -> str:
        return f"ObjectStore({redact_url(str(self.url))!r})"

    def show(self, key: str = "") -> str:
        """The redacted URL of ``key``, for messages."""
        return redact_url(self.url.url(key))

    # --- reading ----------------------------------------------------------------------

    def get(self, key: str) -> bytes:
        """The object's bytes; :class:`ObjectNotFoundError` when there is none."""
        found = self.get_versioned(key)
        if found is None:
            raise ObjectNotFoundError(f"no object at {self.show(key)}")
        return found[0]

    def get_versioned(self, key: str) -> tuple[bytes, Version] | None:
        """``(bytes, version)`` of the object, or None when there is none."""
        with self._errors("reading", key, missing_ok=True):
            res = obstore.get(self._store, key)
            meta = res.meta
            return bytes(res.bytes()), Version(meta.get("e_tag"), meta.get("version"))
        return None

    def get_if_changed(
        self, key: str, known: Version | None
    ) -> tuple[bytes | None, Version] | None:
        """``get_versioned`` sent with ``If-None-Match: <known ETag>``, for polling: while
        the object keeps that ETag the store answers 304 without a body, and this returns
        ``(None, known)``. None when there is no object."""
        etag = known.etag if known is not None else None
        with self._errors("reading", key, missing_ok=True):
            try:
                res = obstore.get(
                    self._store, key, options={"if_none_match": etag} if etag else None
                )
            except obx.NotModifiedError:
                assert known is not None  # only with an ETag to compare
                return None, known
            meta = res.meta
            return bytes(res.bytes()), Version(meta.get("e_tag"), meta.get("version"))
        return None

    def head(self, key: str) -> ObjectInfo | None:
        """Size and version of the object, or None when there is none."""
        with self._errors("inspecting", key, missing_ok=True):
            meta = obstore.head(self._store, key)
            return _info(meta)
        return None

    def get_range(self, key: str, start: int, end: int) -> bytes:
        """Bytes ``[start, end)`` of the object (one ranged GET)."""
        with self._errors("reading", key):
            return bytes(obstore.get_range(self._store, key, start=start, end=end))
        raise AssertionError("unreachable")  # pragma: no cover

    def exists(self, key: str) -> bool:
        return self.head(key) is not None

    def list_objects(self, prefix: str = "", *, start_after: str | None = None) -> list[ObjectInfo]:
        """Every object whose key starts with ``prefix`` (after ``start_after``), by key."""
        out: list[ObjectInfo] = []
        with self._errors("listing", prefix):
            stream = obstore.list(self._store, prefix or None, offset=start_after, chunk_size=1000)
            for batch in stream:
                out.extend(_info(m) for m in batch)
        out.sort(key=lambda o: o.key)
        return out

    def list_dirs(self, prefix: str = "") -> list[str]:
        """Names of the "directories" directly below ``prefix`` (common prefixes)."""
        with self._errors("listing", prefix):
            res = obstore.list_with_delimiter(self._store, prefix or None)
        return sorted(p.rstrip("/").rsplit("/", 1)[-1] for p in res["common_prefixes"])

    def sha256(self, key: str) -> tuple[str, int]:
        """``(sha256 hex, size)`` of the object, streamed (never held in memory whole)."""
        digest, size = hashlib.sha256(), 0
        with self._errors("reading", key):
            res = obstore.get(self._store, key)
            for chunk in res.stream(min_chunk_size=DOWNLOAD_CHUNK):
                digest.update(chunk)
                size += len(chunk)
        return digest.hexdigest(), size

    def download_file(self, key: str, dest: str | os.PathLike[str]) -> None:
        """Stream the object into ``dest`` (written beside it, then renamed into place)."""
        dest = Path(dest)
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent)
        try:
            with os.fdopen(fd, "wb") as fh, self._errors("downloading", key):
                res = obstore.get(self._store, key)
                for chunk in res.stream(min_chunk_size=DOWNLOAD_CHUNK):
                    fh.write(chunk)
            os.replace(tmp, dest)
        finally:
            with suppress(FileNotFoundError):
                os.unlink(tmp)

    # --- writing ----------------------------------------------------------------------

    def put(self, key: str, data: bytes) -> Version:
        """Write (or replace) the object."""
        return self._put("writing", key, data, None)

    def put_if_absent(self, key: str, data: bytes) -> Version:
        """Create the object; :class:`ConditionFailedError` if it exists (``If-None-Match``)."""
        return self._put("creating", key, data, "create")

    def put_if_match(self, key: str, data: bytes, expected: Version) -> Version:
        """Replace the object only if it is still ``expected`` (``If-Match``), else raise
        :class:`ConditionFailedError`."""
        mode = {k: v for k, v in (("e_tag", expected.etag), ("version", expected.version)) if v}
        return self._put("replacing", key, data, mode)

    def upload_file(self, key: str, src: str | os.PathLike[str]) -> Version:
        """Upload a local file (multipart above :data:`UPLOAD_CHUNK`)."""
        return self._put("uploading", key, Path(src), None)

    def copy(self, src: str, dst: str) -> None:
        """Server-side copy of ``src`` to ``dst`` (no bytes through this host)."""
        with self._errors("copying", src):
            obstore.copy(self._store, src, dst)

    def delete(self, keys: list[str]) -> None:
        """Delete the objects (missing ones are fine)."""
        if keys:
            with self._errors("deleting", keys[0]):
                obstore.delete(self._store, keys)

    def _put(self, action: str, key: str, data: bytes | Path, mode: Any) -> Version:
        with self._errors(action, key):
            res = obstore.put(
                self._store, key, data, mode=mode, chunk_size=UPLOAD_CHUNK, max_concurrency=8
            )
            return Version(res.get("e_tag"), res.get("version"))
        raise AssertionError("unreachable")  # pragma: no cover

    # --- errors -----------------------------------------------------------------------

    @contextmanager
    def _errors(self, action: str, key: str, *, missing_ok: bool = False) -> Iterator[None]:
        """Translate an obstore error raised inside into a storage error (:mod:`ml.errors`)."""
        try:
            yield
        except (obx.BaseError, FileNotFoundError, PermissionError, OSError) as exc:
            err = translate(exc, f"{action} {self.show(key)}")
            if missing_ok and isinstance(err, ObjectNotFoundError):
                return
            raise err from exc


def _info(meta: Any) -> ObjectInfo:
    return ObjectInfo(
        str(meta["path"]), int(meta["size"]), Version(meta.get("e_tag"), meta.get("version"))
    )


_STATUS_RE = re.compile(r"status code: (\d{3}[^:<]*)")
_CODE_RE = re.compile(r"<Code>([^<]+)</Code>")
_MESSAGE_RE = re.compile(r"<Message>([^<]+)</Message>")
#: the credential chain ended at the instance metadata endpoint: nothing else was set
_NO_CREDENTIALS_RE = re.compile(r"169\.254\.169\.254|169\.254\.170\.2|fetching credentials", re.I)
#: S3 error codes that mean "the credentials or the policy refuse this"
_DENIED = ("AccessDenied", "SignatureDoesNotMatch", "InvalidAccessKeyId", "ExpiredToken",
           "InvalidToken", "AllAccessDisabled", "403 Forbidden")  # fmt: skip


def cause_of(exc: BaseException) -> str:
    """A short cause: the HTTP status and S3 error code and message when the store sent
    them, else the error's first line; any URL password redacted."""
    text = str(exc).strip()
    status, code, message = (r.search(text) for r in (_STATUS_RE, _CODE_RE, _MESSAGE_RE))
    if status or code:
        parts = [m.group(1).strip() for m in (status, code) if m]
        detail = f": {message.group(1).strip()}" if message else ""
        return redact_url(f"HTTP {' '.join(parts)}{detail}"[:400])
    first = text.splitlines()[0] if text else type(exc).__name__
    return redact_url(first[:400])


def translate(exc: BaseException, what: str) -> Exception:
    """The storage error (:mod:`ml.errors`) for ``exc`` raised while doing ``what``."""
    text = str(exc)
    cause = cause_of(exc)
    if isinstance(exc, (obx.AlreadyExistsError, obx.PreconditionError)):
        return ConditionFailedError(
            f"{what}: another writer created or changed it first ({cause}); retry"
        )
    if "NoSuchBucket" in text:
        return BucketNotFoundError(
            f"{what}: the bucket does not exist; create it or fix the URL ({cause})"
        )
    if _NO_CREDENTIALS_RE.search(text):
        return AccessDeniedError(
            f"{what}: no credentials found (the client fell back to the instance metadata "
            "endpoint, which refused or did not answer); set AWS_ACCESS_KEY_ID/"
            "AWS_SECRET_ACCESS_KEY, web identity or an instance role"
        )
    denied = (obx.PermissionDeniedError, obx.UnauthenticatedError, PermissionError)
    if isinstance(exc, denied) or any(code in text for code in _DENIED):
        return AccessDeniedError(
            f"{what}: access denied ({cause}); check the credentials (AWS_ACCESS_KEY_ID/"
            "AWS_SECRET_ACCESS_KEY or the profile) and that they may use this bucket"
        )
    if isinstance(exc, (obx.NotFoundError, FileNotFoundError)):
        return ObjectNotFoundError(f"{what}: not found ({cause})")
    if isinstance(exc, (obx.InvalidPathError, obx.UnknownConfigurationKeyError)) or (
        "InvalidBucketName" in text
    ):
        return InvalidLocationError(f"{what}: {cause}; fix the URL or the storage settings")
    if isinstance(exc, obx.NotSupportedError):
        return InvalidLocationError(
            f"{what}: the store does not support this operation ({cause}); see docs/storage.md"
        )
    return StorageUnavailableError(
        f"{what} failed: {cause}; check that the endpoint is up and reachable "
        "(AWS_ENDPOINT_URL), then retry"
    )
