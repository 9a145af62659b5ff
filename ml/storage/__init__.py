"""One storage layer addressed by URL: a local path or an object store (``s3://``).

Local paths keep the project's POSIX code (flock, rename, symlinks); a URL opens an
:class:`~ml.storage.store.ObjectStore` with the primitives object stores offer: get/put,
conditional create, compare-and-swap, list, delete, upload/download. Store-specific code
lives in one module per store (:mod:`ml.storage.s3`). Importing this package is cheap:
the object-store client is imported by :func:`open_store`. See docs/storage.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ml.errors import InvalidLocationError
from ml.storage.url import ObjectUrl, redact_url

if TYPE_CHECKING:
    from ml.storage.store import ObjectStore


#: URL schemes with a backend; gs:// and az:// are described in docs/storage.md
SUPPORTED_SCHEMES = ("s3",)


def open_store(url: str) -> ObjectStore:
    """The :class:`ObjectStore` for ``url`` (``s3://bucket/prefix``).

    Raises:
        InvalidLocationError: not a URL, or a scheme without a backend.
    """
    from ml.storage.store import ObjectStore

    parsed = ObjectUrl.parse(url)
    if parsed.scheme == "s3":
        from ml.storage import s3

        return ObjectStore(parsed, s3.build(parsed))
    raise InvalidLocationError(
        f"{redact_url(url)!r}: no storage backend for {parsed.scheme}:// (supported: "
        f"{', '.join(s + '://' for s in SUPPORTED_SCHEMES)} and local paths); see docs/storage.md"
    )
