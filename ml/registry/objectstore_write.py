"""Registering on an object store (see objectstore.py; production: objectstore_production.py).

Every step is a single request that either happened or did not, and a registration
can be retried after dying at any request: the run is copied to a local temp dir,
hashed and checked as on disk; ``claims/<N>`` is created conditionally (the loser takes
N+1); the files are uploaded, ``MANIFEST.json`` last; the register event is written
(with the version's index facts); the index gains N, its run source and its lineage
key. A retry of the same run finds its own claim (above the index's ``last_claim``)
and finishes it.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from contextlib import suppress
from pathlib import Path
from typing import Any

from ml.errors import (
    ConditionFailedError,
    InvalidRunError,
    SourceChangedError,
    StorageUnavailableError,
)
from ml.fsutil import dumps_json, utc_now
from ml.registry import _fs, journal, runs
from ml.registry.index import entry as index_entry
from ml.registry.layout import (
    FORMAT_VERSION,
    MANIFEST,
    METADATA,
    MODEL_FILE,
    RUN_ARTIFACTS,
    STAGING,
    validate_name,
)
from ml.registry.objectstore import (
    ABANDONED,
    Keys,
    cas_update,
    dumps,
    numbers,
    published,
    read_index,
    read_json,
)
from ml.registry.provenance import build_metadata, default_user, lineage_digests, source_key
from ml.storage.store import ObjectStore
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
        except SourceChangedError as exc:
            raise InvalidRunError(str(exc)) from exc
        files = {
            dst.name: {"sha256": d, "size": s}
            for (_, dst), (d, s) in zip(pairs, digests, strict=True)
        }
        runs.check_checkpoint(tmp / MODEL_FILE, run.path / MODEL_BEST)
        metadata = build_metadata(
            name=name,
            created_by=created_by or default_user(),
            run_dir=run.location,
            model_sha256=str(files[MODEL_FILE]["sha256"]),
            dag_id=dag_id,
            run_id=run_id,
            run_info=run.run_info,
            metrics=run.metrics,
            config=run.config,
            config_sha256=str(files[CONFIG_YAML]["sha256"]),
        )
        key = source_key(run.location, str(files[MODEL_FILE]["sha256"]))
        index = read_index(store, keys, name)
        existing = index["sources"].get(short(key))
        visible = published(store, keys, name, STAGING) if existing is not None else []
        if existing is not None and not force and existing in visible:
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
        claimed = found[0] if found is not None and isinstance(found[0], dict) else {}
        mine = not force and claimed.get("source_key") == key
        if mine and n not in numbers(index, STAGING) and n not in numbers(index, ABANDONED):
            return n
    claim = dumps({"source_key": key, "by": by, "at": utc_now(), "forced": force})
    number = highest + 1
    while True:
        try:
            store.put_if_absent(keys.claim(name, number), claim)
            return number
        except ConditionFailedError:
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
    with suppress(ConditionFailedError):
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
        "facts": index_entry(meta, version) if isinstance(meta, dict) else {},
    }
    lineage = lineage_key(meta) if isinstance(meta, dict) else None
    if store.head(keys.registered(name, number)) is None:
        store.put(keys.registered(name, number), dumps(event))

    def add(index: Any) -> Any:
        index = {**read_default(index)}
        staged = numbers(index, STAGING)
        if number in staged and index["sources"].get(short(key)) is not None:
            return None
        if number in numbers(index, ABANDONED):
            raise StorageUnavailableError(
                f"registering {store.show(keys.version(STAGING, name, version))}: gc gave up "
                "this claimed number (the registration took longer than gc's min-age); "
                "retry the registration, it takes a new number"
            )
        index[STAGING] = sorted({*staged, number})
        index["last_claim"] = max(int(index["last_claim"]), number)
        index["sources"] = {**index["sources"], short(key): number}
        if lineage is not None:
            index["lineage"] = {**index.get("lineage", {}), str(number): lineage}
        return index

    cas_update(store, keys.meta(name, "index.json"), add)


def short(key: str) -> str:
    """The index's form of a sha256 hex key: 16 hex digits (64 bits; a match is confirmed
    from the version's own metadata where it matters)."""
    return key[:16]


def lineage_key(metadata: dict[str, Any]) -> str | None:
    """The short key of a version's (data, config, code) digests, or None without them."""
    digests = lineage_digests(metadata)
    if not all(isinstance(d, str) and d for d in digests):
        return None
    return short(hashlib.sha256("\0".join(digests).encode()).hexdigest())


def read_default(index: Any) -> dict[str, Any]:
    from ml.registry.objectstore import empty_index

    out = empty_index()
    if isinstance(index, dict):
        out.update(index)
    return out
