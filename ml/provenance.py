"""Which code produced an artifact: the package version, a digest of the ``ml/`` sources,
and the git commit when there is one.

A git commit is absent outside a checkout and blind to local edits, so the identity of
the code is the digest of the sources (:func:`source_digest`). Runs record
:func:`code_version` in ``run.json``; the registry copies it into a version's metadata,
and "nothing changed since vN" compares it.
"""

from __future__ import annotations

import functools
import hashlib
import re
from pathlib import Path

import ml

ML_DIR = Path(ml.__file__).resolve().parent


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


def source_digest(package_dir: Path | None = None) -> str:
    """sha256 over the package's ``*.py`` files: for each, in sorted order of its path
    relative to ``package_dir`` (POSIX form), the path, a NUL, the byte count, a NUL and
    the bytes. Caches, data files and anything but ``.py`` sources do not count."""
    root = package_dir or ML_DIR
    files = sorted(
        (p.relative_to(root).as_posix(), p)
        for p in root.rglob("*.py")
        if "__pycache__" not in p.parts and p.is_file()
    )
    h = hashlib.sha256()
    for rel, path in files:
        data = path.read_bytes()
        h.update(f"{rel}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()


def code_version() -> dict[str, str | None]:
    """``{"package": ml.__version__, "source_digest": ..., "git_commit": ... | None}``.

    ``source_digest`` is :func:`source_digest` of the ``ml`` package this process runs;
    ``git_commit`` the commit checked out where that package lives, if any.
    """
    return dict(_running_code_version())


@functools.lru_cache(maxsize=1)
def _running_code_version() -> tuple[tuple[str, str | None], ...]:
    """The running package's identity, computed once per process (its sources do not
    change under a running process)."""
    return (
        ("package", ml.__version__),
        ("source_digest", source_digest(ML_DIR)),
        ("git_commit", git_commit(ML_DIR.parent)),
    )
