"""Managing versions on an object store: ``delete``, ``versions`` and ``find_version``.

``delete`` is an event in the model's log (``.registry/<name>/history/<k>``), applied to
the pointer object like a promotion (see :mod:`ml.registry.objectstore_production`): a
production delete unlists the version there (and clears ``current`` when it pointed at
it, with ``force``); a staging delete adds the number to the pointer's ``deleted`` list,
which hides it from the index. The objects stay where they are (soft delete, as the
local ``.archive/``), and the number is never handed out again.

``versions`` reads the facts each register event carries; ``find_version`` narrows by
the index's lineage keys and confirms with the candidate's ``metadata.json``. ``gc``
removes what registrations that never finished left (see :func:`gc`); ``local_copy``
gives ``path_of`` a verified local directory.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from contextlib import suppress
from datetime import datetime
from pathlib import Path
from typing import Any

from ml import paths
from ml.errors import IntegrityError, VersionInUseError, VersionNotFoundError
from ml.registry import objectstore_production as prod
from ml.registry.cleanup import GcReport
from ml.registry.journal import Audit
from ml.registry.layout import (
    MANIFEST,
    METADATA,
    PRODUCTION,
    STAGES,
    STAGING,
    validate_name,
    validate_stage,
    validate_version,
)
from ml.registry.objectstore import (
    ABANDONED,
    INDEX_KEY,
    Keys,
    cas_update,
    model_names,
    numbers,
    published,
    read_current,
    read_index,
    read_json,
    require_version,
    verify_files,
)
from ml.registry.provenance import lineage_digests
from ml.storage.store import ObjectStore

#: local copies of object-store versions, under the base directory
CACHE = ".cache/registry"


def delete(
    store: ObjectStore,
    keys: Keys,
    name: str,
    version: str,
    stage: str,
    *,
    force: bool,
    audit: Audit,
) -> str:
    """Soft-delete ``version`` of ``stage``: the URL where its objects stay."""
    validate_name(name)
    validate_version(version)
    validate_stage(stage)
    fields = audit.fields()

    def mine(done: dict[str, Any]) -> bool:
        same = (done.get("event"), done.get("stage"), done.get("version"))
        return same == ("delete", stage, version)

    def event(current: str | None, seq: int, _: dict[str, Any]) -> dict[str, Any] | None:
        if int(version[1:]) not in published(store, keys, name, stage):
            require_version(store, keys, name, version, stage)  # the not-found error
            raise VersionNotFoundError(f"Model {name!r} version {version} was just deleted")
        was_current = stage == PRODUCTION and current == version
        if was_current and not force:
            raise VersionInUseError(
                f"Model {name!r} version {version} is production's current version "
                f"({store.show(keys.current(name))} -> {version}); promote or roll back to "
                "another version first, or pass --force to delete it and leave no current "
                "version"
            )
        return {
            "event": "delete",
            "stage": stage,
            "version": version,
            "was_current": was_current,
            **fields,
        }

    require_version(store, keys, name, version, stage)
    prod.move_current(store, keys, name, event, mine)
    return keys.url(stage, name, version)


def versions(
    store: ObjectStore, keys: Keys, name: str, *, last: int | None = None
) -> list[dict[str, Any]]:
    """One record per visible version (either stage), oldest first (see the local
    ``catalog.version_records``)."""
    validate_name(name)
    by_stage = {s: set(published(store, keys, name, s)) for s in STAGES}
    numbers = sorted(by_stage[STAGING] | by_stage[PRODUCTION])
    if last is not None:
        numbers = numbers[-last:] if last > 0 else []
    cur = read_current(store, keys, name)
    current = cur[0].get("version") if cur else None
    records = []
    for n in numbers:
        found = read_json(store, keys.registered(name, n))
        facts = found[0].get("facts", {}) if found and isinstance(found[0], dict) else {}
        records.append(
            {
                "version": f"v{n}",
                "stages": [s for s in STAGES if n in by_stage[s]],
                "current": current == f"v{n}",
                **{k: facts.get(k) for k in ("created_at", "test_auc", "test_logloss")},
                **{k: facts.get(k) for k in ("dag_id", "run_id", "run_dir")},
            }
        )
    return records


def find_version(
    store: ObjectStore,
    keys: Keys,
    name: str,
    *,
    data_digest: str,
    config_digest: str,
    code_digest: str,
) -> str | None:
    """The newest visible version trained on this data, config and code, or None."""
    validate_name(name)
    wanted = (data_digest, config_digest, code_digest)
    if not all(isinstance(d, str) and d for d in wanted):
        return None
    key = hashlib.sha256("\0".join(wanted).encode()).hexdigest()[:16]
    lineage = read_index(store, keys, name).get("lineage", {})
    visible = set(published(store, keys, name, STAGING)) | set(
        published(store, keys, name, PRODUCTION)
    )
    candidates = sorted((int(n) for n, k in lineage.items() if k == key), reverse=True)
    for n in candidates:
        if n not in visible:
            continue
        found = read_json(store, keys.version(STAGING, name, f"v{n}", METADATA))
        meta = found[0] if found is not None else None
        if isinstance(meta, dict) and lineage_digests(meta) == wanted:
            return f"v{n}"
    return None


def gc(store: ObjectStore, keys: Keys, *, min_age: float, dry_run: bool) -> GcReport:
    """Remove the objects of claims whose writer never published, older than ``min_age``.

    The number is first marked abandoned in the index (compare-and-swap, refused if the
    version got published meanwhile), so a writer that was only slow cannot publish it
    afterwards: its registration fails (retryable) and its retry takes a new number.
    Production copies that were never listed (a promotion that died before its event)
    are reported as kept.
    """
    removed: list[str] = []
    kept: list[str] = []
    now = time.time()
    for name in model_names(store):
        index = read_index(store, keys, name)
        done = set(numbers(index, STAGING)) | set(numbers(index, ABANDONED))
        for claim in store.list_objects(keys.meta(name, "claims") + "/"):
            n = int(claim.key.rsplit("/", 1)[-1])
            url = keys.url(STAGING, name, f"v{n}")
            if n in done:
                continue
            found = read_json(store, claim.key)
            at = found[0].get("at") if found and isinstance(found[0], dict) else None
            if now - _seconds(at) < min_age:
                kept.append(url)
                continue
            if not dry_run:
                if not _abandon(store, keys, name, n):
                    continue  # published meanwhile: nothing to clean
                prefix = keys.version(STAGING, name, f"v{n}") + "/"
                store.delete([o.key for o in store.list_objects(prefix)])
            removed.append(url)
    return GcReport(removed, [], kept, dry_run)


def _seconds(at: object) -> float:
    """Epoch seconds of a ``utc_now()`` stamp (0 when missing: old enough to clean)."""
    try:
        return datetime.fromisoformat(str(at).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def _abandon(store: ObjectStore, keys: Keys, name: str, n: int) -> bool:
    """Mark claim ``n`` abandoned unless it was published; True when it is abandoned."""

    def mark(index: Any) -> Any:
        from ml.registry.objectstore_write import read_default

        index = read_default(index)
        if n in numbers(index, STAGING) or n in numbers(index, ABANDONED):
            return None
        return {**index, ABANDONED: sorted({*numbers(index, ABANDONED), n})}

    final = cas_update(store, keys.meta(name, INDEX_KEY), mark)
    return isinstance(final, dict) and n in numbers(final, ABANDONED)


def cache_root(store: ObjectStore) -> Path:
    """``$CTR_PIPELINE_HOME/.cache/registry/<store>``: local files derived from the bucket's."""
    return paths.base_dir() / CACHE / hashlib.sha256(str(store.url).encode()).hexdigest()[:12]


def local_copy(store: ObjectStore, keys: Keys, name: str, version: str, stage: str) -> Path:
    """A verified local copy of a version, for code that reads a version's directory.

    Kept under ``$CTR_PIPELINE_HOME/.cache/registry/<store>/<stage>/<name>/<manifest
    digest>/vN`` (a version's files never change once published, and a new production
    copy has a new manifest digest). Written beside and renamed into place, so
    concurrent callers never see half a copy.
    """
    require_version(store, keys, name, version, stage)
    manifest = store.get(keys.version(stage, name, version, MANIFEST))
    digest = hashlib.sha256(manifest).hexdigest()[:16]
    parent = cache_root(store) / stage / name / digest
    final = parent / version
    if (final / MANIFEST).is_file():
        return final
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=parent))
    try:
        problems, _ = verify_files(store, keys, name, version, stage, download_to=tmp)
        if problems:
            raise IntegrityError(
                f"Model {name!r} version {version} under {store.show(stage)} failed "
                f"verification: {'; '.join(problems)}",
                problems,
            )
        (tmp / MANIFEST).write_bytes(manifest)
        with suppress(OSError):  # another caller finished first: theirs is the same
            os.rename(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final
