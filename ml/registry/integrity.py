"""Checking a version against its manifest: ``verify``, the promotion copy, ``load``.

One rule, applied everywhere a version is trusted: every file the manifest lists is a
regular file (not a link) with the listed size and sha256, and the directory holds
nothing the manifest does not list. ``verify`` reports it, promotion applies it to the
staging version while copying it, and ``load`` applies it before unpickling anything.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ml import errors as ml_errors
from ml.errors import IntegrityError, SourceChangedError
from ml.fsutil import sha256_file
from ml.registry import _fs, catalog
from ml.registry.layout import MANIFEST, MODEL_FILE, Layout, is_file_name, validate_stage


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
            **asdict(self),
            "path": str(self.path),
            "ok": self.ok,
            "problems": list(self.problems),
        }


def manifest_files(vdir: Path, problems: list[str]) -> dict[str, Any]:
    """The manifest's ``files`` mapping; a problem is added when it cannot be read."""
    try:
        files = json.loads(_fs.read_regular(vdir / MANIFEST))["files"]
        if not isinstance(files, dict):
            raise TypeError("files is not a mapping")
        return files
    except FileNotFoundError:
        problems.append(f"{MANIFEST}: missing (a half-written version; run gc)")
    except OSError as exc:
        if ml_errors.is_environment_oserror(exc):
            raise
        problems.append(f"{MANIFEST}: unreadable ({ml_errors.describe_oserror(exc)})")
    except (ValueError, KeyError, TypeError) as exc:
        problems.append(f"{MANIFEST}: unreadable ({exc})")
    return {}


def check_version_dir(
    vdir: Path, *, copy_to: Path | None = None
) -> tuple[list[str], dict[str, int], dict[str, Any]]:
    """Compare ``vdir`` with its manifest; optionally copy each file into ``copy_to``.

    Returns:
        ``(problems, sizes of the files checked, the manifest's files)``. Failures to
        write ``copy_to`` and I/O errors of the disk are raised, not reported: they say
        nothing about the version.
    """
    problems: list[str] = []
    checked: dict[str, int] = {}
    files = manifest_files(vdir, problems)
    for fname, entry in sorted(files.items()):
        if not is_file_name(fname) or not isinstance(entry, dict):
            problems.append(f"{fname!r}: invalid manifest entry")
            continue
        path = vdir / fname
        if not _fs.is_regular(path):
            kind = "missing" if not os.path.lexists(path) else "not a regular file"
            problems.append(f"{fname}: {kind}")
            continue
        try:
            if copy_to is None:
                digest, size = sha256_file(path, follow_links=False)
            else:
                digest, size = _fs.copy_hashed(path, copy_to / fname)
        except SourceChangedError as exc:
            problems.append(f"{fname}: changed while it was read ({exc})")
            continue
        except OSError as exc:
            if exc.filename != str(path) or ml_errors.is_environment_oserror(exc):
                raise
            problems.append(f"{fname}: unreadable ({ml_errors.describe_oserror(exc)})")
            continue
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
    return problems, checked, files


def verify(
    layout: Layout, name: str, version: str, stage: str, *, raise_on_error: bool = False
) -> VerifyReport:
    """See :meth:`ml.registry.model_registry.ModelRegistry.verify`."""
    validate_stage(stage)
    vdir = layout.version_dir(stage, name, version)
    layout.check_no_links(vdir)
    if not _fs.is_real_dir(vdir):
        layout.require_version(stage, name, version)  # raises the right not-found error
    problems, checked, _ = check_version_dir(vdir)
    report = VerifyReport(name, version, stage, vdir, tuple(problems), checked)
    if raise_on_error and problems:
        raise IntegrityError(
            f"Model {name!r} version {version} under {layout.display(vdir.parent.parent)} "
            f"failed verification: {'; '.join(problems)}. Restore the files, promote the "
            "version again from staging, or re-register the run",
            problems,
        )
    return report


def load(layout: Layout, name: str, ref: str, stage: str | None) -> Any:
    """Verify the version ``ref`` resolves to, then build its predictor."""
    stage, version = catalog.resolve(layout, name, ref, stage)
    report = verify(layout, name, version, stage, raise_on_error=True)
    from ml.serving.predictor import Predictor  # torch is imported only here

    return Predictor.load(report.path / MODEL_FILE)
