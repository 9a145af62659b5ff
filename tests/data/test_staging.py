from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from ml.data import staging
from ml.errors import GenerationError, StorageError


def _ok() -> None:
    return None


def test_staged_dir_becomes_target(tmp_path: Path) -> None:
    target = tmp_path / "out" / "f"
    with staging.staged_features_dir(target, _ok) as tmp:
        assert tmp.parent == target.parent and tmp.name.startswith(".f.tmp-")
        (tmp / "a.txt").write_text("new")
    assert (target / "a.txt").read_text() == "new"
    assert [p.name for p in target.parent.iterdir()] == ["f"]


def test_staged_dir_replaces_existing_target_after_success(tmp_path: Path) -> None:
    target = tmp_path / "f"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with staging.staged_features_dir(target, _ok) as tmp:
        (tmp / "new.txt").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == ["new.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["f"]


def test_staged_dir_failure_keeps_target_and_removes_temp(tmp_path: Path) -> None:
    target = tmp_path / "f"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(RuntimeError, match="boom"), staging.staged_features_dir(target, _ok) as tmp:
        (tmp / "new.txt").write_text("new")
        raise RuntimeError("boom")
    assert (target / "old.txt").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f"]


def test_staged_dir_checks_again_before_rename(tmp_path: Path) -> None:
    target = tmp_path / "f"
    calls: list[int] = []

    def check() -> None:
        calls.append(1)
        if len(calls) == 2:
            raise GenerationError("someone wrote there meanwhile")

    with (
        pytest.raises(GenerationError, match="meanwhile"),
        staging.staged_features_dir(target, check) as tmp,
    ):
        (tmp / "x").write_text("x")
    assert not target.exists() and list(tmp_path.iterdir()) == []


def test_staged_dir_disk_full_is_storage_error(tmp_path: Path) -> None:
    target = tmp_path / "f"
    with (
        pytest.raises(StorageError, match=r"writing the features directory .*No space left"),
        staging.staged_features_dir(target, _ok),
    ):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert list(tmp_path.iterdir()) == []


def test_remove_stale_temp_dirs_of_dead_processes_only(tmp_path: Path) -> None:
    target = tmp_path / "f"
    dead_tmp = tmp_path / ".f.tmp-999999999-abcd1234"
    dead_old = tmp_path / ".f.old-999999999-abcd1234"
    alive = tmp_path / f".f.tmp-{os.getppid()}-abcd1234"
    other = tmp_path / ".f.backup-999999999-x"
    for d in (dead_tmp, dead_old, alive, other):
        d.mkdir()
        (d / "junk").write_text("x")
    staging.remove_stale_temp_dirs(target)
    assert not dead_tmp.exists() and not dead_old.exists()
    assert alive.exists() and other.exists()


def test_fsync_tree_walks_everything(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "f.txt").write_text("x")
    seen: list[str] = []
    monkeypatch.setattr(staging, "fsync_path", lambda p: seen.append(Path(p).name))
    monkeypatch.setattr(staging, "fsync_dir", lambda p: seen.append(Path(p).name))
    staging.fsync_tree(tmp_path)
    assert seen == ["f.txt", "b", "a", tmp_path.name]
