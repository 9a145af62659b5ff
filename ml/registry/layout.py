"""The registry's on-disk layout: every file and directory name, path helpers, validation.

Under the registry root (``models/`` in the base directory by default)::

    models/
    ├── staging/<name>/
    │   ├── v1/  model.pt config.yaml metrics.json metadata.json [extra files] MANIFEST.json
    │   ├── v2/  ...
    │   ├── .archive/v3.<stamp>-<id>/   soft-deleted versions (never listed, never reused)
    │   └── .tmp-<id>/                  a version being written (ignored by every reader)
    ├── production/<name>/
    │   ├── v2/  (a verified copy of staging v2)
    │   ├── .current-<id>               a link being swapped in (ignored by every reader)
    │   └── current -> v2               relative symlink, swapped atomically
    └── .registry/<name>/
        ├── lock                flock'ed by every writer of <name> (see _lock.py)
        ├── writers/<id>        flock'ed by the live writer of .tmp-<id> (see _lock.py)
        ├── history.jsonl       append-only event log (see journal.py)
        ├── intent.json         the operation in flight, for recovery (see recovery.py)
        ├── last_version        highest number handed out (written before a purge)
        ├── index.jsonl         one line of facts per published version (see index.py)
        └── published-<stage>   version numbers the registry published in <stage>

Names are validated before any path is built, so nothing outside the root is touched.
Nothing below the root is a symbolic link: :meth:`Layout.check_no_links` refuses one.
"""

from __future__ import annotations

import os
import re
import stat
import uuid
from pathlib import Path

from ml import paths
from ml.errors import (
    IntegrityError,
    InvalidNameError,
    ModelNotFoundError,
    RegistryAccessError,
    VersionNotFoundError,
)
from ml.fsutil import display_path
from ml.registry import _fs
from ml.training.run_dir import CONFIG_YAML, METRICS_JSON, MODEL_BEST

STAGING = "staging"
PRODUCTION = "production"
STAGES = (STAGING, PRODUCTION)

NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}"
_NAME_RE = re.compile(NAME_PATTERN + r"\Z")
# Canonical numbers only: "v07" would alias "v7". At most 18 digits (fits in an int64).
_VERSION_RE = re.compile(r"v([1-9][0-9]{0,17})\Z")
MAX_VERSION_NUMBER = 10**18 - 1
#: an archived entry: ``v3.20261126T050000Z-1a2b3c4d`` (delete) or ``v3.incomplete-...`` (gc)
ARCHIVED_RE = re.compile(r"v([1-9][0-9]{0,17})(?:\..*)?\Z")
_FILE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}\Z")

# --- a version directory --------------------------------------------------------------
MANIFEST = "MANIFEST.json"
METADATA = "metadata.json"
MODEL_FILE = "model.pt"
#: run directory file -> registered file name (the run's names belong to ml.training.run_dir)
RUN_ARTIFACTS = {MODEL_BEST: MODEL_FILE, CONFIG_YAML: CONFIG_YAML, METRICS_JSON: METRICS_JSON}
#: file names the registry writes itself; ``extra_files`` may not use them
RESERVED_FILES = frozenset({MANIFEST, METADATA, *RUN_ARTIFACTS.values()})
FORMAT_VERSION = 1

# --- a model directory ----------------------------------------------------------------
CURRENT = "current"
TMP_PREFIX = ".tmp-"
LINK_PREFIX = ".current-"
ARCHIVE = ".archive"
#: the writer lock inside a temporary directory, as registries before the writers/ dir had it
LEGACY_WRITER_LOCK = ".writer.lock"

# --- bookkeeping: .registry/<name>/ -----------------------------------------------------
META = ".registry"
LOCK = "lock"
WRITERS = "writers"
HISTORY = "history.jsonl"
INTENT = "intent.json"
LAST_VERSION = "last_version"
INDEX = "index.jsonl"
PUBLISHED_PREFIX = "published-"


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
    """Return ``stage`` if it is ``staging`` or ``production``, else raise."""
    if stage not in STAGES:
        raise InvalidNameError(f"invalid stage {stage!r}: use one of {', '.join(STAGES)}")
    return stage


def is_file_name(name: str) -> bool:
    """True for a plain file name a manifest may list (no path, no leading dot)."""
    return isinstance(name, str) and _FILE_RE.match(name) is not None


def is_model_name(name: str) -> bool:
    return _NAME_RE.match(name) is not None and ".." not in name


def version_number(entry_name: str) -> int | None:
    """``7`` for ``"v7"``; None for anything that is not a canonical version name."""
    # Cheaper than the regex at 10,000 entries; the same rule as _VERSION_RE.
    n = entry_name
    if (
        n[:1] != "v"
        or not 2 <= len(n) <= 19
        or n[1] == "0"
        or not (n[1:].isascii() and n[1:].isdigit())
    ):
        return None
    return int(n[1:])


def _check_root(root: Path) -> None:
    """Refuse a root that is (or lies below) something other than a directory.

    A root that does not exist yet is fine (the first writer creates it); a regular file,
    a device or a socket there would make every command fail later or, worse, answer
    "no models" as if the registry were empty.
    """
    for path in (root, *root.parents):
        try:
            mode = os.stat(path).st_mode
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError:
            return  # unreadable: the first real access reports it with its cause
        if stat.S_ISDIR(mode):
            return
        what = "a regular file" if stat.S_ISREG(mode) else "not a directory"
        blame = "" if path == root else f": {display_path(path)} is {what}"
        why = f" is {what}" if path == root else " cannot be created"
        raise RegistryAccessError(
            f"registry root {display_path(root)}{why}{blame}; point --base-dir at a "
            "directory (or at a path that does not exist yet)"
        )


class Layout:
    """Paths of one registry root; every path helper validates what it is given."""

    def __init__(self, base_dir: str | os.PathLike[str]) -> None:
        if not str(base_dir).strip():
            raise InvalidNameError(
                "the registry root is empty; pass a directory such as 'models' "
                "(relative paths resolve against $CTR_PIPELINE_HOME)"
            )
        self.base_dir = Path(os.path.realpath(paths.resolve(base_dir)))
        _check_root(self.base_dir)

    # --- paths ------------------------------------------------------------------------

    def stage_dir(self, stage: str) -> Path:
        return self.base_dir / validate_stage(stage)

    def model_dir(self, stage: str, name: str) -> Path:
        return self.stage_dir(stage) / validate_name(name)

    def version_dir(self, stage: str, name: str, version: str) -> Path:
        return self.model_dir(stage, name) / validate_version(version)

    def current_link(self, name: str) -> Path:
        return self.model_dir(PRODUCTION, name) / CURRENT

    def meta_dir(self, name: str) -> Path:
        return self.base_dir / META / validate_name(name)

    def meta_file(self, name: str, file: str) -> Path:
        """``.registry/<name>/<file>`` for one of the bookkeeping names above."""
        return self.meta_dir(name) / file

    def published_file(self, stage: str, name: str) -> Path:
        return self.meta_dir(name) / f"{PUBLISHED_PREFIX}{validate_stage(stage)}"

    def writer_lock(self, name: str, tmp: Path) -> Path:
        """The lock file that says the writer of temporary directory ``tmp`` is alive."""
        return self.meta_dir(name) / WRITERS / tmp.name.removeprefix(TMP_PREFIX)

    def new_tmp(self, stage: str, name: str) -> Path:
        """A fresh temporary directory name beside the versions (not created)."""
        return self.model_dir(stage, name) / f"{TMP_PREFIX}{uuid.uuid4().hex}"

    def display(self, path: str | os.PathLike[str]) -> str:
        return display_path(path)

    # --- safety -----------------------------------------------------------------------

    def check_no_links(self, path: Path) -> None:
        """Refuse a symbolic link anywhere between the root and ``path`` (inclusive)."""
        cur = self.base_dir
        for part in path.relative_to(self.base_dir).parts:
            cur = cur / part
            try:
                mode = os.lstat(cur).st_mode
            except (FileNotFoundError, NotADirectoryError):
                return
            if stat.S_ISLNK(mode):
                raise IntegrityError(
                    f"{self.display(cur)} is a symbolic link; the registry never follows "
                    f"links below {self.base_dir}. Replace it with a real directory"
                )

    def ensure_dir(self, path: Path) -> None:
        """Create ``path`` (and parents) below the root, refusing links on the way."""
        self.check_no_links(path)
        if not _fs.is_real_dir(path):
            path.mkdir(parents=True, exist_ok=True)
            self.check_no_links(path)

    # --- scanning ---------------------------------------------------------------------

    def model_names(self, stage: str) -> list[str]:
        """Names of the model directories in ``stage`` (sorted; links left out)."""
        stage_dir = self.stage_dir(stage)
        self.check_no_links(stage_dir)
        try:
            it = os.scandir(stage_dir)
        except (FileNotFoundError, NotADirectoryError):
            return []
        with it:
            return sorted(
                e.name for e in it if is_model_name(e.name) and e.is_dir(follow_symlinks=False)
            )

    def version_numbers(self, stage: str, name: str, *, dirs_only: bool = True) -> list[int]:
        """Numbers of the ``vN`` entries in ``<stage>/<name>``, ascending.

        One ``os.scandir`` and the entry types it returns, no per-version ``stat``.
        """
        model_dir = self.model_dir(stage, name)
        self.check_no_links(model_dir)
        nums: list[int] = []
        try:
            it = os.scandir(model_dir)
        except (FileNotFoundError, NotADirectoryError):
            return nums
        with it:
            for entry in it:
                n = entry.name  # inline version_number(): this loop runs 10,000 times
                if (
                    n[:1] == "v"
                    and 2 <= len(n) <= 19
                    and n[1] != "0"
                    and n[1:].isascii()
                    and n[1:].isdigit()
                    and (not dirs_only or entry.is_dir(follow_symlinks=False))
                ):
                    nums.append(int(n[1:]))
        nums.sort()
        return nums

    def has_manifest(self, stage: str, name: str, version: str) -> bool:
        """True when the version directory is real and holds its manifest (is complete)."""
        vdir = self.version_dir(stage, name, version)
        return _fs.is_real_dir(vdir) and _fs.is_regular(vdir / MANIFEST)

    def model_not_found(self, name: str, stage: str) -> ModelNotFoundError:
        hint = (
            f"register one with `ctr-pipeline registry register RUN_DIR --name {name}`"
            if stage == STAGING
            else f"promote one with `ctr-pipeline registry promote {name} vN`"
        )
        others = [
            n for n in self.model_names(stage) if n != name and self.version_numbers(stage, n)
        ]
        known = f" (models there: {', '.join(others[:10])})" if others else ""
        where = self.display(self.stage_dir(stage))
        return ModelNotFoundError(f"Model {name!r} has no version under {where}{known}; {hint}")

    def require_version(self, stage: str, name: str, version: str) -> Path:
        """The directory of a complete version, or the right not-found error."""
        vdir = self.version_dir(stage, name, version)
        self.check_no_links(vdir)
        if self.has_manifest(stage, name, version):
            return vdir
        nums = [n for n in self.version_numbers(stage, name) if n != int(version[1:])]
        if not nums:
            raise self.model_not_found(name, stage)
        shown = ", ".join(f"v{n}" for n in nums[-10:])
        raise VersionNotFoundError(
            f"Model {name!r} version {version} not found under "
            f"{self.display(self.stage_dir(stage))}; available: {shown}"
        )
