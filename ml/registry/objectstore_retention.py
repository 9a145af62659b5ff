"""Retention on an object store: ``gc(keep_last=N)`` (the local one is in cleanup.py).

The same rule as on disk: per model and stage, the versions beyond the newest ``N`` are
purged for good, never production's ``current``, its rollback target or a version
younger than a day (:data:`ml.registry.cleanup.RETENTION_MIN_AGE`); so are the objects
of versions deleted (soft) more than a day ago.

A purge is first a ``delete`` event with ``purged: true`` in the model's log, applied to
the pointer like any delete (:func:`ml.registry.objectstore_production.move_current`),
so the version leaves every listing at once and history equals state; then its objects
are deleted, ``MANIFEST.json`` first (a half-deleted version is never a whole one). A gc
that dies in between is finished by the next one: objects left under a purged version
are deleted whatever the event's age. The number is never handed out again.

A production copy is unlisted before its objects go; a promotion of that same old
version racing the purge (within the same second) is not guarded against: gc keeps
versions younger than a day and production's current and rollback target.
"""

from __future__ import annotations

import time
from typing import Any

from ml.registry import cleanup
from ml.registry import objectstore_production as prod
from ml.registry.cleanup import GcReport
from ml.registry.layout import MANIFEST, PRODUCTION, STAGES
from ml.registry.objectstore import Keys, model_names, published, read_current, read_json
from ml.registry.objectstore_manage import _seconds
from ml.registry.provenance import default_user
from ml.storage.store import ObjectStore


def retain(store: ObjectStore, keys: Keys, keep_last: int, report: GcReport) -> None:
    """Purge (or, with ``report.dry_run``, list) what ``keep_last`` lets go, into ``report``."""
    cutoff = time.time() - cleanup.RETENTION_MIN_AGE
    for name in model_names(store):
        current = _current(store, keys, name)
        protected = {current, _rollback_target(store, keys, name, current)} - {None}
        for stage in STAGES:
            nums = published(store, keys, name, stage)
            for n in nums[: max(0, len(nums) - keep_last)]:
                version, url = f"v{n}", keys.url(stage, name, f"v{n}")
                if version in protected:
                    report.kept.append(f"{url} (production's current or rollback target)")
                elif _created(store, keys, name, n) > cutoff:
                    report.kept.append(f"{url} (younger than a day)")
                elif report.dry_run or _purge(store, keys, name, stage, version, keep_last):
                    report.purged.append(url)
        _purge_deleted(store, keys, name, cutoff, report)


def _current(store: ObjectStore, keys: Keys, name: str) -> str | None:
    cur = read_current(store, keys, name)
    return str(cur[0]["version"]) if cur and cur[0].get("version") else None


def _rollback_target(store: ObjectStore, keys: Keys, name: str, current: str | None) -> str | None:
    if current is None:
        return None
    events = prod.production_events(store, keys, name)
    return prod.rollback_target(events, current, set(published(store, keys, name, PRODUCTION)))


def _created(store: ObjectStore, keys: Keys, name: str, n: int) -> float:
    """When vN was registered (its register event's facts); 0 when unknown: old enough."""
    found = read_json(store, keys.registered(name, n))
    facts = found[0].get("facts", {}) if found and isinstance(found[0], dict) else {}
    return _seconds(facts.get("created_at") if isinstance(facts, dict) else None)


def _purge(
    store: ObjectStore, keys: Keys, name: str, stage: str, version: str, keep_last: int
) -> bool:
    """The purge event, then the objects; False when the version became current meanwhile."""
    n = int(version[1:])

    def event(current: str | None, seq: int, _: dict[str, Any]) -> dict[str, Any] | None:
        if current == version or n not in published(store, keys, name, stage):
            return None  # promoted meanwhile (keep it), or already purged (a retry)
        return {
            "event": "delete",
            "stage": stage,
            "version": version,
            "purged": True,
            "was_current": False,
            "reason": f"retention: keep the last {keep_last}",
            "by": default_user(),
        }

    def mine(done: dict[str, Any]) -> bool:
        same = (done.get("event"), done.get("stage"), done.get("version"), done.get("purged"))
        return same == ("delete", stage, version, True)

    prod.move_current(store, keys, name, event, mine)
    if n in published(store, keys, name, stage):
        return False
    _remove(store, keys.version(stage, name, version) + "/")
    return True


def _purge_deleted(
    store: ObjectStore, keys: Keys, name: str, cutoff: float, report: GcReport
) -> None:
    """The objects of versions deleted before ``cutoff`` (or purged by a gc that died)."""
    seen = set(report.purged)
    for ev in prod.production_events(store, keys, name):
        stage, version = ev.get("stage"), str(ev.get("version"))
        if ev.get("event") != "delete" or stage not in STAGES:
            continue
        if not ev.get("purged") and _seconds(ev.get("at")) > cutoff:
            continue
        url = keys.url(str(stage), name, version)
        if url in seen or int(version[1:]) in published(store, keys, name, str(stage)):
            continue  # listed again (promoted after its production delete)
        prefix = keys.version(str(stage), name, version) + "/"
        if not store.list_objects(prefix):
            continue
        seen.add(url)
        report.purged.append(url)
        if not report.dry_run:
            _remove(store, prefix)


def _remove(store: ObjectStore, prefix: str) -> None:
    """Delete every object below ``prefix``, the manifest first."""
    keys = [o.key for o in store.list_objects(prefix)]
    manifest = [k for k in keys if k == prefix + MANIFEST]
    store.delete(manifest)
    store.delete([k for k in keys if k not in manifest])
