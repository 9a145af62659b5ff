"""Request ids that prove they were issued, and the feedback already recorded for them.

A scored request's id is ``<issued>.<rows>.<nonce>.<mac>``: the issue time (Unix
seconds) and the number of rows scored, in hex, 16 random hex digits, and the first 128
bits of ``HMAC-SHA256(key, "<issued>.<rows>.<nonce>")``. The key is a per-service secret
in the log directory (``request-id.key``, 0600, created on first start and kept across
restarts), shared by every worker. So ``/feedback`` checks an id without any state:

- a bad MAC (a made-up id, one of another service, a rejected request's id) is *unknown*;
- an id older than ``--feedback-ttl`` is *expired*;
- a row at or past the number of rows scored does not exist.

:class:`FeedbackLedger` remembers, per worker, which rows of which request already have
an outcome (within a memory budget, the oldest ids forgotten first), so a second outcome
for the same row is refused. With ``--workers N`` a second outcome sent to another
worker (or after a restart) is appended; ``serve report`` keeps the first one per row.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from ml.errors import AuthError, ExpiredRequestIdError, UnknownRequestIdError
from ml.serving.service.auth import check_private

KEY_FILE = "request-id.key"
DEFAULT_TTL = 7 * 24 * 3600.0
#: What a worker's :class:`FeedbackLedger` may take: ~200,000 ids with one-row feedback.
LEDGER_BYTES = 40 << 20
ENTRY_BYTES = 200
_ID = re.compile(r"^([0-9a-f]{1,12})\.([0-9a-f]{1,8})\.([0-9a-f]{16})\.([0-9a-f]{32})$")


@dataclass(frozen=True)
class IssuedId:
    issued: int
    rows: int


def load_or_create_key(log_dir: Path) -> bytes:
    """The service's id key (32 random bytes), created 0600 if absent (race-safe).

    Raises:
        AuthError: the key file is not private or not a key.
    """
    path = log_dir / KEY_FILE
    if not path.exists():
        log_dir.mkdir(parents=True, exist_ok=True)
        tmp = log_dir / f".{KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32) + "\n")
        try:
            os.link(tmp, path)  # fails if another worker created it first: use theirs
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    check_private(path)
    try:
        key = bytes.fromhex(path.read_text().strip())
    except ValueError:
        key = b""
    if len(key) < 16:
        raise AuthError(f"{path} is not a request id key (hex); remove it to create a new one")
    return key


class RequestIds:
    """Issue and check signed request ids."""

    def __init__(self, key: bytes, ttl: float = DEFAULT_TTL) -> None:
        self._key = key
        self.ttl = ttl

    def _mac(self, text: str) -> str:
        return hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()[:32]

    def issue(self, rows: int, now: float | None = None) -> str:
        issued = int(time.time() if now is None else now)
        text = f"{issued:x}.{rows:x}.{secrets.token_hex(8)}"
        return f"{text}.{self._mac(text)}"

    def check(self, request_id: str, now: float | None = None) -> IssuedId:
        """When ``request_id`` was issued and how many rows it scored.

        Raises:
            UnknownRequestIdError: not an id this service issued.
            ExpiredRequestIdError: issued more than ``ttl`` seconds ago.
        """
        match = _ID.match(request_id)
        if match is None:
            raise UnknownRequestIdError(f"request id {request_id!r} was not issued by this service")
        text, mac = request_id.rsplit(".", 1)
        if not hmac.compare_digest(self._mac(text), mac):
            raise UnknownRequestIdError(f"request id {request_id!r} was not issued by this service")
        issued, rows = int(match[1], 16), int(match[2], 16)
        age = (time.time() if now is None else now) - issued
        if age > self.ttl:
            raise ExpiredRequestIdError(
                f"request id {request_id!r} was issued {age:,.0f} s ago; feedback is accepted "
                f"for {self.ttl:,.0f} s (--feedback-ttl)"
            )
        return IssuedId(issued, rows)


def _mask(rows: range) -> int:
    return ((1 << len(rows)) - 1) << rows.start


def _cost(mask: int) -> int:
    """About the bytes an entry takes: the id, the dict slot, the bitmask of rows."""
    return ENTRY_BYTES + mask.bit_length() // 8


class FeedbackLedger:
    """The rows that got an outcome, per request id, for this worker, within ``budget``
    bytes (the least recently claimed ids are forgotten first)."""

    def __init__(self, budget: int = LEDGER_BYTES) -> None:
        self.budget = budget
        self._rows: OrderedDict[str, int] = OrderedDict()  # request id -> bitmask of rows
        self._size = 0
        self._lock = threading.Lock()

    def claim(self, request_id: str, rows: range) -> list[int]:
        """Record ``rows`` and return [] or, recording nothing, the rows already recorded."""
        mask = _mask(rows)
        with self._lock:
            previous = self._rows.get(request_id)
            seen = previous or 0
            if seen & mask:
                return [r for r in rows if seen >> r & 1]
            self._rows[request_id] = seen | mask
            self._rows.move_to_end(request_id)
            self._size += _cost(seen | mask) - (0 if previous is None else _cost(previous))
            while self._size > self.budget and len(self._rows) > 1:
                self._size -= _cost(self._rows.popitem(last=False)[1])
        return []

    def release(self, request_id: str, rows: range) -> None:
        """Forget ``rows`` (their outcome could not be written)."""
        with self._lock:
            previous = self._rows.get(request_id)
            if previous is not None:
                self._rows[request_id] = previous & ~_mask(rows)
                self._size += _cost(self._rows[request_id]) - _cost(previous)
