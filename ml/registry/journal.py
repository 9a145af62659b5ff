"""The history journal (``history.jsonl``) and the intent of the operation in flight.

``history.jsonl`` holds one JSON object per line, appended under the model's lock and
fsynced: ``at`` (UTC), ``name``, ``event`` (register, promote, rollback, delete, canary), ``by``,
``op`` (the operation's id), the event's fields, and ``recovered: true`` when the line
was written by recovery after its writer died (see :mod:`ml.registry.recovery`). A line
torn by a crash is skipped when reading, and the next append starts on a fresh line.

``intent.json`` holds at most one operation: what the writer holding the lock is about
to change, written durably before the first change. Its ``state`` is ``pending`` while
the operation runs and ``recovered`` once recovery finished it for a writer that died
(so the writer's retry can recognise its own operation).
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ml.errors import IntegrityError
from ml.fsutil import atomic_write_bytes, fsync_dir, utc_now
from ml.registry import _fs
from ml.registry.layout import HISTORY, INTENT, Layout
from ml.registry.provenance import default_user

PENDING = "pending"
RECOVERED = "recovered"
_TAIL_BYTES = 1 << 16


@dataclass(frozen=True)
class Audit:
    """Who asked for a change and why: the ``by`` and ``reason`` of its history event."""

    reason: str | None = None
    by: str | None = None

    def fields(self) -> dict[str, Any]:
        """``{"reason", "by"}`` for the event (``by`` defaults to the current user)."""
        return {"reason": self.reason, "by": self.by or default_user()}


def new_op_id() -> str:
    return uuid.uuid4().hex


def event_line(name: str, event: dict[str, Any]) -> bytes:
    record = {"at": utc_now(), "name": name, **event}
    return (json.dumps(record, sort_keys=True, default=str) + "\n").encode()


def append(layout: Layout, name: str, event: dict[str, Any]) -> None:
    """Append one event and fsync it; call it with the model's lock held."""
    path = layout.meta_file(name, HISTORY)
    layout.check_no_links(path)
    _fs.append_line(path, event_line(name, event))


def describe(event: Mapping[str, Any], *, arrow: str = "->", missing: str = "-") -> str:
    """What ``event`` changed, for a history listing: ``v1 -> v2`` for a promote or a
    rollback (``missing`` stands for no previous version), ``v3 at 10%`` or ``off (was
    v3)`` for a canary change, else ``stage version``."""
    if event.get("event") in ("promote", "rollback"):
        return f"{event.get('from') or missing} {arrow} {event.get('to')}"
    if event.get("event") == "canary":
        if event.get("version") is None:
            return f"off (was {event.get('from') or missing})"
        return f"{event.get('version')} at {float(event.get('traffic') or 0):.0%}"
    return f"{event.get('stage', '')} {event.get('version', '')}".strip()


def _parse(raw: bytes) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for line in raw.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line torn by a crash mid-append
        if isinstance(record, dict):
            events.append(record)
    return events


def read(layout: Layout, name: str) -> list[dict[str, Any]]:
    """Every event of ``name``, oldest first (empty when there is no journal yet)."""
    path = layout.meta_file(name, HISTORY)
    layout.check_no_links(path)
    try:
        return _parse(_fs.read_regular(path, limit=1 << 30))
    except FileNotFoundError:
        return []


def recorded(layout: Layout, name: str, op: str) -> bool:
    """True when an event of operation ``op`` is among the journal's last lines."""
    path = layout.meta_file(name, HISTORY)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return False
    try:
        size = os.fstat(fd).st_size
        raw = os.pread(fd, _TAIL_BYTES, max(0, size - _TAIL_BYTES))
    finally:
        os.close(fd)
    return any(e.get("op") == op for e in _parse(raw))


def production_stack(events: list[dict[str, Any]]) -> list[str]:
    """The stack of production versions the history implies (top = current).

    Promotions push; a rollback pops back to its target.
    """
    stack: list[str] = []
    for ev in events:
        kind, to = ev.get("event"), ev.get("to")
        if kind == "promote" and isinstance(to, str):
            stack.append(to)
        elif kind == "rollback" and isinstance(to, str):
            while stack and stack[-1] != to:
                stack.pop()
            if not stack:
                stack.append(to)
    return stack


# --- the intent of the operation in flight ---------------------------------------------


def write_intent(layout: Layout, name: str, intent: dict[str, Any]) -> None:
    """Make ``intent`` durable (file and directory fsynced) before anything it announces."""
    path = layout.meta_file(name, INTENT)
    layout.check_no_links(path)
    atomic_write_bytes(path, (json.dumps(intent, sort_keys=True) + "\n").encode())
    fsync_dir(path.parent)


def read_intent(layout: Layout, name: str) -> dict[str, Any] | None:
    """The recorded intent, or None. A damaged intent file is an :class:`IntegrityError`."""
    path = layout.meta_file(name, INTENT)
    try:
        raw = _fs.read_regular(path)
    except FileNotFoundError:
        return None
    try:
        intent = json.loads(raw)
        if not isinstance(intent, dict) or not isinstance(intent.get("kind"), str):
            raise ValueError("not an intent object")
    except ValueError as exc:
        raise IntegrityError(
            f"{layout.display(path)} is damaged ({exc}); it is only ever replaced whole, so "
            "something else wrote it. Check `ctr-pipeline registry history` against "
            "`registry list`, then delete the file"
        ) from exc
    return intent


def has_intent(layout: Layout, name: str) -> bool:
    return os.path.lexists(layout.meta_file(name, INTENT))


def clear_intent(layout: Layout, name: str) -> None:
    """Forget the intent: the last change of every operation, so that a writer killed
    before it leaves the intent for its retry to recognise. Not fsynced: after a power
    cut the intent may come back, and only makes the next identical call a no-op."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(layout.meta_file(name, INTENT))
