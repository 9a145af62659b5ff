"""Locations addressed by URL: telling a URL from a local path, splitting it, redacting it.

A location is either a local path (the embedded default) or a URL with a scheme such as
``s3://bucket/prefix``. ``file://`` URLs are local paths. Anything shown to a person goes
through :func:`redact_url` first, so a password or a signature in a URL never reaches a
message or a log.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

_SCHEME_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
#: query parameters whose values are secrets (presigned URLs, SAS tokens, ...)
_SECRET_PARAM_RE = re.compile(r"(signature|secret|token|password|passwd|credential|sig|key)", re.I)
#: ``scheme://user:password@`` anywhere in a text (an error message quoting a URL)
_USERINFO_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*):[^/\s@]*@")


def scheme_of(location: str | os.PathLike[str]) -> str | None:
    """``"s3"`` for ``s3://b/p``; None for a local path (``file://`` counts as local)."""
    if not isinstance(location, str):
        return None
    m = _SCHEME_RE.match(location)
    if m is None or m.group(1).lower() == "file":
        return None
    return m.group(1).lower()


def is_url(location: object) -> bool:
    """True when ``location`` is a URL of an object store rather than a local path."""
    return isinstance(location, str) and scheme_of(location) is not None


def redact_url(text: str) -> str:
    """``text`` with every URL password (and secret query parameter) replaced by ``***``.

    Works on a bare URL and on a message that quotes one.
    """
    text = _USERINFO_RE.sub(r"\1:***@", text)
    if "?" not in text or _SCHEME_RE.match(text) is None or any(c.isspace() for c in text):
        return text
    parts = urlsplit(text)
    query = [
        (k, "***" if _SECRET_PARAM_RE.search(k) else v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return urlunsplit(parts._replace(query=urlencode(query, safe="*")))


@dataclass(frozen=True)
class ObjectUrl:
    """``s3://bucket/some/prefix`` split: scheme, bucket (the host part) and key prefix."""

    scheme: str
    bucket: str
    prefix: str

    @classmethod
    def parse(cls, url: str) -> ObjectUrl:
        from ml.errors import InvalidLocationError

        parts = urlsplit(url)
        if not parts.scheme or not parts.hostname:
            raise InvalidLocationError(
                f"{redact_url(url)!r} is not a storage URL: write scheme://bucket/prefix, "
                "e.g. s3://my-bucket/models"
            )
        if parts.query or parts.fragment:
            raise InvalidLocationError(
                f"{redact_url(url)!r}: a storage URL takes no '?' or '#' part; write "
                "scheme://bucket/prefix and set options in the environment (AWS_*)"
            )
        prefix = parts.path.strip("/")
        if any(p in ("", ".", "..") for p in prefix.split("/")) and prefix:
            raise InvalidLocationError(
                f"{redact_url(url)!r}: the key prefix {prefix!r} has an empty, '.' or '..' "
                "segment; write scheme://bucket/a/b"
            )
        return cls(parts.scheme.lower(), parts.hostname, prefix)

    def key(self, *parts: str) -> str:
        """The object key of ``parts`` below the prefix (``prefix/a/b``)."""
        return "/".join(p for p in (self.prefix, *parts) if p)

    def url(self, *parts: str) -> str:
        """The URL of ``parts`` below the prefix (``s3://bucket/prefix/a/b``)."""
        return f"{self.scheme}://{self.bucket}/{self.key(*parts)}".rstrip("/")

    def __str__(self) -> str:
        return self.url()
