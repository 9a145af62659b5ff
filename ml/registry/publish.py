"""Publishing a version: a complete training run becomes staging ``vN``, all or nothing.

A version is built in ``.tmp-<id>/`` beside the versions (same file system), its writer
lock held for the directory's whole life (see ``_lock.WriterLock``): the run's files are
copied and hashed without the model's lock, so registrations overlap; extra files, then
``metadata.json``, then ``MANIFEST.json`` are written, and everything is fsynced.
**The manifest is written last**: a directory with a manifest is complete. Then, under
the model's lock, the directory is renamed to ``vN``. **The rename is the claim**: a
published version is never empty, so ``rename`` onto an existing ``vN`` fails instead of
replacing it, and version numbers stay distinct even where the lock does not work (the
writer takes the next number). Intent, completion and recovery around that rename are
described in :mod:`ml.registry.recovery`.
"""

from __future__ import annotations

import errno
import hashlib
import os
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ml import errors as ml_errors
from ml import paths
from ml.errors import ExtraFileError, IntegrityError, InvalidRunError, SourceChangedError
from ml.fsutil import dumps_json, fsync_dir, utc_now
from ml.registry import _fs, catalog, index, recovery, runs
from ml.registry._lock import WriterLock
from ml.registry.layout import (
    ARCHIVE,
    ARCHIVED_RE,
    FORMAT_VERSION,
    MANIFEST,
    MAX_VERSION_NUMBER,
    METADATA,
    MODEL_FILE,
    RESERVED_FILES,
    RUN_ARTIFACTS,
    STAGES,
    STAGING,
    WRITERS,
    Layout,
    is_file_name,
    validate_name,
)
from ml.registry.oserrors import os_errors, translate_oserror
from ml.registry.provenance import build_metadata, default_user, source_key
from ml.training.run_dir import CONFIG_YAML, MODEL_BEST

ExtraValue = bytes | str | os.PathLike[str]
#: ``{plain file name: bytes | path}``, or a callable given the version number
ExtraFiles = Mapping[str, ExtraValue] | Callable[[str], Mapping[str, ExtraValue]]


@dataclass(frozen=True)
class RegisteredVersion:
    """What :meth:`ModelRegistry.register` did.

    ``created`` is False when the same source run was already registered and that
    version was returned instead of a new one.
    """

    name: str
    version: str
    path: Path
    created: bool

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "path": str(self.path)}


@dataclass
class _Prepared:
    """A run copied into a temporary directory, waiting for its number."""

    tmp: Path
    files: dict[str, dict[str, Any]]
    metadata: dict[str, Any]
    key: str
    mode: int


def register(
    layout: Layout,
    run_dir: str | os.PathLike[str],
    name: str,
    *,
    lock_timeout: float,
    dag_id: str | None = None,
    run_id: str | None = None,
    force: bool = False,
    created_by: str | None = None,
    extra_files: ExtraFiles | None = None,
    file_mode: int | None = None,
) -> RegisteredVersion:
    """See :meth:`ml.registry.model_registry.ModelRegistry.register`."""
    validate_name(name)
    if extra_files is not None and not callable(extra_files):
        check_extra_files(extra_files)
    run = runs.read_run(run_dir)
    model_dir = layout.model_dir(STAGING, name)
    with os_errors(f"preparing {layout.display(model_dir)}", model_dir):
        layout.ensure_dir(model_dir)
        layout.ensure_dir(layout.meta_dir(name) / WRITERS)
    tmp = layout.new_tmp(STAGING, name)
    writer = WriterLock(layout.writer_lock(name, tmp))
    try:
        with os_errors("registering the run", tmp):
            writer.acquire()
            os.mkdir(tmp, 0o755)
        prepared = _prepare(layout, run, tmp, name, dag_id, run_id, created_by, file_mode)
        with recovery.writing(layout, name, lock_timeout) as session:
            retried = session.take(recovery.REGISTER, source_key=prepared.key)
            existing = retried["version"] if retried else None
            if existing is None and not force:
                existing = _lookup(layout, name, prepared)
            if existing is not None:
                return RegisteredVersion(name, existing, model_dir / existing, False)
            with os_errors("publishing the new version", tmp):
                version = _publish(session, prepared, force, extra_files)
            return RegisteredVersion(name, version, model_dir / version, True)
    finally:
        # Best effort: what is left (the writer lock released) is a dead writer's, for gc.
        with suppress(OSError):
            if os.path.lexists(tmp):
                _fs.remove_tree(tmp)
        with suppress(OSError):
            writer.release()


def _prepare(
    layout: Layout,
    run: runs.RunSource,
    tmp: Path,
    name: str,
    dag_id: str | None,
    run_id: str | None,
    created_by: str | None,
    file_mode: int | None,
) -> _Prepared:
    """Copy and hash the run's files into ``tmp``, check the checkpoint, build metadata."""
    pairs = [(run.path / src, tmp / dst) for src, dst in RUN_ARTIFACTS.items()]
    try:
        digests = _fs.copy_many_hashed(pairs, mode=file_mode)
    except SourceChangedError as exc:
        raise InvalidRunError(str(exc)) from exc
    except OSError as exc:
        raise _copy_error(exc, run.path, tmp) from exc
    files: dict[str, dict[str, Any]] = {
        dst.name: {"sha256": d, "size": s} for (_, dst), (d, s) in zip(pairs, digests, strict=True)
    }
    runs.check_checkpoint(tmp / MODEL_FILE, run.path / MODEL_BEST)
    model_sha = str(files[MODEL_FILE]["sha256"])
    metadata = build_metadata(
        name=name,
        created_by=created_by or default_user(),
        run_dir=run.location,
        model_sha256=model_sha,
        dag_id=dag_id,
        run_id=run_id,
        run_info=run.run_info,
        metrics=run.metrics,
        config=run.config,
        config_sha256=str(files[CONFIG_YAML]["sha256"]),
    )
    mode = file_mode if file_mode is not None else 0o644
    return _Prepared(tmp, files, metadata, source_key(run.location, model_sha), mode)


def _copy_error(exc: OSError, run: Path, tmp: Path) -> Exception:
    """Blame the side that failed: the run's file (unreadable, a link) or the registry."""
    on_source = exc.filename is not None and str(exc.filename).startswith(f"{run}{os.sep}")
    if on_source and not ml_errors.is_environment_oserror(exc):
        why = "is a symbolic link" if exc.errno == errno.ELOOP else "cannot be read"
        return InvalidRunError(
            f"{exc.filename} {why} ({ml_errors.describe_oserror(exc)}); check the run "
            "directory and register again"
        )
    action = "reading the run directory" if on_source else "copying the run into the registry"
    return translate_oserror(exc, action, tmp)


def _lookup(layout: Layout, name: str, prepared: _Prepared) -> str | None:
    """The newest visible version registered from the same run (directory + model digest).

    The index finds it; the version's own metadata confirms it. Versions the index lacks
    (its line lost to a crash) are checked through their metadata, so an index entry
    written after publication is never what idempotency depends on.
    """
    source = prepared.metadata["source"]
    visible = set(catalog.visible_numbers(layout, STAGING, name))
    indexed, found = index.search(layout, name, prepared.key)
    candidates = sorted({n for n in found if n in visible} | (visible - indexed), reverse=True)
    for n in candidates:
        path = layout.version_dir(STAGING, name, f"v{n}") / METADATA
        try:
            meta = catalog.read_json(layout, path, "metadata")
        except IntegrityError:
            continue
        src = meta.get("source")
        if isinstance(src, dict) and (src.get("run_dir"), src.get("model_sha256")) == (
            source["run_dir"],
            source["model_sha256"],
        ):
            return f"v{n}"
    return None


def next_number(layout: Layout, name: str) -> int:
    """One above every number handed out: versions, archived ones, ``last_version``."""
    highest = index.last_version(layout, name)
    for stage in STAGES:
        nums = layout.version_numbers(stage, name, dirs_only=False)
        highest = max(highest, nums[-1] if nums else 0)
        archive = layout.model_dir(stage, name) / ARCHIVE
        if _fs.is_real_dir(archive):
            for entry in os.scandir(archive):
                m = ARCHIVED_RE.match(entry.name)
                if m:
                    highest = max(highest, int(m.group(1)))
    if highest >= MAX_VERSION_NUMBER:
        raise IntegrityError(
            f"Model {name!r} has used every version number up to v{highest}; register "
            "under another model name"
        )
    return highest + 1


def _publish(
    session: recovery.Session, prepared: _Prepared, force: bool, extra: ExtraFiles | None
) -> str:
    """Number, finish and rename the temporary directory (the lock is held)."""
    layout, name, tmp = session.layout, session.name, prepared.tmp
    model_dir = tmp.parent
    number = next_number(layout, name)
    while True:
        version = f"v{number}"
        files = dict(prepared.files)
        for fname in os.listdir(tmp):  # leftovers of a lost race below
            if fname not in files:
                os.unlink(tmp / fname)
        if extra is not None:
            files.update(_write_extra_files(tmp, extra, version, prepared.mode))
        metadata = {**prepared.metadata, "version": version, "created_at": utc_now()}
        meta_bytes = dumps_json(metadata).encode()
        _fs.write_file(tmp / METADATA, meta_bytes, sync=False, mode=prepared.mode)
        files[METADATA] = {
            "sha256": hashlib.sha256(meta_bytes).hexdigest(),
            "size": len(meta_bytes),
        }
        manifest = {
            "format_version": FORMAT_VERSION,
            "name": name,
            "version": version,
            "created_at": metadata["created_at"],
            "files": dict(sorted(files.items())),
        }
        _fs.write_file(
            tmp / MANIFEST, dumps_json(manifest).encode(), sync=False, mode=prepared.mode
        )
        # The run's files were fsynced as they were copied; the rest, and the directory:
        written = sorted(set(files) - set(prepared.files))
        _fs.fsync_paths([tmp / f for f in written] + [tmp / MANIFEST, tmp])
        intent = session.begin(
            recovery.REGISTER,
            {
                "event": "register",
                "stage": STAGING,
                "version": version,
                "by": metadata["created_by"],
                "source": metadata["source"]["run_dir"],
                "dag_id": metadata["source"]["dag_id"],
                "run_id": metadata["source"]["run_id"],
                "forced": bool(force),
            },
            version=version,
            tmp=tmp.name,
            created_at=metadata["created_at"],
            source_key=prepared.key,
            index=index.entry(metadata, version),
        )
        try:
            os.rename(tmp, model_dir / version)
            break
        except OSError as exc:
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
            number += 1  # someone published vN without holding the lock: take the next
    fsync_dir(model_dir)
    session.commit(intent)
    return version


def check_extra_files(mapping: object) -> dict[str, ExtraValue]:
    """Validate ``extra_files``: plain names not used by the registry, bytes or paths."""
    if not isinstance(mapping, Mapping):
        raise ExtraFileError(
            f"extra_files must map file names to bytes or paths, got {type(mapping).__name__}"
        )
    for fname, value in mapping.items():
        if not is_file_name(fname):
            raise ExtraFileError(
                f"extra file name {fname!r} is not a plain file name: use 1-128 letters, "
                "digits, '_', '.', '-', starting with a letter or digit (no '/')"
            )
        if fname in RESERVED_FILES:
            raise ExtraFileError(
                f"extra file name {fname!r} is one the registry writes itself "
                f"({', '.join(sorted(RESERVED_FILES))}); choose another name"
            )
        if not isinstance(value, (bytes, bytearray, str, os.PathLike)):
            raise ExtraFileError(
                f"extra file {fname!r} must be bytes or a path, got {type(value).__name__}"
            )
    return dict(mapping)


def _write_extra_files(
    tmp: Path, extra: ExtraFiles, version: str, mode: int
) -> dict[str, dict[str, Any]]:
    mapping = check_extra_files(extra(version) if callable(extra) else extra)
    out: dict[str, dict[str, Any]] = {}
    for fname, value in sorted(mapping.items()):
        if isinstance(value, (bytes, bytearray)):
            data = bytes(value)
            _fs.write_file(tmp / fname, data, sync=False, mode=mode)
            out[fname] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
            continue
        src = paths.resolve(value)
        try:
            digest, size = _fs.copy_hashed(src, tmp / fname, mode=mode)
        except SourceChangedError as exc:
            raise ExtraFileError(str(exc)) from exc
        except OSError as exc:
            if exc.filename != str(src) or ml_errors.is_environment_oserror(exc):
                raise
            raise ExtraFileError(
                f"extra file {fname!r}: {src} cannot be added "
                f"({ml_errors.describe_oserror(exc)}); pass a regular file (not a link)"
            ) from exc
        out[fname] = {"sha256": digest, "size": size}
    return out
