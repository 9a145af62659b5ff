"""Production: a verified copy of a staging version, ``current`` pointing at it, rollback.

``promote`` copies staging ``vN`` into ``production/<name>/.tmp-<id>/`` while checking
every file against the manifest (the same rule as ``verify``: no missing, changed,
unlisted or linked file), without the model's lock; under the lock it renames the copy
to ``production/<name>/vN`` and points ``current`` at it. ``rollback`` points
``current`` back at the version below it on the stack the history implies;
``set_canary`` writes the canary setting beside it (:mod:`ml.registry.canary`). The intent,
the point of no return (the swap of ``current``) and recovery are described in
:mod:`ml.registry.recovery`.
"""

from __future__ import annotations

import os
from contextlib import suppress
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ml.errors import (
    AlreadyExistsError,
    IntegrityError,
    ModelNotFoundError,
    NoPreviousVersionError,
    RetryableError,
    VersionInUseError,
)
from ml.fsutil import fsync_dir, utc_now
from ml.registry import _fs, canary, catalog, integrity, journal, recovery
from ml.registry._lock import WriterLock
from ml.registry.layout import (
    MANIFEST,
    MODEL_FILE,
    PRODUCTION,
    STAGING,
    WRITERS,
    Layout,
    validate_name,
    validate_version,
)
from ml.registry.oserrors import os_errors


@dataclass(frozen=True)
class Promotion:
    """Where ``production/<name>/current`` points after a promotion or rollback."""

    name: str
    version: str
    previous: str | None
    path: Path
    changed: bool

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "path": str(self.path)}


def promote(
    layout: Layout, name: str, version: str, *, lock_timeout: float, audit: journal.Audit
) -> Promotion:
    """See :meth:`ml.registry.model_registry.ModelRegistry.promote_to_production`."""
    validate_name(name)
    validate_version(version)
    src = layout.require_version(STAGING, name, version)
    manifest_bytes = _fs.read_regular(src / MANIFEST)
    prod_dir = layout.model_dir(PRODUCTION, name)
    with os_errors(f"preparing {layout.display(prod_dir)}", prod_dir):
        layout.ensure_dir(prod_dir)
        layout.ensure_dir(layout.meta_dir(name) / WRITERS)
    try:
        return _promote_once(layout, name, version, src, manifest_bytes, lock_timeout, audit)
    except _CopyGone:  # recovery undid a dead promotion's copy after we looked: copy now
        return _promote_once(layout, name, version, src, manifest_bytes, lock_timeout, audit)


class _CopyGone(RetryableError):
    """The production copy seen before taking the lock was removed by recovery (internal:
    promote retries once at once; it never reaches a caller)."""


def _promote_once(
    layout: Layout,
    name: str,
    version: str,
    src: Path,
    manifest_bytes: bytes,
    lock_timeout: float,
    audit: journal.Audit,
) -> Promotion:
    prod_dir = layout.model_dir(PRODUCTION, name)
    tmp: Path | None = None
    writer: WriterLock | None = None
    try:
        if not layout.has_manifest(PRODUCTION, name, version):
            tmp = layout.new_tmp(PRODUCTION, name)
            writer = WriterLock(layout.writer_lock(name, tmp))
            with os_errors("copying the version to production", tmp):
                writer.acquire()
                os.mkdir(tmp, 0o755)
                _copy_verified(layout, name, version, src, tmp)
                _fs.write_file(tmp / MANIFEST, manifest_bytes)
                fsync_dir(tmp)
        with recovery.writing(layout, name, lock_timeout) as session:
            done = session.take(recovery.PROMOTE, version=version)
            if done is not None:
                return Promotion(name, version, done["from"], prod_dir / version, True)
            with os_errors("promoting", prod_dir):
                return _promote_locked(session, version, tmp, manifest_bytes, audit)
    finally:
        with suppress(OSError):  # best effort: gc removes a dead writer's leftovers
            if tmp is not None and os.path.lexists(tmp):
                _fs.remove_tree(tmp)
        if writer is not None:
            with suppress(OSError):
                writer.release()


def _copy_verified(layout: Layout, name: str, version: str, src: Path, dst: Path) -> None:
    problems, _, files = integrity.check_version_dir(src, copy_to=dst)
    if not problems and MODEL_FILE not in files:
        problems.append(f"{MANIFEST}: lists no {MODEL_FILE}")
    if problems:
        raise IntegrityError(
            f"Model {name!r} version {version} under {layout.display(src.parent.parent)} "
            f"failed verification: {'; '.join(problems)}. Re-register the run or restore "
            "the files before promoting",
            problems,
        )


def _promote_locked(
    session: recovery.Session,
    version: str,
    tmp: Path | None,
    manifest_bytes: bytes,
    audit: journal.Audit,
) -> Promotion:
    layout, name = session.layout, session.name
    prod_dir = layout.model_dir(PRODUCTION, name)
    dst = prod_dir / version
    copied = not layout.has_manifest(PRODUCTION, name, version)
    if copied:
        if tmp is None:
            raise _CopyGone(dst)
        if os.path.lexists(dst):
            raise IntegrityError(
                f"{layout.display(dst)} exists but is incomplete (no {MANIFEST}); move it "
                f"away or run `ctr-pipeline registry gc --min-age 0`, then promote again"
            )
    else:
        if _fs.read_regular(dst / MANIFEST) != manifest_bytes:
            raise AlreadyExistsError(
                f"{layout.display(dst)} already exists with different files than staging "
                f"{version}; delete the production copy (`ctr-pipeline registry delete "
                f"{name} {version} --stage production`) and promote again"
            )
        integrity.verify(layout, name, version, PRODUCTION, raise_on_error=True)
    previous = catalog.current_version(layout, name)
    if previous == version and not copied:
        return Promotion(name, version, previous, dst, False)
    intent = session.begin(
        recovery.PROMOTE,
        {"event": "promote", "from": previous, "to": version, **audit.fields()},
        version=version,
        to=version,
        copied=copied,
        **{"from": previous},
    )
    if copied and tmp is not None:
        os.rename(tmp, dst)
        fsync_dir(prod_dir)
    recovery.set_current(layout, name, version)  # the point of no return
    session.commit(intent)
    return Promotion(name, version, previous, dst, True)


def rollback(layout: Layout, name: str, *, lock_timeout: float, audit: journal.Audit) -> Promotion:
    """See :meth:`ml.registry.model_registry.ModelRegistry.rollback`."""
    validate_name(name)
    prod_dir = layout.model_dir(PRODUCTION, name)
    if not _fs.is_real_dir(prod_dir):  # nothing to lock: leave no lock file behind
        if not _fs.is_real_dir(layout.model_dir(STAGING, name)):
            raise ModelNotFoundError(
                f"Model {name!r} not found under {layout.display(layout.base_dir)}; check "
                "the name with `ctr-pipeline registry list`"
            )
        raise NoPreviousVersionError(
            f"Model {name!r} has no current production version to roll back from "
            f"(no {layout.display(prod_dir)}); promote one with "
            f"`ctr-pipeline registry promote {name} vN`"
        )
    with recovery.writing(layout, name, lock_timeout) as session:
        done = session.take(recovery.ROLLBACK)
        if done is not None and catalog.current_version(layout, name) == done["to"]:
            return Promotion(name, done["to"], done["from"], prod_dir / done["to"], True)
        with os_errors("rolling back", prod_dir):
            return _rollback_locked(session, audit)


def rollback_target(layout: Layout, name: str, current: str) -> str | None:
    """The version a rollback from ``current`` goes to, or None.

    Promotions push, rollbacks pop, and versions since deleted from production are
    skipped (see :func:`ml.registry.journal.production_stack`).
    """
    stack = journal.production_stack(journal.read(layout, name))
    if not stack or stack[-1] != current:
        stack.append(current)  # current was changed outside the registry
    stack.pop()
    while stack and (stack[-1] == current or not layout.has_manifest(PRODUCTION, name, stack[-1])):
        stack.pop()
    return stack[-1] if stack else None


def _rollback_locked(session: recovery.Session, audit: journal.Audit) -> Promotion:
    layout, name = session.layout, session.name
    prod_dir = layout.model_dir(PRODUCTION, name)
    current = catalog.current_version(layout, name)
    if current is None:
        raise NoPreviousVersionError(
            f"Model {name!r} has no current production version to roll back from; "
            f"promote one with `ctr-pipeline registry promote {name} vN`"
        )
    target = rollback_target(layout, name, current)
    if target is None:
        raise NoPreviousVersionError(
            f"Model {name!r} has no production version before {current} under "
            f"{layout.display(prod_dir)} to roll back to; "
            f"promote a version instead (`ctr-pipeline registry promote {name} vN`)"
        )
    event = {"event": "rollback", "from": current, "to": target, **audit.fields()}
    intent = session.begin(recovery.ROLLBACK, event, to=target, **{"from": current})
    recovery.set_current(layout, name, target)  # the point of no return
    session.commit(intent)
    return Promotion(name, target, current, prod_dir / target, True)


def set_canary(
    layout: Layout,
    name: str,
    version: str | None,
    traffic: float,
    *,
    lock_timeout: float,
    audit: journal.Audit,
) -> dict[str, Any] | None:
    """Set (``version``) or clear (None) the canary (see :mod:`ml.registry.canary`);
    returns the new setting."""
    validate_name(name)
    if version is not None:
        validate_version(version)
        traffic = canary.check_traffic(traffic)
        if not layout.has_manifest(PRODUCTION, name, version):
            layout.require_version(STAGING, name, version)
    prod_dir = layout.model_dir(PRODUCTION, name)
    with os_errors(f"setting the canary of {name!r}", prod_dir):
        layout.ensure_dir(prod_dir)
        with recovery.writing(layout, name, lock_timeout) as session:
            done = session.take(canary.KIND, to=version)
            if done is not None:
                return canary.read(layout, name)
            return _set_canary_locked(session, version, traffic, audit)


def _set_canary_locked(
    session: recovery.Session, version: str | None, traffic: float, audit: journal.Audit
) -> dict[str, Any] | None:
    layout, name = session.layout, session.name
    old = canary.read(layout, name)
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
    event = {"event": canary.KIND, "version": version, "traffic": traffic if version else 0.0}
    event.update({"from": old.get("version") if old else None, **fields})
    intent = session.begin(canary.KIND, event, to=version)
    record = None
    if version is not None:
        record = {"version": version, "traffic": traffic, "since": utc_now(), **fields}
        record["op"] = intent["op"]
    canary.write(layout, name, record, intent["op"])  # the point of no return
    session.commit(intent)
    return record
