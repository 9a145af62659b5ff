"""ml.provenance: the identity of the code that produced an artifact."""

from __future__ import annotations

import ml
from ml import provenance


def test_code_version_names_package_and_source_digest() -> None:
    version = provenance.code_version()
    assert version["package"] == ml.__version__
    assert len(version["source_digest"]) == 64
    assert provenance.code_version() == version  # stable within a process


def test_source_digest_changes_with_the_sources(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "a.py").write_text("x = 1\n")
    monkeypatch.setattr(provenance, "ML_DIR", tmp_path)
    provenance.source_digest.cache_clear()
    first = provenance.source_digest()
    (tmp_path / "a.py").write_text("x = 2\n")
    provenance.source_digest.cache_clear()
    assert provenance.source_digest() != first
    provenance.source_digest.cache_clear()
