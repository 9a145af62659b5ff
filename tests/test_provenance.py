"""ml.provenance: the identity of the code that produced an artifact."""

from __future__ import annotations

import hashlib
from pathlib import Path

import ml
from ml import provenance


def _package(root: Path) -> Path:
    pkg = root / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("x = 1\n")
    (pkg / "sub" / "mod.py").write_text("y = 2\n")
    return pkg


def test_source_digest_is_the_documented_hash(tmp_path: Path) -> None:
    pkg = _package(tmp_path)
    h = hashlib.sha256()
    for rel, data in (("__init__.py", b"x = 1\n"), ("sub/mod.py", b"y = 2\n")):
        h.update(f"{rel}\0{len(data)}\0".encode() + data)
    assert provenance.source_digest(pkg) == h.hexdigest()


def test_source_digest_sees_edits_and_renames_not_caches(tmp_path: Path) -> None:
    pkg = _package(tmp_path)
    before = provenance.source_digest(pkg)
    (pkg / "__pycache__").mkdir()
    (pkg / "__pycache__" / "junk.py").write_text("cached")
    (pkg / "data.json").write_text("{}")
    assert provenance.source_digest(pkg) == before
    (pkg / "sub" / "mod.py").write_text("y = 3\n")
    edited = provenance.source_digest(pkg)
    assert edited != before
    (pkg / "sub" / "mod.py").rename(pkg / "sub" / "other.py")
    assert provenance.source_digest(pkg) != edited


def test_code_version_describes_the_running_package() -> None:
    version = provenance.code_version()
    assert version["package"] == ml.__version__
    assert version["source_digest"] == provenance.source_digest(Path(ml.__file__).parent)
    assert set(version) == {"package", "source_digest", "git_commit"}
    assert provenance.code_version() == version
