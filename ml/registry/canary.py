"""The canary setting: a share of traffic for one version beside production's ``current``.

``production/<name>/canary.json`` holds ``{"version", "traffic", "since", "by",
"reason", "op"}``; no file means no canary. ``ctr-pipeline serve`` polls it like the
``current`` link and sends ``traffic`` of its users (the sticky hash of
:mod:`ml.serving.service.settings`) to ``version``. The registry only writes it; a
service reads it.

A change (:func:`ml.registry.production.set_canary`) follows
:mod:`ml.registry.recovery`: under the model's lock the intent (kind
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

from ml.errors import IntegrityError, ServingError
from ml.fsutil import fsync_dir
from ml.registry import _fs
from ml.registry.layout import LINK_PREFIX, PRODUCTION, Layout, validate_version

CANARY_FILE = "canary.json"
#: the intent's kind and the history event's name
KIND = "canary"


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
