"""ml.fsutil: atomic writes, sha256, JSON reading, display paths."""

from __future__ import annotations

import errno
import hashlib
import os
from pathlib import Path
from typing import IO

import pytest

from ml import fsutil
from ml.errors import StorageError, UserError


def test_atomic_write_replaces_or_leaves_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "a" / "file.json"
    fsutil.atomic_write_json(target, {"a": 1})
    assert target.read_text() == '{\n  "a": 1\n}\n'

    def boom(fh: IO[bytes]) -> None:
        fh.write(b"half")
        raise RuntimeError("crash mid-write")

    with pytest.raises(RuntimeError):
        fsutil.atomic_write(target, boom)
    assert target.read_text() == '{\n  "a": 1\n}\n'
    assert [p.name for p in target.parent.iterdir()] == ["file.json"]  # no temp left


def test_atomic_write_disk_full_is_a_storage_error_naming_the_file(tmp_path: Path) -> None:
    def full(fh: IO[bytes]) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(StorageError, match=r"file\.bin failed: No space left on device"):
        fsutil.atomic_write(tmp_path / "file.bin", full)
    assert list(tmp_path.iterdir()) == []


def test_sha256_file_and_links(tmp_path: Path) -> None:
    data = os.urandom(3 * fsutil.HASH_CHUNK + 7)
    (tmp_path / "f").write_bytes(data)
    assert fsutil.sha256_file(tmp_path / "f") == (hashlib.sha256(data).hexdigest(), len(data))
    (tmp_path / "link").symlink_to(tmp_path / "f")
    with pytest.raises(OSError):
        fsutil.sha256_file(tmp_path / "link", follow_links=False)


def test_read_json_object_says_which_problem(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    with pytest.raises(UserError, match="does not exist; fix it"):
        fsutil.read_json_object(path, hint="fix it")
    path.write_text("{oops")
    with pytest.raises(UserError, match="not valid JSON"):
        fsutil.read_json_object(path)
    path.write_text("[]")
    with pytest.raises(UserError, match="must hold a JSON object, got list"):
        fsutil.read_json_object(path)
    path.write_bytes(b"\xff\xfe")
    with pytest.raises(UserError, match="not UTF-8"):
        fsutil.read_json_object(path)
    path.write_text('{"ok": true}')
    assert fsutil.read_json_object(path) == {"ok": True}


def test_read_json_object_unreadable_is_not_called_invalid_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "x.json"
    path.write_text("{}")

    def denied(self: Path, *args: object, **kwargs: object) -> str:
        raise PermissionError(errno.EACCES, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_text", denied)  # root reads any file: simulate 0600
    with pytest.raises(UserError, match="cannot be read: Permission denied"):
        fsutil.read_json_object(path)


def test_display_path_relative_inside_the_base_dir(project_home: Path) -> None:
    assert fsutil.display_path(project_home / "data" / "x") == "data/x"
    assert fsutil.display_path("data/x") == "data/x"
    assert fsutil.display_path("/elsewhere/y") == "/elsewhere/y"


def test_utc_now_format() -> None:
    now = fsutil.utc_now()
    assert now.endswith("Z") and "T" in now and len(now) == 24
