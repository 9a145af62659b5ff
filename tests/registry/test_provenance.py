from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ml.registry import provenance

SHA = "a" * 40


def _package(root: Path) -> Path:
    pkg = root / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("x = 1\n")
    (pkg / "sub" / "mod.py").write_text("y = 2\n")
    return pkg


def test_git_commit_reads_a_branch_ref(tmp_path: Path) -> None:
    git = tmp_path / ".git"
    (git / "refs" / "heads").mkdir(parents=True)
    (git / "HEAD").write_text("ref: refs/heads/main\n")
    (git / "refs" / "heads" / "main").write_text(SHA + "\n")
    assert provenance.git_commit(tmp_path) == SHA


def test_git_commit_reads_packed_refs_and_detached_heads(tmp_path: Path) -> None:
    git = tmp_path / ".git"
    git.mkdir()
    (git / "HEAD").write_text("ref: refs/heads/main\n")
    (git / "packed-refs").write_text(f"# pack-refs\n{SHA} refs/heads/main\n")
    assert provenance.git_commit(tmp_path) == SHA
    (git / "HEAD").write_text("b" * 40 + "\n")
    assert provenance.git_commit(tmp_path) == "b" * 40


def test_git_commit_follows_a_worktree_gitdir(tmp_path: Path) -> None:
    common = tmp_path / "main" / ".git"
    wt_git = common / "worktrees" / "wt"
    wt_git.mkdir(parents=True)
    (wt_git / "HEAD").write_text("ref: refs/heads/feature\n")
    (wt_git / "commondir").write_text("../..\n")
    (common / "refs" / "heads").mkdir(parents=True)
    (common / "refs" / "heads" / "feature").write_text(SHA + "\n")
    checkout = tmp_path / "wt"
    checkout.mkdir()
    (checkout / ".git").write_text(f"gitdir: {wt_git}\n")
    assert provenance.git_commit(checkout) == SHA


def test_git_commit_outside_a_checkout_is_none(tmp_path: Path) -> None:
    assert provenance.git_commit(tmp_path) is None


def test_canonical_digest_ignores_key_order() -> None:
    a = provenance.canonical_digest({"a": 1, "b": {"c": [1, 2]}})
    assert a == provenance.canonical_digest({"b": {"c": [1, 2]}, "a": 1})
    assert a != provenance.canonical_digest({"a": 2, "b": {"c": [1, 2]}})


def _metadata(run_info: dict[str, Any], **kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "name": "m",
        "created_by": "me@host",
        "run_dir": "/runs/r",
        "model_sha256": "f" * 64,
        "dag_id": None,
        "run_id": None,
        "run_info": run_info,
        "metrics": {"test_auc": 0.7, "history": [1, 2]},
        "config": {"seed": 1},
        "config_sha256": "0" * 64,
    }
    args.update(kw)
    return provenance.build_metadata(**args)


def test_build_metadata_prefers_the_runs_recorded_digests() -> None:
    info = {
        "config_digest": "c" * 64,
        "code_version": {"package": "0.1.0", "source_digest": "e" * 64, "extra": 1},
        "data_fingerprint": {"digest": "d" * 64},
        "dag_id": "training_pipeline",
        "run_id": "manual__1",
        "seed": 7,
    }
    meta = _metadata(info)
    assert meta["config_digest"] == "c" * 64
    assert meta["code_version"]["source_digest"] == "e" * 64
    assert "git_commit" in meta["code_version"] and "extra" not in meta["code_version"]
    assert (meta["source"]["dag_id"], meta["source"]["run_id"]) == (
        "training_pipeline",
        "manual__1",
    )
    assert provenance.lineage_digests(meta) == ("d" * 64, "c" * 64, "e" * 64)
    assert meta["metrics"] == {"test_auc": 0.7}
    assert meta["training"]["seed"] == 7


def test_build_metadata_without_recorded_digests_hashes_the_config() -> None:
    meta = _metadata({}, dag_id="d", run_id="r")
    assert meta["config_digest"] == provenance.canonical_digest({"seed": 1})
    assert meta["code_version"]["source_digest"] is None
    assert provenance.lineage_digests(meta) == (None, meta["config_digest"], None)
    assert (meta["source"]["dag_id"], meta["source"]["run_id"]) == ("d", "r")


@pytest.mark.parametrize("dist", ["torch", "numpy", "pandas", "python"])
def test_library_versions_are_read_without_importing(dist: str) -> None:
    assert provenance.library_versions()[dist]
