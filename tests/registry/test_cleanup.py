from __future__ import annotations

import multiprocessing
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from ml.errors import InvalidNameError, ModelNotFoundError, VersionInUseError
from ml.registry import cleanup
from ml.registry._lock import WriterLock
from ml.registry.model_registry import ModelRegistry
from testkit.registry import age_versions, check_consistent, leftovers, make_run_dir

MakeRun = Callable[..., Path]


def test_delete_hides_version_and_number_is_not_reused(
    registry: ModelRegistry, make_run: MakeRun, home: Path
) -> None:
    for _ in range(3):
        registry.register(make_run())
    dest = registry.delete("ctr_model", "v3", reason="bad data")
    assert dest.parent == home / "models" / "staging" / "ctr_model" / ".archive"
    assert (dest / "model.pt").is_file()
    assert registry.list_models("staging") == {"ctr_model": ["v1", "v2"]}
    assert registry.get_latest_version("ctr_model") == "v2"
    assert registry.register(make_run()).version == "v4"
    event = registry.history("ctr_model")[3]
    assert (event["event"], event["version"], event["reason"]) == ("delete", "v3", "bad data")
    assert check_consistent(registry, "ctr_model") == []


def test_delete_of_current_refused_unless_forced(
    registry: ModelRegistry, make_run: MakeRun
) -> None:
    registry.register(make_run())
    registry.promote_to_production("ctr_model", "v1")
    with pytest.raises(VersionInUseError, match="v1 is production's current version"):
        registry.delete("ctr_model", "v1", "production")
    registry.delete("ctr_model", "v1", "staging")  # the staging copy is not in use
    registry.delete("ctr_model", "v1", "production", force=True)
    assert registry.current_version("ctr_model") is None
    assert registry.list_models("production") == {}
    assert registry.history("ctr_model")[-1]["was_current"] is True
    assert check_consistent(registry, "ctr_model") == []


def test_delete_of_an_unknown_model_leaves_no_lock_behind(
    registry: ModelRegistry, home: Path
) -> None:
    with pytest.raises(ModelNotFoundError, match="Model 'nope' has no version"):
        registry.delete("nope", "v1")
    assert not (home / "models" / ".registry").exists()


def test_archive_alias_is_gone(registry: ModelRegistry) -> None:
    assert not hasattr(registry, "archive")


def test_gc_removes_crash_leftovers_but_not_live_writers(
    registry: ModelRegistry, make_run: MakeRun, home: Path
) -> None:
    registry.register(make_run())
    model_dir = home / "models" / "staging" / "ctr_model"
    dead = model_dir / ".tmp-dead"
    dead.mkdir()
    (dead / "model.pt").write_bytes(b"x")
    writer = WriterLock(home / "models" / ".registry" / "ctr_model" / "writers" / "live")
    writer.acquire()
    live = model_dir / ".tmp-live"
    live.mkdir()
    (home / "models" / "production" / "ctr_model").mkdir(parents=True)
    (home / "models" / "production" / "ctr_model" / ".current-dead").symlink_to("v1")
    try:
        assert registry.gc().removed == []  # everything is younger than the default age
        report = registry.gc(min_age=0)
        assert sorted(report.removed) == [
            "models/production/ctr_model/.current-dead",
            "models/staging/ctr_model/.tmp-dead",
        ]
        assert any("live writer" in k for k in report.kept)
        assert live.exists() and not dead.exists()
    finally:
        writer.release()
    assert registry.gc(min_age=0).removed == ["models/staging/ctr_model/.tmp-live"]
    assert registry.list_models("staging") == {"ctr_model": ["v1"]}
    assert registry.register(make_run()).version == "v2"


def test_gc_archives_a_version_without_manifest_and_keeps_its_number(
    registry: ModelRegistry, make_run: MakeRun, home: Path
) -> None:
    registry.register(make_run())
    (home / "models" / "staging" / "ctr_model" / "v2").mkdir()
    assert registry.gc(min_age=0).archived == ["models/staging/ctr_model/v2"]
    assert registry.register(make_run()).version == "v3"


def test_gc_removes_dead_writer_locks_and_temp_files(
    registry: ModelRegistry, make_run: MakeRun, home: Path
) -> None:
    registry.register(make_run())
    meta = home / "models" / ".registry" / "ctr_model"
    (meta / "writers" / "deadbeef").write_text("")
    (meta / ".index.jsonl.abc123.tmp").write_text("partial")
    report = registry.gc(min_age=0)
    assert report.removed == ["models/.registry/ctr_model/.index.jsonl.abc123.tmp"]
    assert os.listdir(meta / "writers") == []


def test_gc_dry_run_removes_nothing(registry: ModelRegistry, make_run: MakeRun, home: Path) -> None:
    registry.register(make_run())
    leftover = home / "models" / "staging" / "ctr_model" / ".tmp-x"
    leftover.mkdir()
    assert registry.gc(min_age=0, dry_run=True).removed == ["models/staging/ctr_model/.tmp-x"]
    assert leftover.exists()


@pytest.mark.parametrize("when", ["before its age is read", "before gc removes it"])
def test_gc_temp_dir_vanishing_meanwhile_is_not_an_error(
    registry: ModelRegistry,
    make_run: MakeRun,
    home: Path,
    monkeypatch: pytest.MonkeyPatch,
    when: str,
) -> None:
    """Issue 26.2: a promotion removed its own .tmp-<id> between gc's listing and its
    removal, and gc failed with `No such file or directory`."""
    registry.register(make_run())
    prod = home / "models" / "production" / "ctr_model"
    tmp = prod / ".tmp-promotion"
    (tmp / "sub").mkdir(parents=True)
    (tmp / "sub" / "model.pt").write_bytes(b"x")
    hook = "_age" if when == "before its age is read" else "_writer_alive"
    original = getattr(cleanup, hook)

    def vanish_first(*args: object) -> object:
        if tmp.exists():
            shutil.rmtree(tmp)  # the promotion cleans up after itself
        return original(*args)

    monkeypatch.setattr(cleanup, hook, vanish_first)
    report = registry.gc(min_age=0)
    assert not tmp.exists()
    assert not any(".tmp-promotion" in k for k in report.kept)
    assert check_consistent(registry, "ctr_model") == []


def test_gc_tree_shrinking_during_removal_is_not_an_error(
    registry: ModelRegistry, make_run: MakeRun, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry.register(make_run())
    tmp = home / "models" / "staging" / "ctr_model" / ".tmp-dead"
    (tmp / "a").mkdir(parents=True)
    (tmp / "a" / "model.pt").write_bytes(b"x")
    real_unlink = os.unlink

    def raced_unlink(path: object, *args: object, **kwargs: object) -> None:
        real_unlink(path, *args, **kwargs)  # type: ignore[arg-type]
        raise FileNotFoundError(2, "No such file or directory", path)  # removed by another

    monkeypatch.setattr(os, "unlink", raced_unlink)
    report = registry.gc(min_age=0)
    monkeypatch.undo()
    assert report.removed == ["models/staging/ctr_model/.tmp-dead"]
    assert not tmp.exists()


def _writer(base: str, runs: list[str], out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    reg = ModelRegistry(base, lock_timeout=60)
    failures = 0
    for run in runs:
        try:
            version = reg.register(run, force=True).version
            reg.promote_to_production("ctr_model", version)
        except Exception:
            failures += 1
    out.put(failures)


def test_gc_racing_writers_fails_no_operation(registry: ModelRegistry, home: Path) -> None:
    runs = [str(make_run_dir(home / "runs" / f"r{i}", bytes([i]) * (64 << 10))) for i in range(3)]
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    procs = [
        ctx.Process(target=_writer, args=(str(registry.base_dir), runs, out)) for _ in range(2)
    ]
    for p in procs:
        p.start()
    racer = ModelRegistry(registry.base_dir, lock_timeout=60)
    while any(p.is_alive() for p in procs):
        racer.gc(min_age=0)
    assert [out.get(timeout=30) for _ in procs] == [0, 0]
    assert len(registry.list_models("staging")["ctr_model"]) == 6
    assert check_consistent(registry, "ctr_model") == []


@pytest.fixture
def aged(registry: ModelRegistry, make_run: MakeRun) -> ModelRegistry:
    """v1..v5 two days old; production v1, v2 (current v2, rollback target v1); v5 deleted."""
    for _ in range(5):
        registry.register(make_run())
    registry.promote_to_production("ctr_model", "v1")
    registry.promote_to_production("ctr_model", "v2")
    registry.delete("ctr_model", "v5")
    age_versions(registry, "ctr_model")
    return registry


def test_retention_is_a_dry_run_by_default(aged: ModelRegistry) -> None:
    report = aged.gc(min_age=0, keep_last=1)
    assert report.dry_run
    assert "models/staging/ctr_model/v3" in report.purged
    assert aged.list_models("staging") == {"ctr_model": ["v1", "v2", "v3", "v4"]}


def test_retention_keeps_current_rollback_target_and_the_newest(
    aged: ModelRegistry, home: Path
) -> None:
    report = aged.gc(min_age=0, keep_last=1, dry_run=False)
    staging = [p for p in report.purged if ".archive" not in p]
    assert staging == ["models/staging/ctr_model/v3"]  # v4 newest, v2 current, v1 its target
    assert [p.rsplit("/", 1)[1][:3] for p in report.purged if ".archive" in p] == ["v5."]
    assert aged.list_models("staging") == {"ctr_model": ["v1", "v2", "v4"]}
    assert aged.list_models("production") == {"ctr_model": ["v1", "v2"]}
    assert aged.current_version("ctr_model") == "v2"
    assert not (home / "models" / "staging" / "ctr_model" / ".archive").exists() or not os.listdir(
        home / "models" / "staging" / "ctr_model" / ".archive"
    )
    purge = aged.history("ctr_model")[-1]
    assert (purge["event"], purge["version"], purge["purged"]) == ("delete", "v3", True)
    assert check_consistent(aged, "ctr_model") == []
    assert leftovers(aged, "ctr_model") == []
    assert aged.rollback("ctr_model").version == "v1"


def test_retention_never_reuses_a_purged_number(aged: ModelRegistry, make_run: MakeRun) -> None:
    aged.gc(min_age=0, keep_last=0, dry_run=False)
    assert aged.register(make_run()).version == "v6"


def test_retention_refuses_a_negative_count(registry: ModelRegistry) -> None:
    with pytest.raises(InvalidNameError, match="keep_last must be a whole number >= 0, got -1"):
        registry.gc(keep_last=-1)


def test_retention_keeps_versions_younger_than_a_day(
    registry: ModelRegistry, make_run: MakeRun
) -> None:
    for _ in range(3):
        registry.register(make_run())
    report = registry.gc(min_age=0, keep_last=1, dry_run=False)
    assert report.purged == []
    assert sum("younger than a day" in k for k in report.kept) == 2
    assert registry.list_models("staging") == {"ctr_model": ["v1", "v2", "v3"]}
