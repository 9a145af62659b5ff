"""Retention (``gc --keep-last``) on the object-store registry (real S3 server): the
local rule, a purge event before the objects go, a dying gc finished by the next."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml import storage
from ml.errors import InvalidNameError
from ml.registry import cleanup
from ml.registry.model_registry import ModelRegistry
from testkit.registry import history_problems
from tests.registry.conftest import MakeRun


@pytest.fixture
def s3reg(s3_env: str, home: Path) -> ModelRegistry:
    return ModelRegistry(f"{s3_env}/models")


@pytest.fixture
def aged(s3reg: ModelRegistry, make_run: MakeRun, monkeypatch: pytest.MonkeyPatch) -> ModelRegistry:
    """v1..v5 "older than a day"; production v1, v2 (current v2, rollback target v1); v5
    deleted."""
    for run in "abcde":
        s3reg.register(make_run(run), "m")
    s3reg.promote_to_production("m", "v1")
    s3reg.promote_to_production("m", "v2")
    s3reg.delete("m", "v5")
    monkeypatch.setattr(cleanup, "RETENTION_MIN_AGE", -3600.0)  # everything is old
    return s3reg


def test_retention_is_a_dry_run_by_default(aged: ModelRegistry) -> None:
    report = aged.gc(min_age=0, keep_last=1)
    assert report.dry_run
    assert any(p.endswith("/models/staging/m/v3") for p in report.purged)
    assert aged.list_models() == {"m": ["v1", "v2", "v3", "v4"]}


def test_retention_keeps_current_rollback_target_and_the_newest(
    aged: ModelRegistry, make_run: MakeRun
) -> None:
    report = aged.gc(min_age=0, keep_last=1, dry_run=False)
    shown = sorted(p.split("/models/", 1)[1] for p in report.purged)
    assert shown == ["staging/m/v3", "staging/m/v5"]  # v4 newest, v2 current, v1 its target
    assert aged.list_models() == {"m": ["v1", "v2", "v4"]}
    assert aged.list_models("production") == {"m": ["v1", "v2"]}
    assert aged.current_version("m") == "v2"
    store = storage.open_store(str(aged.base_dir))
    assert store.list_objects("staging/m/v3/") == [] and store.list_objects("staging/m/v5/") == []
    purge = aged.history("m")[-1]
    assert (purge["event"], purge["version"], purge["purged"]) == ("delete", "v3", True)
    assert history_problems(aged, "m") == []
    assert aged.rollback("m").version == "v1"
    assert aged.register(make_run("f"), "m").version == "v6"  # never reuses a number


def test_retention_keeps_versions_younger_than_a_day(
    s3reg: ModelRegistry, make_run: MakeRun
) -> None:
    for run in "abc":
        s3reg.register(make_run(run), "m")
    report = s3reg.gc(min_age=0, keep_last=1, dry_run=False)
    assert report.purged == []
    assert sum("younger than a day" in k for k in report.kept) == 2
    with pytest.raises(InvalidNameError, match="keep_last must be a whole number >= 0, got -1"):
        s3reg.gc(keep_last=-1)


def test_a_gc_that_died_after_the_purge_event_is_finished_by_the_next(
    aged: ModelRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ml.registry import objectstore_retention
    from testkit.s3_faults import Killed

    def die(store: object, prefix: str) -> None:
        raise Killed(f"killed before deleting {prefix}")

    with monkeypatch.context() as patch:
        patch.setattr(objectstore_retention, "_remove", die)
        with pytest.raises(Killed):
            aged.gc(min_age=0, keep_last=1, dry_run=False)
    store = storage.open_store(str(aged.base_dir))
    assert aged.list_models() == {"m": ["v1", "v2", "v4"]}  # the event took effect
    assert store.list_objects("staging/m/v3/")  # its objects are still there
    monkeypatch.setattr(cleanup, "RETENTION_MIN_AGE", 86_400.0)  # all young now: only
    report = aged.gc(min_age=0, keep_last=1, dry_run=False)  # the purge left half-done
    assert [p.split("/models/", 1)[1] for p in report.purged] == ["staging/m/v3"]
    assert store.list_objects("staging/m/v3/") == []
    assert history_problems(aged, "m") == []


def test_cli_canary_and_gc_keep_last_take_a_bucket(
    aged: ModelRegistry, capsys: pytest.CaptureFixture[str]
) -> None:
    from ml.cli import main

    url = str(aged.base_dir)
    assert main(["registry", "canary", "m", "v4", "--traffic", "0.2", "--base-dir", url]) == 0
    assert aged.get_canary("m")["traffic"] == 0.2  # type: ignore[index]
    assert main(["registry", "canary", "m", "--off", "--registry", url]) == 0
    assert aged.get_canary("m") is None
    assert main(["registry", "gc", "--keep-last", "1", "--base-dir", url]) == 0
    assert "staging/m/v3" in capsys.readouterr().out  # a dry run: listed, kept
    assert aged.list_models() == {"m": ["v1", "v2", "v3", "v4"]}
    assert main(["registry", "gc", "--keep-last", "1", "--apply", "--base-dir", url]) == 0
    assert aged.list_models() == {"m": ["v1", "v2", "v4"]}
    assert main(["registry", "canary", "m", "v9", "--base-dir", url]) == 2
    assert "version v9 not found" in capsys.readouterr().err
