from __future__ import annotations

import errno
import hashlib
import os
import stat
from pathlib import Path

import pytest

from ml.registry import _fs


def test_copy_many_hashed_copies_and_hashes_each_file(tmp_path: Path) -> None:
    srcs = [tmp_path / "a", tmp_path / "b"]
    srcs[0].write_bytes(os.urandom(3 << 20))  # more than one chunk
    srcs[1].write_bytes(b"small")
    (tmp_path / "out").mkdir()
    pairs = [(s, tmp_path / "out" / s.name) for s in srcs]
    results = _fs.copy_many_hashed(pairs)
    for (src, dst), (digest, size) in zip(pairs, results, strict=True):
        assert dst.read_bytes() == src.read_bytes()
        assert digest == hashlib.sha256(src.read_bytes()).hexdigest()
        assert size == src.stat().st_size


def test_copy_keeps_a_private_source_private(tmp_path: Path) -> None:
    src = tmp_path / "secret"
    src.write_bytes(b"weights")
    src.chmod(0o600)
    _fs.copy_hashed(src, tmp_path / "copy")
    assert stat.S_IMODE((tmp_path / "copy").stat().st_mode) == 0o600
    _fs.copy_hashed(src, tmp_path / "copy2", mode=0o640)
    assert stat.S_IMODE((tmp_path / "copy2").stat().st_mode) == 0o640


def test_copy_refuses_a_linked_source(tmp_path: Path) -> None:
    (tmp_path / "real").write_bytes(b"x")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(OSError) as info:
        _fs.copy_hashed(tmp_path / "link", tmp_path / "dst")
    assert info.value.errno == errno.ELOOP
    assert info.value.filename == str(tmp_path / "link")


def test_copy_refuses_an_existing_destination(tmp_path: Path) -> None:
    (tmp_path / "src").write_bytes(b"x")
    (tmp_path / "dst").write_bytes(b"old")
    with pytest.raises(FileExistsError):
        _fs.copy_hashed(tmp_path / "src", tmp_path / "dst")
    assert (tmp_path / "dst").read_bytes() == b"old"


def test_copy_failure_on_the_destination_names_the_destination(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "src").write_bytes(b"x" * 1000)

    def full(*args: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "copy_file_range", full)
    with pytest.raises(OSError) as info:
        _fs.copy_hashed(tmp_path / "src", tmp_path / "dst")
    assert info.value.errno == errno.ENOSPC
    assert info.value.filename == str(tmp_path / "dst")


def test_copy_falls_back_when_copy_file_range_is_unsupported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "src").write_bytes(b"abc" * 1000)

    def unsupported(*args: object) -> int:
        raise OSError(errno.EXDEV, "cross-device")

    monkeypatch.setattr(os, "copy_file_range", unsupported)
    _fs.copy_hashed(tmp_path / "src", tmp_path / "dst")
    assert (tmp_path / "dst").read_bytes() == b"abc" * 1000


def test_append_line_starts_a_fresh_line_after_a_torn_one(tmp_path: Path) -> None:
    log = tmp_path / "log"
    _fs.append_line(log, b"one\n")
    with log.open("ab") as f:
        f.write(b'{"torn')
    _fs.append_line(log, b"two\n")
    assert log.read_bytes().splitlines() == [b"one", b'{"torn', b"two"]


def test_read_regular_refuses_links_and_large_files(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"12345")
    (tmp_path / "l").symlink_to(tmp_path / "f")
    assert _fs.read_regular(tmp_path / "f") == b"12345"
    with pytest.raises(OSError) as info:
        _fs.read_regular(tmp_path / "l")
    assert info.value.errno == errno.ELOOP
    with pytest.raises(OSError, match="larger than 4 bytes"):
        _fs.read_regular(tmp_path / "f", limit=4)


def test_remove_tree_removes_a_link_not_its_target(tmp_path: Path) -> None:
    (tmp_path / "target").mkdir()
    (tmp_path / "target" / "keep").write_text("x")
    (tmp_path / "link").symlink_to(tmp_path / "target")
    _fs.remove_tree(tmp_path / "link")
    assert not os.path.lexists(tmp_path / "link")
    assert (tmp_path / "target" / "keep").exists()
    _fs.remove_tree(tmp_path / "missing")  # nothing there: nothing to do
