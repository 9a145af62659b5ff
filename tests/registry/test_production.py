from __future__ import annotations

import errno
import multiprocessing
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ml.errors import (
    AlreadyExistsError,
    IntegrityError,
    InvalidNameError,
    ModelNotFoundError,
    NoPreviousVersionError,
    RegistryStorageError,
    VersionNotFoundError,
)
from ml.registry import _fs, cleanup
from ml.registry._lock import FileLock
from ml.registry.layout import Layout
from ml.registry.model_registry import ModelRegistry
from testkit.registry import check_consistent, flip_byte

MakeRun = Callable[..., Path]


def test_promote_copies_and_points_current_relative(
    registry: ModelRegistry, make_run: MakeRun, home: Path
) -> None:
    for _ in range(3):
        registry.register(make_run())
    promo = registry.promote_to_production("ctr_model", "v3")
    prod = home / "models" / "production" / "ctr_model"
    assert (promo.version, promo.previous, promo.changed) == ("v3", None, True)
    assert os.readlink(prod / "current") == "v3"
    assert (prod / "v3" / "model.pt").read_bytes() == (
        home / "models" / "staging" / "ctr_model" / "v3" / "model.pt"
    ).read_bytes()
    assert registry.list_models("production") == {"ctr_model": ["v3"]}
    assert registry.verify("ctr_model", "v3", "production").ok


def test_promote_current_again_changes_nothing(registry: ModelRegistry, make_run: MakeRun) -> None:
    registry.register(make_run())
    registry.promote_to_production("ctr_model", "v1")
    again = registry.promote_to_production("ctr_model", "v1")
    assert again.changed is False
    assert [e["event"] for e in registry.history("ctr_model")] == ["register", "promote"]


@pytest.mark.parametrize("bad", ["7", "v07", "v-1", "v1/../v2", "V1", "v"])
def test_promote_rejects_invalid_versions(registry: ModelRegistry, bad: str) -> None:
    with pytest.raises(InvalidNameError, match="invalid version"):
        registry.promote_to_production("ctr_model", bad)


def test_promote_unknown_version_names_model_version_and_dir(
    registry: ModelRegistry, make_run: MakeRun
) -> None:
    registry.register(make_run())
    with pytest.raises(
        VersionNotFoundError, match=r"Model 'ctr_model' version v7 not found under models/staging"
    ):
        registry.promote_to_production("ctr_model", "v7")


def test_promote_refuses_corrupted_staging_version(
    registry: ModelRegistry, make_run: MakeRun
) -> None:
    v1 = registry.register(make_run()).path
    flip_byte(v1 / "model.pt", offset=100)
    with pytest.raises(IntegrityError, match=r"model\.pt: sha256 .* differs from the manifest"):
        registry.promote_to_production("ctr_model", "v1")
    assert registry.current_version("ctr_model") is None
    assert registry.list_models("production") == {}


@pytest.mark.parametrize("what", ["extra file", "link"])
def test_promote_refuses_what_verify_refuses(
    registry: ModelRegistry, make_run: MakeRun, tmp_path: Path, what: str
) -> None:
    v1 = registry.register(make_run()).path
    if what == "extra file":
        (v1 / "notes.txt").write_text("not in the manifest")
    else:
        (tmp_path / "other").write_bytes((v1 / "config.yaml").read_bytes())
        (v1 / "config.yaml").unlink()
        (v1 / "config.yaml").symlink_to(tmp_path / "other")
    assert not registry.verify("ctr_model", "v1").ok
    with pytest.raises(IntegrityError, match="failed verification"):
        registry.promote_to_production("ctr_model", "v1")
    assert registry.list_models("production") == {}


def test_promote_refuses_different_production_copy(
    registry: ModelRegistry, make_run: MakeRun, home: Path
) -> None:
    registry.register(make_run())
    registry.promote_to_production("ctr_model", "v1")
    manifest = home / "models" / "production" / "ctr_model" / "v1" / "MANIFEST.json"
    manifest.write_text(manifest.read_text().replace('"v1"', '"v1" '))
    with pytest.raises(AlreadyExistsError, match="already exists with different files"):
        registry.promote_to_production("ctr_model", "v1")


def test_disk_full_during_promote_is_a_storage_error_not_a_bad_version(
    registry: ModelRegistry, make_run: MakeRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry.register(make_run())
    original = _fs.copy_hashed

    def full(src: Path, dst: Path, *, mode: int | None = None) -> tuple[str, int]:
        raise OSError(errno.ENOSPC, "No space left on device", str(dst))

    monkeypatch.setattr(_fs, "copy_hashed", full)
    with pytest.raises(RegistryStorageError, match=r"production/ctr_model/\.tmp-.*No space left"):
        registry.promote_to_production("ctr_model", "v1")
    monkeypatch.setattr(_fs, "copy_hashed", original)
    assert registry.promote_to_production("ctr_model", "v1").changed
    assert check_consistent(registry, "ctr_model") == []


def _promote_when_told(base: str, go: multiprocessing.Event) -> None:  # type: ignore[type-arg]
    go.wait(10)
    ModelRegistry(base, lock_timeout=30).promote_to_production("ctr_model", "v1")


def test_gc_never_removes_a_promotion_waiting_for_the_lock(
    registry: ModelRegistry, make_run: MakeRun, home: Path
) -> None:
    """The promotion's copy waits for the model lock; gc(min_age=0) must leave it."""
    registry.register(make_run())
    lock = home / "models" / ".registry" / "ctr_model" / "lock"
    ctx = multiprocessing.get_context("fork")
    go = ctx.Event()
    # Forked before the lock is taken: a child would inherit (and keep) a flock'ed descriptor.
    proc = ctx.Process(target=_promote_when_told, args=(str(registry.base_dir), go))
    proc.start()
    with FileLock(lock, 5, "test"):
        go.set()
        prod = home / "models" / "production" / "ctr_model"
        deadline = time.monotonic() + 20
        while not (prod.is_dir() and any(p.name.startswith(".tmp-") for p in prod.iterdir())):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        time.sleep(0.3)  # the copy is done; the promotion now waits for the lock
        # What gc does under the model lock, while the promotion waits for it:
        report = cleanup.GcReport([], [], [], dry_run=False)
        cleanup._clean_model(Layout(registry.base_dir), "ctr_model", 0.0, report)
        assert report.removed == []
        assert any("a live writer holds it" in k for k in report.kept)
    proc.join(30)
    assert proc.exitcode == 0
    assert registry.current_version("ctr_model") == "v1"
    assert check_consistent(registry, "ctr_model") == []


def test_rollback_walks_back_through_promotions(registry: ModelRegistry, make_run: MakeRun) -> None:
    for _ in range(3):
        registry.register(make_run())
    for v in ("v1", "v2", "v3"):
        registry.promote_to_production("ctr_model", v)
    back = registry.rollback("ctr_model", reason="bad CTR")
    assert (back.previous, back.version) == ("v3", "v2")
    assert registry.current_version("ctr_model") == "v2"
    assert registry.rollback("ctr_model").version == "v1"
    with pytest.raises(NoPreviousVersionError, match="no production version before v1"):
        registry.rollback("ctr_model")
    registry.promote_to_production("ctr_model", "v3")  # a new branch: back to v1
    assert registry.rollback("ctr_model").version == "v1"


def test_rollback_without_current_raises(registry: ModelRegistry, make_run: MakeRun) -> None:
    registry.register(make_run())
    with pytest.raises(NoPreviousVersionError, match="no current production version"):
        registry.rollback("ctr_model")


def test_rollback_of_an_unknown_model_leaves_no_lock_behind(
    registry: ModelRegistry, home: Path
) -> None:
    with pytest.raises(ModelNotFoundError, match="Model 'nope' not found"):
        registry.rollback("nope")
    assert not (home / "models" / ".registry").exists()


def test_rollback_skips_versions_deleted_from_production(
    registry: ModelRegistry, make_run: MakeRun
) -> None:
    for _ in range(3):
        registry.register(make_run())
    for v in ("v1", "v2", "v3"):
        registry.promote_to_production("ctr_model", v)
    registry.delete("ctr_model", "v2", "production")
    assert registry.rollback("ctr_model").version == "v1"


def test_rollback_after_current_was_changed_by_hand(
    registry: ModelRegistry, make_run: MakeRun, home: Path
) -> None:
    for _ in range(3):
        registry.register(make_run())
    for v in ("v1", "v2", "v3"):
        registry.promote_to_production("ctr_model", v)
    current = home / "models" / "production" / "ctr_model" / "current"
    current.unlink()
    current.symlink_to("v1")
    assert registry.rollback("ctr_model").version == "v3"
