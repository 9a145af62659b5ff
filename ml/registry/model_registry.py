"""A file-system model registry: versioned, verifiable, crash-safe and multi-process safe.

Layout under the registry root (``models/`` in the base directory by default)::

    models/
    ├── staging/<name>/
    │   ├── v1/  model.pt config.yaml metrics.json metadata.json MANIFEST.json
    │   ├── v2/  ...
    │   ├── .archive/v3.<stamp>-<id>/   soft-deleted versions (never listed, never reused)
    │   └── .tmp-<id>/                  a version being written (ignored by every reader)
    ├── production/<name>/
    │   ├── v2/  (a verified copy of staging v2)
    │   └── current -> v2               relative symlink, swapped atomically
    └── .registry/<name>/
        ├── lock            flock'ed by every writer of <name>
        ├── history.jsonl   append-only log of registrations, promotions, rollbacks, deletes
        ├── last_version    highest version number ever handed out
        └── sources/<key>.json   (run directory, model digest) -> version, for idempotent register

A version directory is visible (to ``list_models``, ``get_latest_version``, ``load``,
``promote_to_production``) only when it holds ``MANIFEST.json``. It is built in a temporary
directory beside it, every file and the directory fsynced, the manifest written last, and
then renamed into place in one step, so a crash leaves either no version or a complete one.
See ``docs/registry.md`` for the guarantees and what the locking assumes of the file system.
"""

from __future__ import annotations

import errno
import functools
import getpass
import hashlib
import json
import os
import platform
import re
import socket
import stat
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from ml import paths
from ml.registry import _fs
from ml.registry._lock import FileLock, probe_lock
from ml.registry.errors import (
    AlreadyExistsError,
    IntegrityError,
    InvalidNameError,
    InvalidRunError,
    ModelNotFoundError,
    NoPreviousVersionError,
    RegistryError,
    VersionInUseError,
    VersionNotFoundError,
)

STAGING = "staging"
PRODUCTION = "production"
STAGES = (STAGING, PRODUCTION)

NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}"
_NAME_RE = re.compile(NAME_PATTERN + r"\Z")
# Canonical numbers only: "v07" would alias "v7".
_VERSION_RE = re.compile(r"v([1-9][0-9]{0,17})\Z")
_ARCHIVED_RE = re.compile(r"v([1-9][0-9]{0,17})(?:\..*)?\Z")
_FILE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}\Z")

MANIFEST = "MANIFEST.json"
METADATA = "metadata.json"
MODEL_FILE = "model.pt"
CURRENT = "current"
#: run directory file -> registered file name
RUN_ARTIFACTS = {
    "model_best.pt": MODEL_FILE,
    "config.yaml": "config.yaml",
    "metrics.json": "metrics.json",
}
RUN_COMPLETE_MARKER = "COMPLETE"
RUN_INFO = "run.json"

_TMP_PREFIX = ".tmp-"
_LINK_PREFIX = ".current-"
_ARCHIVE = ".archive"
_META = ".registry"
_WRITER_LOCK = ".writer.lock"
FORMAT_VERSION = 1
#: gc leaves crash leftovers younger than this alone (seconds) unless told otherwise.
DEFAULT_GC_MIN_AGE = 900.0


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
        return {
            "name": self.name,
            "version": self.version,
            "path": str(self.path),
            "created": self.created,
        }


@dataclass(frozen=True)
class Promotion:
    """Where ``production/<name>/current`` points after a promotion or rollback."""

    name: str
    version: str
    previous: str | None
    path: Path
    changed: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "previous": self.previous,
            "path": str(self.path),
            "changed": self.changed,
        }


@dataclass(frozen=True)
class VerifyReport:
    """Result of :meth:`ModelRegistry.verify`: ``problems`` names each bad file."""

    name: str
    version: str
    stage: str
    path: Path
    problems: tuple[str, ...]
    files: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "stage": self.stage,
            "path": str(self.path),
            "ok": self.ok,
            "problems": list(self.problems),
            "files": dict(self.files),
        }


@dataclass(frozen=True)
class GcReport:
    """What :meth:`ModelRegistry.gc` removed, archived (or would) and what it left."""

    removed: list[str]
    archived: list[str]
    kept: list[str]
    dry_run: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "removed": self.removed,
            "archived": self.archived,
            "kept": self.kept,
            "dry_run": self.dry_run,
        }


def validate_name(name: str) -> str:
    """Return ``name`` if it is a valid model name, else raise :class:`InvalidNameError`."""
    if not isinstance(name, str) or not _NAME_RE.match(name) or ".." in name:
        raise InvalidNameError(
            f"invalid model name {name!r}: use 1-128 characters from letters, digits, "
            "'_', '.', '-', starting with a letter or digit, without '..' or '/' "
            "(e.g. 'ctr_model')"
        )
    return name


def validate_version(version: str) -> str:
    """Return ``version`` if it looks like ``v1``, ``v2``, ..., else raise."""
    if not isinstance(version, str) or not _VERSION_RE.match(version):
        raise InvalidNameError(
            f"invalid version {version!r}: versions are 'v' and a number without leading "
            "zeros, e.g. 'v3'"
        )
    return version


def validate_stage(stage: str) -> str:
    if stage not in STAGES:
        raise InvalidNameError(f"invalid stage {stage!r}: use one of {', '.join(STAGES)}")
    return stage


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def default_user() -> str:
    """``user@host`` of this process (what ``created_by`` and history ``by`` default to)."""
    try:
        user = getpass.getuser()
    except Exception:  # no passwd entry in some containers
        user = f"uid{os.getuid()}"
    return f"{user}@{socket.gethostname()}"


@functools.lru_cache(maxsize=1)
def library_versions() -> dict[str, str | None]:
    """Versions of the libraries a model depends on, without importing them."""
    from importlib import metadata

    out: dict[str, str | None] = {"python": platform.python_version()}
    for dist in ("torch", "numpy", "pandas"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def git_commit(directory: Path) -> str | None:
    """The commit checked out in ``directory`` (read from ``.git``, no subprocess), or None."""
    try:
        git = directory / ".git"
        if git.is_file():  # a worktree or submodule: "gitdir: <path>"
            text = git.read_text().strip()
            if not text.startswith("gitdir:"):
                return None
            git = (directory / text.split(":", 1)[1].strip()).resolve()
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref:"):
            return head if re.fullmatch(r"[0-9a-f]{40,64}", head) else None
        ref = head.split(":", 1)[1].strip()
        common = git
        if (git / "commondir").is_file():
            common = (git / (git / "commondir").read_text().strip()).resolve()
        for root in (git, common):
            if (root / ref).is_file():
                return (root / ref).read_text().strip()
        packed = common / "packed-refs"
        if packed.is_file():
            for line in packed.read_text().splitlines():
                parts = line.split()
                if len(parts) == 2 and parts[1] == ref:
                    return parts[0]
    except OSError:
        return None
    return None


def _canonical_digest(obj: Any) -> str:
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


class ModelRegistry:
    """The project's system of record for trained models.

    Args:
        base_dir: registry root; a relative path resolves against the project base
            directory (``ml.paths.resolve``), never the working directory. The root
            itself may be a symbolic link; nothing below it is ever followed.
        lock_timeout: seconds to wait for another process holding a model's lock
            before raising :class:`LockTimeoutError`.
    """

    def __init__(
        self, base_dir: str | os.PathLike[str] = paths.MODELS_DIR, *, lock_timeout: float = 60.0
    ) -> None:
        self.base_dir = Path(os.path.realpath(paths.resolve(base_dir)))
        self.lock_timeout = float(lock_timeout)

    def __repr__(self) -> str:
        return f"ModelRegistry({str(self.base_dir)!r})"

    # --- layout ---------------------------------------------------------------------

    def _stage_dir(self, stage: str) -> Path:
        return self.base_dir / validate_stage(stage)

    def _model_dir(self, stage: str, name: str) -> Path:
        return self._stage_dir(stage) / validate_name(name)

    def _version_dir(self, stage: str, name: str, version: str) -> Path:
        return self._model_dir(stage, name) / validate_version(version)

    def _meta_dir(self, name: str) -> Path:
        return self.base_dir / _META / validate_name(name)

    def _display(self, path: Path) -> str:
        try:
            base = Path(os.path.realpath(paths.base_dir()))
            return str(path.relative_to(base))
        except (ValueError, RegistryError, paths.BaseDirError):
            return str(path)

    def _check_no_links(self, path: Path) -> None:
        """Refuse a symbolic link anywhere between the root and ``path`` (inclusive)."""
        rel = path.relative_to(self.base_dir)
        cur = self.base_dir
        for part in rel.parts:
            cur = cur / part
            try:
                mode = os.lstat(cur).st_mode
            except FileNotFoundError:
                return
            if stat.S_ISLNK(mode):
                raise IntegrityError(
                    f"{self._display(cur)} is a symbolic link; the registry never follows "
                    f"links below {self.base_dir}. Replace it with a real directory"
                )

    def _ensure_dir(self, path: Path) -> None:
        self._check_no_links(path)
        if not path.is_dir():
            path.mkdir(parents=True, exist_ok=True)
            self._check_no_links(path)

    @contextmanager
    def _locked(self, name: str) -> Iterator[None]:
        meta = self._meta_dir(name)
        self._ensure_dir(meta)
        with FileLock(meta / "lock", self.lock_timeout, f"model {name!r}"):
            yield

    # --- reading ----------------------------------------------------------------------

    def _version_numbers(self, stage: str, name: str, *, dirs_only: bool = True) -> list[int]:
        """Version numbers present in ``<stage>/<name>``, ascending.

        Only ``os.scandir`` is used (the entry type comes with the directory listing), no
        per-version stat: a ``vN`` directory only ever appears by renaming a complete,
        manifest-bearing temporary directory, so its presence means it is complete.
        """
        model_dir = self._model_dir(stage, name)
        self._check_no_links(model_dir)
        nums: list[int] = []
        try:
            it = os.scandir(model_dir)
        except (FileNotFoundError, NotADirectoryError):
            return nums
        with it:
            for entry in it:
                n = entry.name
                # Cheaper than the regex at 10,000 entries; same rule as _VERSION_RE.
                if (
                    n[:1] != "v"
                    or not 2 <= len(n) <= 19
                    or n[1] == "0"
                    or not (n[1:].isascii() and n[1:].isdigit())
                ):
                    continue
                if dirs_only and not entry.is_dir(follow_symlinks=False):
                    continue
                nums.append(int(n[1:]))
        nums.sort()
        return nums

    def _is_visible(self, stage: str, name: str, version: str) -> bool:
        vdir = self._version_dir(stage, name, version)
        return _fs.is_real_dir(vdir) and _fs.is_regular(vdir / MANIFEST)

    def list_models(self, stage: str = STAGING) -> dict[str, list[str]]:
        """Every model in ``stage`` with its visible versions, in numeric order.

        Returns:
            ``{'ctr_model': ['v1', 'v2', 'v3']}``; models without a visible version
            are left out.
        """
        stage_dir = self._stage_dir(stage)
        self._check_no_links(stage_dir)
        out: dict[str, list[str]] = {}
        try:
            it = os.scandir(stage_dir)
        except FileNotFoundError:
            return out
        with it:
            names = sorted(
                e.name
                for e in it
                if _NAME_RE.match(e.name) and ".." not in e.name and e.is_dir(follow_symlinks=False)
            )
        for name in names:
            nums = self._version_numbers(stage, name)
            if nums:
                out[name] = [f"v{n}" for n in nums]
        return out

    def list_versions(self, name: str, stage: str = STAGING) -> list[str]:
        """Visible versions of ``name`` in ``stage`` (empty when there are none)."""
        return [f"v{n}" for n in self._version_numbers(stage, name)]

    def get_latest_version(self, name: str, stage: str = STAGING) -> str:
        """The highest visible version of ``name`` in ``stage``, e.g. ``'v3'``.

        Raises:
            ModelNotFoundError: the model has no visible version in ``stage``.
        """
        model_dir = self._model_dir(stage, name)
        nums = self._version_numbers(stage, name)
        for n in reversed(nums):
            # Only the top candidates are stat'ed, so this stays fast with many versions.
            if self._is_visible(stage, name, f"v{n}"):
                return f"v{n}"
        raise self._model_not_found(name, stage, model_dir)

    def _model_not_found(self, name: str, stage: str, model_dir: Path) -> ModelNotFoundError:
        hint = (
            f"register one with `ctr-pipeline registry register RUN_DIR --name {name}`"
            if stage == STAGING
            else f"promote one with `ctr-pipeline registry promote {name} vN`"
        )
        others = sorted(self.list_models(stage)) if self._stage_dir(stage).is_dir() else []
        known = f" (models there: {', '.join(others[:10])})" if others else ""
        return ModelNotFoundError(
            f"Model {name!r} has no version under {self._display(model_dir.parent)}{known}; {hint}"
        )

    def _require_version(self, stage: str, name: str, version: str) -> Path:
        vdir = self._version_dir(stage, name, version)
        self._check_no_links(vdir)
        if self._is_visible(stage, name, version):
            return vdir
        nums = self._version_numbers(stage, name)
        if not nums:
            raise self._model_not_found(name, stage, vdir.parent)
        shown = ", ".join(f"v{n}" for n in nums[-10:])
        raise VersionNotFoundError(
            f"Model {name!r} version {version} not found under "
            f"{self._display(self._stage_dir(stage))}; available: {shown}"
        )

    def current_version(self, name: str) -> str | None:
        """The version ``production/<name>/current`` points at, or None if there is none."""
        link = self._model_dir(PRODUCTION, name) / CURRENT
        self._check_no_links(link.parent)
        try:
            target = os.readlink(link)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:  # EINVAL: a regular file/dir named current
            raise IntegrityError(
                f"{self._display(link)} is not a symbolic link; remove it and promote a "
                "version again"
            ) from exc
        target = target.rstrip("/")
        if not _VERSION_RE.match(target):
            # An absolute or ../ target would point outside the registry: never follow it.
            raise IntegrityError(
                f"{self._display(link)} points at {target!r}, not at a version directory "
                f"beside it; promote a version again to repair it"
            )
        return target

    def resolve(self, name: str, ref: str = "latest", stage: str | None = None) -> tuple[str, str]:
        """Turn ``ref`` (``'current'``, ``'latest'`` or ``'vN'``) into ``(stage, version)``.

        ``stage`` defaults to production for ``'current'`` and staging otherwise.
        """
        validate_name(name)
        if ref == CURRENT:
            if stage not in (None, PRODUCTION):
                raise InvalidNameError(
                    f"'current' exists only in production, not in {stage!r}; use 'latest' or "
                    "a version such as 'v3' with --stage staging"
                )
            version = self.current_version(name)
            if version is None:
                raise ModelNotFoundError(
                    f"Model {name!r} has no current production version "
                    f"({self._display(self._model_dir(PRODUCTION, name) / CURRENT)} is missing); "
                    f"promote one with `ctr-pipeline registry promote {name} vN`"
                )
            self._require_version(PRODUCTION, name, version)
            return PRODUCTION, version
        stage = validate_stage(stage or STAGING)
        if ref == "latest":
            return stage, self.get_latest_version(name, stage)
        if not isinstance(ref, str) or not _VERSION_RE.match(ref):
            raise InvalidNameError(
                f"invalid version reference {ref!r}: use 'current', 'latest' or a version "
                "such as 'v3'"
            )
        self._require_version(stage, name, ref)
        return stage, ref

    def path_of(self, name: str, version: str, stage: str = STAGING) -> Path:
        """Directory of a visible version (raises when it does not exist)."""
        return self._require_version(validate_stage(stage), name, version)

    def _read_json(self, path: Path, what: str) -> dict[str, Any]:
        try:
            data = json.loads(_fs.read_regular(path))
        except (OSError, ValueError) as exc:
            raise IntegrityError(
                f"cannot read {what} {self._display(path)}: {exc}; run "
                "`ctr-pipeline registry verify` and restore or delete the version"
            ) from exc
        if not isinstance(data, dict):
            raise IntegrityError(f"{self._display(path)} is not a JSON object")
        return data

    def show(self, name: str, ref: str = "latest", stage: str | None = None) -> dict[str, Any]:
        """Everything known about one version: metadata, files, stage and whether current."""
        stage, version = self.resolve(name, ref, stage)
        vdir = self._version_dir(stage, name, version)
        manifest = self._read_json(vdir / MANIFEST, "manifest")
        return {
            "name": name,
            "version": version,
            "stage": stage,
            "path": str(vdir),
            "current": self.current_version(name) == version if stage == PRODUCTION else False,
            "in_production": self._is_visible(PRODUCTION, name, version),
            "files": manifest.get("files", {}),
            "metadata": self._read_json(vdir / METADATA, "metadata"),
        }

    # --- register -------------------------------------------------------------------

    def register(
        self,
        run_dir: str | os.PathLike[str],
        name: str = "ctr_model",
        *,
        dag_id: str | None = None,
        run_id: str | None = None,
        force: bool = False,
        created_by: str | None = None,
        extra_files: Any = None,
    ) -> RegisteredVersion:
        """Register a complete training run as the next staging version of ``name``.

        Copies ``model_best.pt`` (as ``model.pt``), ``config.yaml`` and ``metrics.json``,
        writes ``metadata.json`` (lineage) and ``MANIFEST.json`` (sha256 of every file),
        and publishes the version atomically. Registering the same run again (same
        resolved run directory and same model digest) returns the existing version with
        ``created=False`` unless ``force`` is set.

        Args:
            run_dir: training run directory (relative → against the base directory).
            name: model name.
            dag_id: Airflow DAG id, recorded in the lineage.
            run_id: Airflow run id, recorded in the lineage.
            force: register a new version even if this run is already registered.
            created_by: who registers; defaults to ``user@host``.

        Returns:
            The :class:`RegisteredVersion`.

        Raises:
            InvalidRunError: the run directory is missing, not COMPLETE or unreadable.
            InvalidNameError: ``name`` is malformed.
            LockTimeoutError: another writer held the model's lock too long.
        """
        validate_name(name)
        run = paths.resolve(run_dir)
        run_info, metrics, config = self._read_run(run)
        real_run = Path(os.path.realpath(run))
        model_dir = self._model_dir(STAGING, name)
        self._ensure_dir(model_dir)
        self._ensure_dir(self._meta_dir(name))

        tmp = model_dir / f"{_TMP_PREFIX}{uuid.uuid4().hex}"
        os.mkdir(tmp)
        writer_fd = _hold_writer_lock(tmp)
        try:
            files: dict[str, dict[str, Any]] = {}
            pairs = [(run / src, tmp / dst) for src, dst in RUN_ARTIFACTS.items()]
            try:
                digests = _fs.copy_many_hashed(pairs)
            except _fs.SourceChangedError as exc:
                raise InvalidRunError(str(exc)) from exc
            except OSError as exc:
                raise InvalidRunError(
                    f"cannot copy {exc.filename or run}: {exc.strerror or exc}; check the run "
                    "directory and register again"
                ) from exc
            for (_, dst), (digest, size) in zip(pairs, digests, strict=True):
                files[dst.name] = {"sha256": digest, "size": size}
            model_sha = files[MODEL_FILE]["sha256"]
            source_key = hashlib.sha256(f"{real_run}\0{model_sha}".encode()).hexdigest()
            metadata: dict[str, Any] = {
                "format_version": FORMAT_VERSION,
                "name": name,
                "created_by": created_by or default_user(),
                "source": {
                    "run_dir": str(real_run),
                    "model_sha256": model_sha,
                    "dag_id": dag_id,
                    "run_id": run_id,
                },
                "data_fingerprint": run_info.get("data_fingerprint"),
                "features_dir": run_info.get("features_dir"),
                "config_digest": _canonical_digest(config),
                "config_sha256": files["config.yaml"]["sha256"],
                "code_version": {"git_commit": _project_commit()},
                "libraries": library_versions(),
                "metrics": {k: v for k, v in metrics.items() if k != "history"},
                "training": {
                    k: run_info.get(k)
                    for k in (
                        "config_digest",
                        "seed",
                        "started_at",
                        "finished_at",
                        "device",
                        "hostname",
                        "torch_version",
                    )
                },
            }
            with self._locked(name):
                if not force:
                    existing = self._lookup_source(name, source_key, str(real_run), model_sha)
                    if existing is not None:
                        return RegisteredVersion(
                            name, existing, self._version_dir(STAGING, name, existing), False
                        )
                metadata["created_at"] = _now()
                os.unlink(tmp / _WRITER_LOCK)  # gc leaves us alone: we hold the model lock
                number = self._next_number(name)
                while True:
                    version = f"v{number}"
                    metadata["version"] = version
                    meta_bytes = _fs.dumps_json(metadata)
                    files[METADATA] = {
                        "sha256": hashlib.sha256(meta_bytes).hexdigest(),
                        "size": len(meta_bytes),
                    }
                    manifest = {
                        "format_version": FORMAT_VERSION,
                        "name": name,
                        "version": version,
                        "created_at": metadata["created_at"],
                        "files": files,
                    }
                    for leftover in (tmp / METADATA, tmp / MANIFEST):
                        leftover.unlink(missing_ok=True)  # from a lost race below
                    if extra_files is not None:  # TEMP shim of the registry's extra_files
                        extra = extra_files(version) if callable(extra_files) else extra_files
                        for fname, value in extra.items():
                            if not _FILE_RE.match(fname) or fname in (METADATA, MANIFEST):
                                raise RegistryError(f"extra file name {fname!r} is not allowed")
                            data = value if isinstance(value, bytes) else Path(value).read_bytes()
                            (tmp / fname).unlink(missing_ok=True)  # a lost race's copy
                            _fs.write_file(tmp / fname, data, sync=True)
                            files[fname] = {
                                "sha256": hashlib.sha256(data).hexdigest(),
                                "size": len(data),
                            }
                    _fs.write_file(tmp / METADATA, meta_bytes, sync=False)
                    # The manifest is written last: its presence marks the version complete.
                    _fs.write_file(tmp / MANIFEST, _fs.dumps_json(manifest), sync=False)
                    # Everything in the version is on disk before it becomes visible.
                    _fs.fsync_paths([tmp / METADATA, tmp / MANIFEST, tmp])
                    try:
                        # A published version is never empty, so this rename cannot replace
                        # one: it is an exclusive claim even for a writer that (on a file
                        # system without working flock) got here without the lock.
                        os.rename(tmp, model_dir / version)
                        break
                    except OSError as exc:
                        if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                            raise
                        number += 1
                # Best effort (no fsync): numbers are also kept unique by the archive scan.
                _fs.replace_file(
                    self._meta_dir(name) / "last_version", f"{number}\n".encode(), sync=False
                )
                _fs.fsync_dir(model_dir)
                sources = self._meta_dir(name) / "sources"
                self._ensure_dir(sources)
                # A cache (checked against metadata.json on use), so no fsync.
                _fs.replace_file(
                    sources / f"{source_key}.json",
                    _fs.dumps_json(
                        {"version": version, "run_dir": str(real_run), "model_sha256": model_sha}
                    ),
                    sync=False,
                )
                self._append_history(
                    name,
                    {
                        "event": "register",
                        "stage": STAGING,
                        "version": version,
                        "by": metadata["created_by"],
                        "source": str(real_run),
                        "dag_id": dag_id,
                        "run_id": run_id,
                        "forced": bool(force),
                    },
                )
                return RegisteredVersion(name, version, model_dir / version, True)
        finally:
            os.close(writer_fd)
            if tmp.exists():
                _fs.remove_tree(tmp)

    def _read_run(self, run: Path) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        if not run.is_dir():
            raise InvalidRunError(
                f"run directory {run} does not exist or is not a directory; pass the run "
                "directory that training printed (experiments/runs/<experiment>_<timestamp>)"
            )
        if not (run / RUN_COMPLETE_MARKER).is_file():
            raise InvalidRunError(
                f"run directory {run} is not complete (no {RUN_COMPLETE_MARKER} marker): "
                "training is still running or did not finish; wait for it or rerun "
                "training, then register"
            )
        for src in RUN_ARTIFACTS:
            path = run / src
            if not path.is_file():
                raise InvalidRunError(
                    f"run directory {run} is marked complete but has no {src}; rerun training "
                    "into a fresh run directory"
                )
            if path.stat().st_size == 0:
                raise InvalidRunError(f"{path} is empty; rerun training")
        metrics = _load_mapping(run / "metrics.json", "JSON")
        config = _load_mapping(run / "config.yaml", "YAML")
        run_info = _load_mapping(run / RUN_INFO, "JSON") if (run / RUN_INFO).is_file() else {}
        return run_info, metrics, config

    def _lookup_source(self, name: str, key: str, run_dir: str, model_sha: str) -> str | None:
        entry = self._meta_dir(name) / "sources" / f"{key}.json"
        try:
            data = json.loads(_fs.read_regular(entry))
            version = validate_version(data["version"])
        except (OSError, ValueError, KeyError, TypeError, RegistryError):
            return None
        # The index is a cache: trust it only if the version is there and says the same.
        if not self._is_visible(STAGING, name, version):
            return None
        try:
            vdir = self._version_dir(STAGING, name, version)
            meta = json.loads(_fs.read_regular(vdir / METADATA))
            src = meta["source"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if src.get("run_dir") == run_dir and src.get("model_sha256") == model_sha:
            return version
        return None

    def _next_number(self, name: str) -> int:
        highest = 0
        nums = self._version_numbers(STAGING, name, dirs_only=False)
        if nums:
            highest = nums[-1]
        archive = self._model_dir(STAGING, name) / _ARCHIVE
        if _fs.is_real_dir(archive):
            for entry in os.scandir(archive):
                m = _ARCHIVED_RE.match(entry.name)
                if m:
                    highest = max(highest, int(m.group(1)))
        with suppress(OSError, ValueError):
            highest = max(highest, int(_fs.read_regular(self._meta_dir(name) / "last_version")))
        return highest + 1

    # --- promote / rollback -----------------------------------------------------------

    def promote_to_production(
        self, name: str, version: str, reason: str | None = None, *, by: str | None = None
    ) -> Promotion:
        """Copy staging ``version`` to production (verified) and point ``current`` at it.

        Promoting the version that is already current changes nothing (``changed=False``).

        Raises:
            VersionNotFoundError / ModelNotFoundError: no such staging version.
            IntegrityError: the staging files differ from their manifest.
            AlreadyExistsError: production holds a different ``version`` directory.
        """
        validate_name(name)
        validate_version(version)
        src = self._require_version(STAGING, name, version)
        manifest_bytes = _fs.read_regular(src / MANIFEST)
        manifest = self._read_json(src / MANIFEST, "manifest")
        prod_dir = self._model_dir(PRODUCTION, name)
        self._ensure_dir(prod_dir)
        dst = prod_dir / version
        tmp: Path | None = None
        writer_fd: int | None = None
        try:
            if not self._is_visible(PRODUCTION, name, version):
                tmp = prod_dir / f"{_TMP_PREFIX}{uuid.uuid4().hex}"
                os.mkdir(tmp)
                writer_fd = _hold_writer_lock(tmp)
                self._copy_verified(name, version, src, tmp, manifest)
                _fs.write_file(tmp / MANIFEST, manifest_bytes)
                os.unlink(tmp / _WRITER_LOCK)
                _fs.fsync_dir(tmp)
            with self._locked(name):
                if tmp is not None and not self._is_visible(PRODUCTION, name, version):
                    if os.path.lexists(dst):
                        raise IntegrityError(
                            f"{self._display(dst)} exists but is incomplete (no {MANIFEST}); "
                            "run `ctr-pipeline registry gc --min-age 0` and promote again"
                        )
                    os.rename(tmp, dst)
                    tmp = None
                    _fs.fsync_dir(prod_dir)
                else:
                    if _fs.read_regular(dst / MANIFEST) != manifest_bytes:
                        raise AlreadyExistsError(
                            f"{self._display(dst)} already exists with different files than "
                            f"staging {version}; delete the production copy "
                            f"(`ctr-pipeline registry delete {name} {version} --stage "
                            "production`) and promote again"
                        )
                    self.verify(name, version, PRODUCTION, raise_on_error=True)
                previous = self.current_version(name)
                if previous == version:
                    return Promotion(name, version, previous, dst, False)
                self._point_current(name, version)
                self._append_history(
                    name,
                    {
                        "event": "promote",
                        "from": previous,
                        "to": version,
                        "reason": reason,
                        "by": by or default_user(),
                    },
                )
                return Promotion(name, version, previous, dst, True)
        finally:
            if writer_fd is not None:
                os.close(writer_fd)
            if tmp is not None and tmp.exists():
                _fs.remove_tree(tmp)

    def _copy_verified(
        self, name: str, version: str, src: Path, dst: Path, manifest: dict[str, Any]
    ) -> None:
        files = manifest.get("files")
        if not isinstance(files, dict) or MODEL_FILE not in files:
            raise IntegrityError(
                f"{self._display(src / MANIFEST)} lists no files; the version is damaged, "
                "re-register the run"
            )
        problems: list[str] = []
        for fname, entry in sorted(files.items()):
            if not _FILE_RE.match(fname):
                problems.append(f"{fname!r}: not a plain file name")
                continue
            try:
                if not _fs.is_regular(src / fname):
                    raise FileNotFoundError(fname)
                digest, size = _fs.copy_hashed(src / fname, dst / fname)
            except (OSError, _fs.SourceChangedError) as exc:
                problems.append(f"{fname}: missing or unreadable ({exc})")
                continue
            if digest != entry.get("sha256") or size != entry.get("size"):
                problems.append(f"{fname}: sha256 differs from the manifest")
        if problems:
            raise IntegrityError(
                f"Model {name!r} version {version} under {self._display(src.parent.parent)} "
                f"failed verification: {'; '.join(problems)}. Re-register the run or restore "
                "the files before promoting",
                problems,
            )

    def _point_current(self, name: str, version: str | None) -> None:
        prod_dir = self._model_dir(PRODUCTION, name)
        link = prod_dir / CURRENT
        if version is None:
            if os.path.islink(link):
                os.unlink(link)
                _fs.fsync_dir(prod_dir)
            return
        tmp_link = prod_dir / f"{_LINK_PREFIX}{uuid.uuid4().hex}"
        os.symlink(version, tmp_link)  # relative: the tree can move as a whole
        try:
            os.replace(tmp_link, link)  # readers see the old or the new target, never none
        except BaseException:
            tmp_link.unlink(missing_ok=True)
            raise
        _fs.fsync_dir(prod_dir)

    def rollback(self, name: str, reason: str | None = None, *, by: str | None = None) -> Promotion:
        """Point ``current`` back at the production version it pointed at before.

        The previous version comes from the history: promotions push, rollbacks pop, and
        versions deleted from production since are skipped.

        Raises:
            NoPreviousVersionError: nothing to roll back to.
        """
        validate_name(name)
        with self._locked(name):
            current = self.current_version(name)
            if current is None:
                raise NoPreviousVersionError(
                    f"Model {name!r} has no current production version to roll back from; "
                    f"promote one with `ctr-pipeline registry promote {name} vN`"
                )
            stack = _replay(self._read_history(name))
            if not stack or stack[-1] != current:
                stack.append(current)  # current was changed outside the registry
            stack.pop()
            while stack and (
                stack[-1] == current or not self._is_visible(PRODUCTION, name, stack[-1])
            ):
                stack.pop()
            if not stack:
                raise NoPreviousVersionError(
                    f"Model {name!r} has no production version before {current} under "
                    f"{self._display(self._model_dir(PRODUCTION, name))} to roll back to; "
                    f"promote a version instead (`ctr-pipeline registry promote {name} vN`)"
                )
            target = stack[-1]
            self._point_current(name, target)
            self._append_history(
                name,
                {
                    "event": "rollback",
                    "from": current,
                    "to": target,
                    "reason": reason,
                    "by": by or default_user(),
                },
            )
            target_dir = self._model_dir(PRODUCTION, name) / target
            return Promotion(name, target, current, target_dir, True)

    # --- history ----------------------------------------------------------------------

    def _append_history(self, name: str, event: dict[str, Any]) -> None:
        """Append one JSON line and fsync it; called with the model's lock held."""
        path = self._meta_dir(name) / "history.jsonl"
        record = {"at": _now(), "name": name, **event}
        line = (json.dumps(record, sort_keys=True, default=str) + "\n").encode()
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        try:
            size = os.fstat(fd).st_size
            # A writer killed mid-line left a fragment: end it so this record stays whole.
            if size and _last_byte(path, size) != b"\n":
                line = b"\n" + line
            view = memoryview(line)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        if size == 0:
            _fs.fsync_dir(path.parent)

    def _read_history(self, name: str) -> list[dict[str, Any]]:
        path = self._meta_dir(name) / "history.jsonl"
        self._check_no_links(path)
        try:
            raw = _fs.read_regular(path, limit=1 << 30)
        except FileNotFoundError:
            return []
        events: list[dict[str, Any]] = []
        for line in raw.splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a line torn by a crash mid-append
            if isinstance(record, dict):
                events.append(record)
        return events

    def history(self, name: str) -> list[dict[str, Any]]:
        """All recorded events for ``name``, oldest first.

        Each event has ``at`` (UTC), ``event`` (register, promote, rollback, delete),
        ``by`` and event fields (``version``; ``from``/``to``; ``reason``).

        Raises:
            ModelNotFoundError: the registry has never seen ``name``.
        """
        validate_name(name)
        events = self._read_history(name)
        if not events and not any(
            _fs.is_real_dir(d) for d in (self._model_dir(s, name) for s in STAGES)
        ):
            raise ModelNotFoundError(
                f"Model {name!r} not found under {self._display(self.base_dir)} (no history, "
                f"no staging or production directory); check the name with "
                "`ctr-pipeline registry list`"
            )
        return events

    # --- verify / load ----------------------------------------------------------------

    def verify(
        self, name: str, version: str, stage: str = STAGING, *, raise_on_error: bool = False
    ) -> VerifyReport:
        """Recompute every file's sha256 and compare with ``MANIFEST.json``.

        Returns:
            A :class:`VerifyReport`; ``report.problems`` names each missing, changed or
            unexpected file.

        Raises:
            VersionNotFoundError: no such version directory.
            IntegrityError: with ``raise_on_error`` when a problem was found.
        """
        validate_stage(stage)
        vdir = self._version_dir(stage, name, version)
        self._check_no_links(vdir)
        if not _fs.is_real_dir(vdir):
            self._require_version(stage, name, version)  # raises the right not-found error
        problems: list[str] = []
        checked: dict[str, int] = {}
        files: dict[str, Any] = {}
        try:
            manifest = json.loads(_fs.read_regular(vdir / MANIFEST))
            files = manifest["files"]
            if not isinstance(files, dict):
                raise TypeError("files is not a mapping")
        except FileNotFoundError:
            problems.append(f"{MANIFEST}: missing (a half-written version; run gc)")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            problems.append(f"{MANIFEST}: unreadable ({exc})")
        for fname, entry in sorted(files.items()):
            if not _FILE_RE.match(fname) or not isinstance(entry, dict):
                problems.append(f"{fname!r}: invalid manifest entry")
                continue
            path = vdir / fname
            if not _fs.is_regular(path):
                kind = "missing" if not os.path.lexists(path) else "not a regular file"
                problems.append(f"{fname}: {kind}")
                continue
            digest, size = _fs.sha256_file(path)
            checked[fname] = size
            if size != entry.get("size"):
                problems.append(f"{fname}: size {size} bytes, manifest says {entry.get('size')}")
            elif digest != entry.get("sha256"):
                problems.append(
                    f"{fname}: sha256 {digest[:12]}… differs from the manifest's "
                    f"{str(entry.get('sha256'))[:12]}…"
                )
        if files:
            for extra in sorted(set(os.listdir(vdir)) - set(files) - {MANIFEST}):
                problems.append(f"{extra}: not listed in the manifest")
        report = VerifyReport(name, version, stage, vdir, tuple(problems), checked)
        if raise_on_error and problems:
            raise IntegrityError(
                f"Model {name!r} version {version} under {self._display(vdir.parent.parent)} "
                f"failed verification: {'; '.join(problems)}. Restore the files, promote the "
                "version again from staging, or re-register the run",
                problems,
            )
        return report

    def load(self, name: str, ref: str = CURRENT, stage: str | None = None) -> Any:
        """A predictor ready to score, for ``ref`` = ``'current'``, ``'latest'`` or ``'vN'``.

        The version is verified against its manifest first; then
        ``ml.serving.predictor.Predictor.load(<version>/model.pt)`` builds the predictor.

        Raises:
            NotFoundError: unknown model/version, or no current version.
            IntegrityError: a file differs from the manifest.
        """
        stage, version = self.resolve(name, ref, stage)
        report = self.verify(name, version, stage, raise_on_error=True)
        from ml.serving.predictor import Predictor  # torch is imported only here

        return Predictor.load(report.path / MODEL_FILE)

    # --- delete / gc ------------------------------------------------------------------

    def delete(
        self,
        name: str,
        version: str,
        stage: str = STAGING,
        *,
        force: bool = False,
        reason: str | None = None,
        by: str | None = None,
    ) -> Path:
        """Soft-delete a version: move it to ``<stage>/<name>/.archive/``.

        It disappears from listing, ``latest`` and ``load``; its number is never handed
        out again. Deleting the version production's ``current`` points at is refused
        unless ``force`` (then ``current`` is removed too).

        Returns:
            Where the version was archived.

        Raises:
            VersionInUseError: it is production's current version and ``force`` is False.
        """
        validate_stage(stage)
        validate_name(name)
        validate_version(version)
        with self._locked(name):
            vdir = self._require_version(stage, name, version)
            current = self.current_version(name) if stage == PRODUCTION else None
            if current == version:
                if not force:
                    raise VersionInUseError(
                        f"Model {name!r} version {version} is production's current version "
                        f"({self._display(vdir.parent / CURRENT)} -> {version}); promote or "
                        "roll back to another version first, or pass --force to delete it "
                        "and leave no current version"
                    )
                self._point_current(name, None)
            archive = vdir.parent / _ARCHIVE
            self._ensure_dir(archive)
            stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
            dest = archive / f"{version}.{stamp}-{uuid.uuid4().hex[:8]}"
            os.rename(vdir, dest)
            _fs.fsync_dir(vdir.parent)
            _fs.fsync_dir(archive)
            self._append_history(
                name,
                {
                    "event": "delete",
                    "stage": stage,
                    "version": version,
                    "archived_to": str(dest),
                    "was_current": current == version,
                    "reason": reason,
                    "by": by or default_user(),
                },
            )
            return dest

    archive = delete

    def gc(self, min_age: float = DEFAULT_GC_MIN_AGE, *, dry_run: bool = False) -> GcReport:
        """Clean up what crashed writers (or hands) left in the registry.

        Temporary directories and links of crashed writers are removed; a ``vN`` entry
        without a manifest (never made by the registry: created by hand or another tool)
        is moved to ``.archive/`` so its number stays taken. Only entries older than
        ``min_age`` seconds whose writer lock no live process holds are touched, under
        the model's lock. Archived versions are kept.
        """
        removed: list[str] = []
        archived: list[str] = []
        kept: list[str] = []
        now = time.time()
        names: set[str] = set()
        for stage in STAGES:
            stage_dir = self._stage_dir(stage)
            self._check_no_links(stage_dir)
            if stage_dir.is_dir():
                names.update(
                    e.name
                    for e in os.scandir(stage_dir)
                    if _NAME_RE.match(e.name)
                    and ".." not in e.name
                    and e.is_dir(follow_symlinks=False)
                )
        for name in sorted(names):
            with self._locked(name):
                for stage in STAGES:
                    model_dir = self._model_dir(stage, name)
                    if not _fs.is_real_dir(model_dir):
                        continue
                    for entry in os.scandir(model_dir):
                        path = Path(entry.path)
                        temporary = entry.name.startswith((_TMP_PREFIX, _LINK_PREFIX))
                        incomplete = _VERSION_RE.match(entry.name) is not None and not (
                            entry.is_dir(follow_symlinks=False) and _fs.is_regular(path / MANIFEST)
                        )
                        if not (temporary or incomplete):
                            continue
                        age = now - entry.stat(follow_symlinks=False).st_mtime
                        if age < min_age:
                            kept.append(f"{self._display(path)} (only {age:.0f} s old)")
                            continue
                        if entry.is_dir(follow_symlinks=False) and (
                            probe_lock(path / _WRITER_LOCK) == "held"
                        ):
                            kept.append(f"{self._display(path)} (a live writer holds it)")
                            continue
                        if temporary or entry.is_symlink():
                            removed.append(self._display(path))
                            if not dry_run:
                                _fs.remove_tree(path)
                        else:
                            archived.append(self._display(path))
                            if not dry_run:
                                archive = model_dir / _ARCHIVE
                                self._ensure_dir(archive)
                                stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
                                os.rename(path, archive / f"{entry.name}.incomplete-{stamp}")
                meta = self._meta_dir(name)
                if _fs.is_real_dir(meta):
                    for sub in (meta, meta / "sources"):
                        if not _fs.is_real_dir(sub):
                            continue
                        for entry in os.scandir(sub):
                            if entry.name.startswith(".") and ".tmp-" in entry.name:
                                removed.append(self._display(Path(entry.path)))
                                if not dry_run:
                                    os.unlink(entry.path)
        return GcReport(removed, archived, kept, dry_run)


# --- helpers ----------------------------------------------------------------------------


def _hold_writer_lock(tmp: Path) -> int:
    """Lock a file inside a temporary directory so gc knows its writer is alive."""
    import fcntl

    fd = os.open(tmp / _WRITER_LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def _last_byte(path: Path, size: int) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        return os.pread(fd, 1, size - 1)
    finally:
        os.close(fd)


def _load_mapping(path: Path, kind: str) -> dict[str, Any]:
    try:
        text = path.read_text()
        data = json.loads(text) if kind == "JSON" else yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
        raise InvalidRunError(
            f"{path} is not valid {kind} ({exc}); rerun training to rewrite it"
        ) from exc
    if not isinstance(data, dict):
        raise InvalidRunError(
            f"{path} must hold a {kind} mapping, got {type(data).__name__}; rerun training"
        )
    return data


def _replay(events: list[dict[str, Any]]) -> list[str]:
    """The stack of production versions implied by the history (top = current)."""
    stack: list[str] = []
    for ev in events:
        kind, to = ev.get("event"), ev.get("to")
        if not isinstance(to, str):
            continue
        if kind == "promote":
            stack.append(to)
        elif kind == "rollback":
            while stack and stack[-1] != to:
                stack.pop()
            if not stack:
                stack.append(to)
    return stack


def _project_commit() -> str | None:
    try:
        return git_commit(paths.base_dir())
    except paths.BaseDirError:
        return None
