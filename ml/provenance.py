"""Which code produced an artifact: the package version and a digest of the ``ml/`` sources.

A git commit is absent outside a checkout and blind to local edits, so the identity of
the code is the sha256 over every ``ml/**/*.py`` file (sorted relative paths and bytes).
Runs record it in ``run.json``; the registry copies it into a version's metadata, and
"nothing changed since vN" compares it.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Any

import ml

ML_DIR = Path(ml.__file__).resolve().parent


@functools.lru_cache(maxsize=1)
def source_digest() -> str:
    """sha256 over the relative path and bytes of every ``ml/**/*.py`` file."""
    h = hashlib.sha256()
    for path in sorted(ML_DIR.rglob("*.py")):
        rel = path.relative_to(ML_DIR).as_posix()
        if "__pycache__" in rel:
            continue
        h.update(rel.encode() + b"\0")
        h.update(path.read_bytes() + b"\0")
    return h.hexdigest()


def code_version() -> dict[str, Any]:
    """``{"package": ml.__version__, "source_digest": ...}`` of the running code."""
    return {"package": ml.__version__, "source_digest": source_digest()}
