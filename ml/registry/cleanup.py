"""Removing things: ``delete`` (soft, into ``.archive/``), ``gc`` of crash leftovers, retention.

- ``delete`` renames a version into ``.archive/`` (its number is never reused).
- ``gc`` removes what dead writers left: a ``.tmp-<id>`` directory only when nobody
  holds its writer lock (``_lock.WriterLock``: liveness never depends on timing), stray
  ``.current-*`` links and bookkeeping temp files (only ever made under the model's lock,
  which gc holds), and moves a ``vN`` directory without a manifest (never made by the
  registry) into ``.archive/``.
- Retention (``gc(keep_last=N)``) purges for good the versions beyond the newest ``N`` of
  each stage, never production's ``current``, its rollback target or a version younger
  than a day, and archived versions older than a day.

Deletes and purges go through the intent/commit protocol of :mod:`ml.registry.recovery`
(the rename into ``.archive/`` or ``.tmp-<id>`` is the point of no return).
"""

from __future__ import annotations

import os
import re
import time
import uuid
from contextlib import AbstractContextManager, nullcontext, suppress
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ml.errors import VersionInUseError
from ml.fsutil import fsync_dir
from ml.registry import _fs, catalog, index, journal, recovery
from ml.registry._lock import probe_lock, remove_if_free
from ml.registry.layout import (
    ARCHIVE,
    LEGACY_WRITER_LOCK,
    LINK_PREFIX,
    MANIFEST,
    PRODUCTION,
    STAGES,
    TMP_PREFIX,
    WRITERS,
    Layout,
    is_model_name,
    validate_name,
    validate_stage,
    validate_version,
    version_number,
)
from ml.registry.oserrors import os_errors
from ml.registry.production import rollback_target
from ml.registry.provenance import default_user
from ml.registry.publish import next_number

#: gc leaves crash leftovers younger than this alone (seconds) unless told otherwise.
DEFAULT_GC_MIN_AGE = 900.0
#: retention never purges a version (or an archived one) younger than this (seconds).
RETENTION_MIN_AGE = 86_400.0
_STAMP = "%Y%m%dT%H%M%SZ"


@dataclass(frozen=True)
class GcReport:
    """What :meth:`ModelRegistry.gc` removed, archived, purged (or would) and what it left."""

    removed: list[str]
    archived: list[str]
    kept: list[str]
    dry_run: bool
    purged: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def delete(
    layout: Layout,
    name: str,
    version: str,
    stage: str,
    *,
    lock_timeout: float,
    force: bool = False,
    audit: journal.Audit,
) -> Path:
    """See :meth:`ml.registry.model_registry.ModelRegistry.delete`."""
    validate_stage(stage)
    validate_name(name)
    validate_version(version)
    model_dir = layout.model_dir(stage, name)
    if not layout.has_manifest(stage, name, version) and not journal.has_intent(layout, name):
        layout.require_version(stage, name, version)  # raises before any lock file exists
    with recovery.writing(layout, name, lock_timeout) as session:
        done = session.take(recovery.DELETE, stage=stage, version=version)
        if done is not None:
            return model_dir / str(done["dest"])
        vdir = layout.require_version(stage, name, version)
        was_current = stage == PRODUCTION and catalog.current_version(layout, name) == version
        if was_current and not force:
            raise VersionInUseError(
                f"Model {name!r} version {version} is production's current version "
                f"({layout.display(model_dir / 'current')} -> {version}); promote or "
                "roll back to another version first, or pass --force to delete it "
                "and leave no current version"
            )
        archive = model_dir / ARCHIVE
        dest = archive / f"{version}.{_stamp()}-{uuid.uuid4().hex[:8]}"
        event = {
            "event": "delete",
            "stage": stage,
            "version": version,
            "archived_to": str(dest),
            "was_current": was_current,
            **audit.fields(),
        }
        with os_errors(f"deleting {layout.display(vdir)}", vdir):
            layout.ensure_dir(archive)
            intent = session.begin(
                recovery.DELETE,
                event,
                stage=stage,
                version=version,
                dest=f"{ARCHIVE}/{dest.name}",
                was_current=was_current,
            )
            if was_current:
                recovery.set_current(layout, name, None)
            os.rename(vdir, dest)  # the point of no return
            fsync_dir(model_dir)
            fsync_dir(archive)
            session.commit(intent)
        return dest


def _stamp() -> str:
    return datetime.now(timezone.utc).strftime(_STAMP)


def gc(
    layout: Layout,
    *,
    lock_timeout: float,
    min_age: float = DEFAULT_GC_MIN_AGE,
    dry_run: bool = False,
    keep_last: int | None = None,
) -> GcReport:
    """See :meth:`ml.registry.model_registry.ModelRegistry.gc`."""
    report = GcReport([], [], [], dry_run)
    names = set(layout.model_names(STAGES[0])) | set(layout.model_names(STAGES[1]))
    meta_root = layout.base_dir / ".registry"
    if _fs.is_real_dir(meta_root):
        names.update(e.name for e in os.scandir(meta_root) if is_model_name(e.name))
    for name in sorted(names):
        ctx: AbstractContextManager[Any] = (
            nullcontext() if dry_run else recovery.writing(layout, name, lock_timeout)
        )
        with ctx as session:
            _clean_model(layout, name, min_age, report)
            if keep_last is not None:
                _retain(layout, session, name, keep_last, report)
    return report


def _age(path: Path) -> float:
    return time.time() - os.lstat(path).st_mtime


def _clean_model(layout: Layout, name: str, min_age: float, report: GcReport) -> None:
    for stage in STAGES:
        model_dir = layout.model_dir(stage, name)
        if not _fs.is_real_dir(model_dir):
            continue
        for entry in sorted(os.scandir(model_dir), key=lambda e: e.name):
            # A promotion or register removes or renames its own .tmp-<id> at any moment
            # (outside the lock gc holds): an entry gone since the listing is not an error.
            with suppress(FileNotFoundError):
                _clean_entry(layout, name, stage, entry.name, min_age, report)
    _clean_meta(layout, name, report)


def _clean_entry(
    layout: Layout, name: str, stage: str, entry: str, min_age: float, report: GcReport
) -> None:
    model_dir = layout.model_dir(stage, name)
    path = model_dir / entry
    temporary = entry.startswith((TMP_PREFIX, LINK_PREFIX))
    n = version_number(entry)
    if not temporary and (n is None or layout.has_manifest(stage, name, entry)):
        return
    age = _age(path)
    if age < min_age:
        report.kept.append(f"{layout.display(path)} (only {age:.0f} s old)")
    elif entry.startswith(TMP_PREFIX) and _writer_alive(layout, name, path):
        report.kept.append(f"{layout.display(path)} (a live writer holds it)")
    elif temporary:
        if not report.dry_run:
            _fs.remove_tree(path)
            if entry.startswith(TMP_PREFIX):
                remove_if_free(layout.writer_lock(name, path))
        report.removed.append(layout.display(path))
    else:
        if not report.dry_run:
            layout.ensure_dir(model_dir / ARCHIVE)
            os.rename(path, model_dir / ARCHIVE / f"{entry}.incomplete-{_stamp()}")
        report.archived.append(layout.display(path))


def _writer_alive(layout: Layout, name: str, tmp: Path) -> bool:
    """The writer lock of ``tmp`` is held (or, from older code, the lock file inside it)."""
    return "held" in (
        probe_lock(layout.writer_lock(name, tmp)),
        probe_lock(tmp / LEGACY_WRITER_LOCK),
    )


def _clean_meta(layout: Layout, name: str, report: GcReport) -> None:
    """Temp files of atomic writes, and writer locks whose directory is gone."""
    meta = layout.meta_dir(name)
    if not _fs.is_real_dir(meta):
        return
    for entry in os.scandir(meta):
        if entry.name.startswith(".") and ".tmp" in entry.name and entry.is_file():
            if not report.dry_run:
                with suppress(FileNotFoundError):
                    os.unlink(entry.path)
            report.removed.append(layout.display(entry.path))
    writers = meta / WRITERS
    if _fs.is_real_dir(writers) and not report.dry_run:
        tmp_names = {
            e.name
            for s in STAGES
            if _fs.is_real_dir(layout.model_dir(s, name))
            for e in os.scandir(layout.model_dir(s, name))
        }
        for entry in os.scandir(writers):
            if f"{TMP_PREFIX}{entry.name}" not in tmp_names:
                remove_if_free(Path(entry.path))  # held: a writer about to mkdir


def _retain(
    layout: Layout, session: recovery.Session | None, name: str, keep_last: int, report: GcReport
) -> None:
    """Purge versions beyond the newest ``keep_last`` per stage (``session``: None = dry run)."""
    current = catalog.current_version(layout, name)
    protected = {current, rollback_target(layout, name, current)} if current else set()
    cutoff = time.time() - RETENTION_MIN_AGE
    if session is not None:
        index.raise_last_version(layout, name, next_number(layout, name) - 1, durable=True)
    for stage in STAGES:
        nums = catalog.visible_numbers(layout, stage, name)
        old = nums[: max(0, len(nums) - keep_last)]
        facts = index.entries(layout, name, set(old))
        for n in old:
            vdir = layout.version_dir(stage, name, f"v{n}")
            if f"v{n}" in protected:
                report.kept.append(
                    f"{layout.display(vdir)} (production's current or rollback target)"
                )
            elif _created(facts.get(n), vdir) > cutoff:
                report.kept.append(f"{layout.display(vdir)} (younger than a day)")
            else:
                report.purged.append(layout.display(vdir))
                if session is not None:
                    _purge(session, stage, f"v{n}", keep_last)
        _purge_archive(layout, stage, name, cutoff, report)


def _created(fact: dict[str, Any] | None, vdir: Path) -> float:
    stamp = (fact or {}).get("created_at")
    if isinstance(stamp, str):
        try:
            return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    return os.lstat(vdir / MANIFEST).st_mtime


def _purge(session: recovery.Session, stage: str, version: str, keep_last: int) -> None:
    layout, name = session.layout, session.name
    vdir = layout.version_dir(stage, name, version)
    trash = layout.new_tmp(stage, name)
    event = {
        "event": "delete",
        "stage": stage,
        "version": version,
        "purged": True,
        "was_current": False,
        "reason": f"retention: keep the last {keep_last}",
        "by": default_user(),
    }
    intent = session.begin(recovery.DELETE, event, stage=stage, version=version, dest=trash.name)
    os.rename(vdir, trash)  # the point of no return
    fsync_dir(vdir.parent)
    session.commit(intent)
    _fs.remove_tree(trash)


def _archived_at(entry_name: str, path: Path) -> float:
    """When a version was archived: the stamp in its name, else the entry's mtime."""
    m = re.search(r"(\d{8}T\d{6}Z)", entry_name)
    if m:
        with suppress(ValueError):
            stamp = datetime.strptime(m.group(1), _STAMP).replace(tzinfo=timezone.utc)
            return stamp.timestamp()
    return os.lstat(path).st_mtime


def _purge_archive(layout: Layout, stage: str, name: str, cutoff: float, report: GcReport) -> None:
    archive = layout.model_dir(stage, name) / ARCHIVE
    if not _fs.is_real_dir(archive):
        return
    for entry in sorted(os.scandir(archive), key=lambda e: e.name):
        if _archived_at(entry.name, Path(entry.path)) > cutoff:
            continue
        report.purged.append(layout.display(entry.path))
        if not report.dry_run:
            _fs.remove_tree(Path(entry.path))
