"""The canary setting: a share of traffic for one version beside production's ``current``.

``production/<name>/canary.json`` holds ``{"version", "traffic", "since", "by",
"reason", "op"}``; no file means no canary. ``ctr-pipeline serve`` polls it like the
``current`` link and sends ``traffic`` of its users (the sticky hash of
:mod:`ml.serving.service.settings`) to ``version``. The registry only writes it; a
service reads it.

A change follows :mod:`ml.registry.recovery`: under the model's lock the intent (kind
``canary``, the new setting or None) is made durable, then the new file is written
beside the old one as ``.current-<op>`` (a name gc removes when a writer died) and
renamed over ``canary.json`` (or ``canary.json`` is unlinked): that rename or unlink is
the point of no return, and recovery recognises it by the ``op`` inside the file. The
history event is ``canary`` with ``version`` (None when turned off), ``traffic``,
``from`` (the previous canary version), ``by`` and ``reason``.
"""

from __future__ import annotations

import json
import math
import os
from contextlib import suppress
from typing import Any

from ml.errors import IntegrityError, ServingError, VersionInUseError
from ml.fsutil import fsync_dir, utc_now
from ml.registry import _fs, catalog, journal, recovery
from ml.registry.layout import (
    LINK_PREFIX,
    PRODUCTION,
    STAGING,
    Layout,
    validate_name,
    validate_version,
)
from ml.registry.oserrors import os_errors

CANARY_FILE = "canary.json"
KIND = recovery.CANARY


def read(layout: Layout, name: str) -> dict[str, Any] | None:
    """The canary setting of ``name``, or None. A damaged file is an IntegrityError."""
    path = layout.model_dir(PRODUCTION, name) / CANARY_FILE
    layout.check_no_links(path)
    try:
        raw = _fs.read_regular(path, limit=1 << 16)
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        record = json.loads(raw)
        if not isinstance(record, dict):
            raise ValueError("not an object")
        validate_version(str(record.get("version")))
        check_traffic(record.get("traffic"))
    except (ValueError, ServingError) as exc:
        raise IntegrityError(
            f"{layout.display(path)} is damaged ({exc}); it is only ever replaced whole. "
            f"Set the canary again (`ctr-pipeline registry canary {name} vN --traffic 0.1`) "
            "or turn it off (`--off`)"
        ) from exc
    return record


def check_traffic(traffic: Any) -> float:
    """``traffic`` as a float strictly between 0 and 1, else :class:`ServingError`."""
    if (
        isinstance(traffic, bool)
        or not isinstance(traffic, (int, float))
        or not math.isfinite(traffic)
        or not 0.0 < traffic < 1.0
    ):
        raise ServingError(
            f"canary traffic must be a number strictly between 0 and 1 (e.g. 0.1), got {traffic!r}"
        )
    return float(traffic)


def set_canary(
    layout: Layout,
    name: str,
    version: str | None,
    traffic: float,
    *,
    lock_timeout: float,
    audit: journal.Audit,
) -> dict[str, Any] | None:
    """Set (``version``) or clear (None) the canary; returns the new setting."""
    validate_name(name)
    if version is not None:
        validate_version(version)
        traffic = check_traffic(traffic)
        if not layout.has_manifest(PRODUCTION, name, version):
            layout.require_version(STAGING, name, version)
    prod_dir = layout.model_dir(PRODUCTION, name)
    with os_errors(f"setting the canary of {name!r}", prod_dir):
        layout.ensure_dir(prod_dir)
        with recovery.writing(layout, name, lock_timeout) as session:
            done = session.take(KIND, to=version)
            if done is not None:
                return read(layout, name)
            return _set_locked(session, version, traffic, audit)


def _set_locked(
    session: recovery.Session, version: str | None, traffic: float, audit: journal.Audit
) -> dict[str, Any] | None:
    layout, name = session.layout, session.name
    old = read(layout, name)
    if version is not None and version == catalog.current_version(layout, name):
        raise VersionInUseError(
            f"Model {name!r} {version} is production's current version already; a canary "
            "is a version beside it (register and pick another one)"
        )
    if old is None and version is None:
        return None  # already off: nothing to record
    if old is not None and old.get("version") == version and old.get("traffic") == traffic:
        return old
    fields = audit.fields()
    event = {"event": KIND, "version": version, "traffic": traffic if version else 0.0}
    event.update({"from": old.get("version") if old else None, **fields})
    intent = session.begin(KIND, event, to=version)
    record = None
    if version is not None:
        record = {"version": version, "traffic": traffic, "since": utc_now(), **fields}
        record["op"] = intent["op"]
    write(layout, name, record, intent["op"])  # the point of no return
    session.commit(intent)
    return record


def write(layout: Layout, name: str, record: dict[str, Any] | None, op: str) -> None:
    """Replace ``canary.json`` with ``record`` (None: remove it), atomically, fsynced."""
    prod_dir = layout.model_dir(PRODUCTION, name)
    path = prod_dir / CANARY_FILE
    if record is None:
        with suppress(FileNotFoundError):
            os.unlink(path)
            fsync_dir(prod_dir)
        return
    tmp = prod_dir / f"{LINK_PREFIX}{op}"
    _fs.write_file(tmp, (json.dumps(record, sort_keys=True) + "\n").encode())
    try:
        os.replace(tmp, path)
    except BaseException:
        with suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(prod_dir)


def took_effect(layout: Layout, name: str, intent: dict[str, Any]) -> bool:
    """For recovery: the file says what the intent announced."""
    try:
        record = read(layout, name)
    except IntegrityError:
        return False
    if intent.get("to") is None:
        return record is None
    return record is not None and record.get("op") == intent["op"]


def undo(layout: Layout, name: str, intent: dict[str, Any]) -> None:
    """For recovery: remove the new file a dead writer left before renaming it."""
    with suppress(FileNotFoundError):
        os.unlink(layout.model_dir(PRODUCTION, name) / f"{LINK_PREFIX}{intent['op']}")
