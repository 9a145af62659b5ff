"""ml.pipeline.data: generate the default synthetic features only, never a user's."""

from __future__ import annotations

import hashlib
from pathlib import Path

from ml.pipeline.data import ensure_features


def _digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_generates_the_default_dir_only_when_missing(project_home: Path) -> None:
    lines = ensure_features("data/features/v1", rows=2000)
    assert lines[0].startswith("📦 No features at") and "2,000" in lines[0]
    assert (project_home / "data" / "features" / "v1" / "schema.json").is_file()
    assert ensure_features("data/features/v1", rows=2000) == [
        "📦 Using the existing features in data/features/v1"
    ]


def test_never_touches_a_user_directory(project_home: Path) -> None:
    mine = project_home / "data" / "mine"
    (mine / "train").mkdir(parents=True)
    (mine / "train" / "part-0.parquet").write_bytes(b"PAR1 user bytes")
    (mine / "notes.txt").write_text("keep me")
    before = _digests(mine)
    assert "never generated" in ensure_features(mine, rows=2000)[0]
    assert "never generated" in ensure_features("data/other", rows=2000)[0]
    assert _digests(mine) == before
    assert not (project_home / "data" / "other").exists()


def test_an_existing_default_dir_with_user_files_is_left_alone(project_home: Path) -> None:
    default = project_home / "data" / "features" / "v1"
    default.mkdir(parents=True)
    (default / "clicks.csv").write_text("label,a\n1,x\n")
    before = _digests(default)
    assert "did not write" in ensure_features("data/features/v1", rows=2000)[0]
    assert _digests(default) == before
