"""Changing a registry on an object store: register, promote, rollback (see objectstore.py).

Every step is a single request that either happened or did not, and every operation
can be retried after dying at any request:

- **register**: the run is copied to a local temp dir, hashed and checked as on disk;
  ``claims/<N>`` is created conditionally (the loser takes N+1); the files are uploaded,
  ``MANIFEST.json`` last; the register event is written; the index gains N. A retry of
  the same run finds its own claim (above the index's ``last_claim``) and finishes it.
- **promote / rollback**: production event k is created conditionally, then the pointer
  is swapped from seq k-1 to k with ``If-Match``. Whoever finds event k without the
  pointer at k (its writer died, or lost the swap to a helper) applies it first.
"""

from __future__ import annotations

import os
import random
import tempfile
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any

from ml import storage
from ml.fsutil import dumps_json, utc_now
from ml.registry import _fs, journal, runs
from ml.registry.errors import AlreadyExistsError, IntegrityError, InvalidRunError
from ml.registry.layout import (
    FORMAT_VERSION,
    MANIFEST,
    METADATA,
    MODEL_FILE,
    PRODUCTION,
    RUN_ARTIFACTS,
    STAGING,
    validate_name,
)
from ml.registry.objectstore import (
    Keys,
    cas_update,
    dumps,
    loads,
    numbers,
    read_current,
    read_index,
    read_json,
    require_version,
)
from ml.registry.provenance import build_metadata, default_user, source_key
from ml.storage.store import ObjectStore, Version
from ml.training.run_dir import CONFIG_YAML, MODEL_BEST

ExtraFiles = Any  # the same mapping or callable as publish.ExtraFiles


def register(
    store: ObjectStore,
    run_dir: str | os.PathLike[str],
    name: str,
    *,
    dag_id: str | None,
    run_id: str | None,
    force: bool,
    created_by: str | None,
    extra_files: ExtraFiles | None,
) -> tuple[str, bool]:
    """Register the run as staging ``vN``: ``(version, created)``."""
    from ml.registry import publish  # extra-file checks shared with the local backend

    validate_name(name)
    if extra_files is not None and not callable(extra_files):
        publish.check_extra_files(extra_files)
    keys = Keys(store)
    run = runs.read_run(run_dir)
    with tempfile.TemporaryDirectory(prefix="ctr-register-") as tmp_name:
        tmp = Path(tmp_name)
        pairs = [(run.path / src, tmp / dst) for src, dst in RUN_ARTIFACTS.items()]
        try:
            digests = _fs.copy_many_hashed(pairs)
        except _fs.SourceChangedError as exc:
            raise InvalidRunError(str(exc)) from exc
        files = {
            dst.name: {"sha256": d, "size": s}
            for (_, dst), (d, s) in zip(pairs, digests, strict=True)
        }
        runs.check_checkpoint(tmp / MODEL_FILE, run.path / MODEL_BEST)
        metadata = build_metadata(
            name=name,
            created_by=created_by or default_user(),
            run_dir=str(run.path),
            model_sha256=str(files[MODEL_FILE]["sha256"]),
            dag_id=dag_id,
            run_id=run_id,
            run_info=run.run_info,
            metrics=run.metrics,
            config=run.config,
            config_sha256=str(files[CONFIG_YAML]["sha256"]),
        )
        key = source_key(str(run.path), str(files[MODEL_FILE]["sha256"]))
        index = read_index(store, keys, name)
        existing = index["sources"].get(key)
        if existing is not None and not force and existing in numbers(index, STAGING):
            return f"v{existing}", False
        number = _claim(store, keys, name, index, key, force, metadata["created_by"])
        version = f"v{number}"
        if store.head(keys.version(STAGING, name, version, MANIFEST)) is None:
            metadata = {**metadata, "version": version, "created_at": utc_now()}
            _upload(store, keys, name, version, tmp, files, metadata, extra_files)
        _publish(store, keys, name, number, key, bool(force))
        return version, True


def _claim(
    store: ObjectStore,
    keys: Keys,
    name: str,
    index: dict[str, Any],
    key: str,
    force: bool,
    by: str,
) -> int:
    """Our own unfinished claim from an earlier try, or a new number (If-None-Match)."""
    last = int(index["last_claim"])
    above = store.list_objects(keys.meta(name, "claims") + "/", start_after=keys.claim(name, last))
    highest = last
    for obj in above:
        n = int(obj.key.rsplit("/", 1)[-1])
        highest = max(highest, n)
        found = read_json(store, keys.claim(name, n))
        mine = not force and found is not None and found[0].get("source_key") == key
        if mine and n not in numbers(index, STAGING):
            return n
    claim = dumps({"source_key": key, "by": by, "at": utc_now(), "forced": force})
    number = highest + 1
    while True:
        try:
            store.put_if_absent(keys.claim(name, number), claim)
            return number
        except storage.ConditionFailedError:
            number += 1


def _upload(
    store: ObjectStore,
    keys: Keys,
    name: str,
    version: str,
    tmp: Path,
    files: dict[str, dict[str, Any]],
    metadata: dict[str, Any],
    extra_files: ExtraFiles | None,
) -> None:
    """The files, the metadata, then the manifest (created only if absent)."""
    from ml.registry import publish

    files = dict(files)
    if extra_files is not None:
        files.update(publish._write_extra_files(tmp, extra_files, version, 0o644))
    meta_bytes = dumps_json(metadata).encode()
    (tmp / METADATA).write_bytes(meta_bytes)
    files[METADATA] = _fs_digest(tmp / METADATA)
    for fname in sorted(files):
        store.upload_file(keys.version(STAGING, name, version, fname), tmp / fname)
    manifest = {
        "format_version": FORMAT_VERSION,
        "name": name,
        "version": version,
        "created_at": metadata["created_at"],
        "files": dict(sorted(files.items())),
    }
    # a concurrent try of the same run may have finished first: its manifest stands
    with suppress(storage.ConditionFailedError):
        store.put_if_absent(
            keys.version(STAGING, name, version, MANIFEST), dumps_json(manifest).encode()
        )


def _fs_digest(path: Path) -> dict[str, Any]:
    from ml.fsutil import sha256_file

    digest, size = sha256_file(path)
    return {"sha256": digest, "size": size}


def _publish(
    store: ObjectStore, keys: Keys, name: str, number: int, key: str, forced: bool
) -> None:
    """The register event, then the index: the version becomes visible."""
    version = f"v{number}"
    found = read_json(store, keys.version(STAGING, name, version, METADATA))
    meta = found[0] if found is not None else {}
    src = meta.get("source", {}) if isinstance(meta, dict) else {}
    event = {
        "at": meta.get("created_at") or utc_now(),
        "name": name,
        "event": "register",
        "stage": STAGING,
        "version": version,
        "by": meta.get("created_by"),
        "source": src.get("run_dir"),
        "dag_id": src.get("dag_id"),
        "run_id": src.get("run_id"),
        "forced": forced,
        "op": journal.new_op_id(),
    }
    if store.head(keys.registered(name, number)) is None:
        store.put(keys.registered(name, number), dumps(event))

    def add(index: Any) -> Any:
        index = {**read_default(index)}
        staged = numbers(index, STAGING)
        if number in staged and index["sources"].get(key) is not None:
            return None
        index[STAGING] = sorted({*staged, number})
        index["last_claim"] = max(int(index["last_claim"]), number)
        index["sources"] = {**index["sources"], key: number}
        return index

    cas_update(store, keys.meta(name, "index.json"), add)


def read_default(index: Any) -> dict[str, Any]:
    from ml.registry.objectstore import empty_index

    out = empty_index()
    if isinstance(index, dict):
        out.update(index)
    return out


# --- production -----------------------------------------------------------------------------


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
        with suppress(storage.ConditionFailedError):
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
    make_event: Callable[[str | None, int], dict[str, Any] | None],
    retry_of: Callable[[dict[str, Any]], bool] | None = None,
) -> tuple[dict[str, Any] | None, str | None]:
    """Write production event k, then swap the pointer from seq k-1 to k.

    ``make_event(current version, seq of current)`` returns the event to record, or None
    for no change. When the last event was applied by a helper (its writer died) and
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
        version, seq = (str(cur["version"]), int(cur["seq"])) if cur else (None, 0)
        event = make_event(version, seq)
        if event is None:
            return None, version
        record = {"at": utc_now(), "name": name, "seq": seq + 1, **event}
        try:
            store.put_if_absent(keys.event(name, seq + 1), dumps(record))
        except storage.ConditionFailedError:
            time.sleep(random.uniform(0, min(0.02 * (attempt + 1), 0.3)))
            continue  # another writer took seq k: apply theirs, then try at k+1
        if not _apply(store, keys, name, record, cur, token, recovered=False):
            _acknowledge(store, keys, name, seq + 1)  # a helper applied it for us
        return record, version
    raise storage.StorageUnavailableError(
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
    listed = numbers(base, PRODUCTION) if base else []
    pointer = {
        "version": event["to"],
        "seq": event["seq"],
        "at": event.get("at"),
        PRODUCTION: sorted({*listed, int(str(event["to"])[1:])}),
    }
    data = dumps({**pointer, "recovered": recovered})
    try:
        if token is None:
            store.put_if_absent(keys.current(name), data)
        else:
            store.put_if_match(keys.current(name), data, token)
    except storage.ConditionFailedError:
        return False
    return True


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
