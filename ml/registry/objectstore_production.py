"""Production on an object store: the verified copy, the pointer, its event log.

``promote`` copies staging ``vN`` to ``production/<name>/vN/`` server side and verifies
the copy against the manifest (written there last); the copy is invisible until the
pointer lists it. ``promote``/``rollback`` then go through :func:`move_current`:
production event k is created conditionally, then the pointer is swapped from seq k-1
to k with ``If-Match``. A writer that finds event k written but the pointer still at
k-1 (its writer died, or is about to apply it) applies it first (:func:`settle`), marked
``recovered``; the dead writer's retry takes that event as its own instead of moving
``current`` twice. The canary setting lives in the same pointer (``canary``), changed
by a ``canary`` event through the same :func:`move_current`, so one GET of the pointer
tells a service both what is current and what the canary is. Readers never write: for
them the state is the pointer, and the history stops at its seq.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from contextlib import suppress
from typing import Any

from ml.errors import (
    AlreadyExistsError,
    ConditionFailedError,
    IntegrityError,
    ServingError,
    StorageUnavailableError,
    VersionInUseError,
)
from ml.fsutil import utc_now
from ml.registry import canary, journal
from ml.registry.layout import MANIFEST, MODEL_FILE, PRODUCTION, STAGING, validate_version
from ml.registry.objectstore import (
    CANARY,
    DELETED,
    Keys,
    cas_update,
    dumps,
    loads,
    numbers,
    published,
    read_current,
    read_json,
    require_version,
)
from ml.storage.store import ObjectStore, Version


def copy_to_production(store: ObjectStore, keys: Keys, name: str, version: str) -> bool:
    """Copy staging ``version`` to production, verified; True when it was copied now."""
    staged = keys.version(STAGING, name, version, MANIFEST)
    manifest = require_version(store, keys, name, version, STAGING)
    manifest_bytes = store.get(staged)
    dst_manifest = keys.version(PRODUCTION, name, version, MANIFEST)
    existing = store.get_versioned(dst_manifest)
    if existing is not None:
        if existing[0] != manifest_bytes:
            raise AlreadyExistsError(
                f"{store.show(keys.version(PRODUCTION, name, version))} already exists with "
                f"different files than staging {version}; delete it and promote again"
            )
        copied = False
    else:
        for fname in sorted(manifest.get("files", {})):
            store.copy(
                keys.version(STAGING, name, version, fname),
                keys.version(PRODUCTION, name, version, fname),
            )
        copied = True
    problems = _verify_copy(store, keys, name, version, manifest)
    if MODEL_FILE not in manifest.get("files", {}):
        problems.append(f"{MANIFEST}: lists no {MODEL_FILE}")
    if problems:
        raise IntegrityError(
            f"Model {name!r} version {version} under {store.show(STAGING)} failed "
            f"verification: {'; '.join(problems)}. Re-register the run before promoting",
            problems,
        )
    if copied:
        # a concurrent promotion of the same version may have written the same manifest
        with suppress(ConditionFailedError):
            store.put_if_absent(dst_manifest, manifest_bytes)
    return copied  # visible once the pointer lists it (see move_current)


def _verify_copy(
    store: ObjectStore, keys: Keys, name: str, version: str, manifest: dict[str, Any]
) -> list[str]:
    problems = []
    for fname, want in sorted(manifest.get("files", {}).items()):
        digest, _ = store.sha256(keys.version(PRODUCTION, name, version, fname))
        if digest != want.get("sha256"):
            problems.append(f"{fname}: sha256 differs from {MANIFEST}")
    return problems


def move_current(
    store: ObjectStore,
    keys: Keys,
    name: str,
    make_event: Callable[[str | None, int, dict[str, Any]], dict[str, Any] | None],
    retry_of: Callable[[dict[str, Any]], bool] | None = None,
) -> tuple[dict[str, Any] | None, str | None]:
    """Write production event k, then swap the pointer from seq k-1 to k.

    ``make_event(current version, seq of current, pointer)`` returns the event to record,
    or None for no change. When the last event was applied by a helper (its writer died) and
    ``retry_of(event)`` says this call is that writer's retry, the event is acknowledged
    and returned instead of making a new one. Returns ``(event or None, previous)``.
    """
    for attempt in range(500):
        cur, token = settle(store, keys, name)
        if cur is not None and cur.get("recovered") and retry_of is not None:
            done = event_at(store, keys, name, int(cur["seq"]))
            if done is not None and retry_of(done):
                _acknowledge(store, keys, name, int(cur["seq"]))
                return done, done.get("from")
        version = str(cur["version"]) if cur and cur.get("version") else None
        seq = int(cur["seq"]) if cur else 0
        event = make_event(version, seq, cur or {})
        if event is None:
            return None, version
        record = {"at": utc_now(), "name": name, "seq": seq + 1, **event}
        try:
            store.put_if_absent(keys.event(name, seq + 1), dumps(record))
        except ConditionFailedError:
            time.sleep(random.uniform(0, min(0.02 * (attempt + 1), 0.3)))
            continue  # another writer took seq k: apply theirs, then try at k+1
        if not _apply(store, keys, name, record, cur, token, recovered=False):
            _acknowledge(store, keys, name, seq + 1)  # a helper applied it for us
        return record, version
    raise StorageUnavailableError(
        f"moving {store.show(keys.current(name))}: too many concurrent changes; retry"
    )


def _apply(
    store: ObjectStore,
    keys: Keys,
    name: str,
    event: dict[str, Any],
    base: dict[str, Any] | None,
    token: Version | None,
    *,
    recovered: bool,
) -> bool:
    """Swap the pointer to ``event`` (seq k) from ``base``, the pointer read at k-1."""
    data = dumps({**next_pointer(base, event), "recovered": recovered})
    try:
        if token is None:
            store.put_if_absent(keys.current(name), data)
        else:
            store.put_if_match(keys.current(name), data, token)
    except ConditionFailedError:
        return False
    return True


def next_pointer(base: dict[str, Any] | None, event: dict[str, Any]) -> dict[str, Any]:
    """The pointer after ``event``: promote/rollback move ``version`` and list the target
    in production; a delete unlists the version (staging deletes are kept in ``deleted``,
    which hides them from the index) and, when it was current, clears ``version``."""
    base = base or {}
    production, deleted = set(numbers(base, PRODUCTION)), set(numbers(base, DELETED))
    version = base.get("version")
    if event.get("event") in ("promote", "rollback"):
        version = event["to"]
        production.add(int(str(event["to"])[1:]))
    elif event.get("event") == "delete":
        n = int(str(event["version"])[1:])
        if event.get("stage") == PRODUCTION:
            production.discard(n)
            version = None if event.get("was_current") else version
        else:
            deleted.add(n)
    canary = base.get(CANARY)
    if event.get("event") == CANARY:
        canary = canary_record(event)
    return {
        "version": version,
        "seq": event["seq"],
        "at": event.get("at"),
        PRODUCTION: sorted(production),
        DELETED: sorted(deleted),
        CANARY: canary,
    }


def canary_record(event: dict[str, Any]) -> dict[str, Any] | None:
    """The canary setting a ``canary`` event leaves (as ``canary.json`` holds locally)."""
    if event.get("version") is None:
        return None
    fields = ("version", "traffic", "by", "reason", "op")
    return {"since": event.get("at"), **{k: event.get(k) for k in fields}}


def _acknowledge(store: ObjectStore, keys: Keys, name: str, seq: int) -> None:
    """Clear ``recovered`` on the pointer if it still stands at ``seq``."""

    def clear(value: Any) -> Any:
        if not isinstance(value, dict) or value.get("seq") != seq or not value.get("recovered"):
            return None
        return {**value, "recovered": False}

    cas_update(store, keys.current(name), clear)


def event_at(store: ObjectStore, keys: Keys, name: str, seq: int) -> dict[str, Any] | None:
    found = read_json(store, keys.event(name, seq))
    return found[0] if found is not None and isinstance(found[0], dict) else None


def settle(
    store: ObjectStore, keys: Keys, name: str
) -> tuple[dict[str, Any] | None, Version | None]:
    """Apply every production event written but not applied (its writer died or is about
    to apply it); the pointer after it and its version. Writers call it, readers do not:
    for a reader the state is the pointer, and history stops at the pointer's seq."""
    while True:
        cur = read_current(store, keys, name)
        value, token = cur if cur is not None else (None, None)
        seq = int(value["seq"]) if value else 0
        pending = event_at(store, keys, name, seq + 1)
        if pending is None:
            return value, token
        _apply(store, keys, name, {**pending, "seq": seq + 1}, value, token, recovered=True)


def production_events(store: ObjectStore, keys: Keys, name: str) -> list[dict[str, Any]]:
    """Production events 1..k, k the pointer's seq, oldest first (what the state shows)."""
    cur = read_current(store, keys, name)
    seq = int(cur[0]["seq"]) if cur else 0
    out = []
    for obj in store.list_objects(keys.meta(name, "history") + "/"):
        k = int(obj.key.rsplit("/", 1)[-1])
        if k <= seq:
            out.append(loads(store, obj.key, store.get(obj.key)))
    return out


def rollback_target(events: list[dict[str, Any]], current: str, published: set[int]) -> str | None:
    """As :func:`ml.registry.production.rollback_target`, from the production events."""
    stack = journal.production_stack(events)
    if not stack or stack[-1] != current:
        stack.append(current)
    stack.pop()
    while stack and (stack[-1] == current or int(stack[-1][1:]) not in published):
        stack.pop()
    return stack[-1] if stack else None


# --- the canary -----------------------------------------------------------------------------


def canary_in(
    store: ObjectStore, keys: Keys, name: str, pointer: dict[str, Any] | None
) -> dict[str, Any] | None:
    """The canary setting in the pointer, or None; a damaged one is an IntegrityError."""
    record = pointer.get(CANARY) if pointer is not None else None
    if record is None:
        return None
    try:
        if not isinstance(record, dict):
            raise ValueError("not an object")
        validate_version(str(record.get("version")))
        canary.check_traffic(record.get("traffic"))
    except (ValueError, ServingError) as exc:
        raise IntegrityError(
            f"the canary in {store.show(keys.current(name))} is damaged ({exc}); set it "
            f"again (`ctr-pipeline registry canary {name} vN --traffic 0.1`) or turn it "
            "off (`--off`)"
        ) from exc
    return dict(record)


def set_canary(
    store: ObjectStore,
    keys: Keys,
    name: str,
    version: str | None,
    traffic: float,
    fields: dict[str, Any],
) -> dict[str, Any] | None:
    """Set (``version``) or clear (None) the canary: a ``canary`` event applied to the
    pointer like a promotion (:func:`move_current`). Returns the setting now in force."""
    if version is not None:
        validate_version(version)
        traffic = canary.check_traffic(traffic)
        if int(version[1:]) not in published(store, keys, name, PRODUCTION):
            require_version(store, keys, name, version, STAGING)  # the not-found error
    shares = traffic if version is not None else 0.0
    left: list[dict[str, Any] | None] = [None]

    def event(current: str | None, seq: int, pointer: dict[str, Any]) -> dict[str, Any] | None:
        old = pointer.get(CANARY) if isinstance(pointer.get(CANARY), dict) else None
        left[0] = old
        if version is not None and version == current:
            raise VersionInUseError(
                f"Model {name!r} {version} is production's current version already; a canary "
                "is a version beside it (register and pick another one)"
            )
        if old is None and version is None:
            return None  # already off: nothing to record
        if old is not None and (old.get("version"), old.get("traffic")) == (version, shares):
            return None  # the same setting: nothing to record
        previous = old.get("version") if old else None
        return {"event": CANARY, "version": version, "traffic": shares, "from": previous,
                "op": journal.new_op_id(), **fields}  # fmt: skip

    def mine(done: dict[str, Any]) -> bool:
        same = [done.get(k) for k in ("event", "version", "traffic", "by", "reason")]
        return same == [CANARY, version, shares, fields["by"], fields["reason"]]

    record, _ = move_current(store, keys, name, event, mine)
    return canary_record(record) if record is not None else left[0]
