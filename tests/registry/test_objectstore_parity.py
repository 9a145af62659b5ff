"""Canary, retention, cards, extra files and rollback_target on the object-store registry
(real S3 server): the same behaviour as the local registry's tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml import storage
from ml.errors import (
    IntegrityError,
    InvalidNameError,
    ServingError,
    VersionInUseError,
    VersionNotFoundError,
)
from ml.registry import cleanup, journal
from ml.registry.model_registry import ModelRegistry
from ml.registry.objectstore import Keys, dumps, read_json
from testkit.registry import history_problems
from tests.registry.conftest import MakeRun


@pytest.fixture
def s3reg(s3_env: str, home: Path) -> ModelRegistry:
    return ModelRegistry(f"{s3_env}/models")


@pytest.fixture
def two(s3reg: ModelRegistry, make_run: MakeRun) -> ModelRegistry:
    s3reg.register(make_run("a"), "m")
    s3reg.register(make_run("b"), "m")
    s3reg.promote_to_production("m", "v1")
    return s3reg


# --- the canary ----------------------------------------------------------------------------


def test_set_canary_lives_in_the_pointer_beside_current(two: ModelRegistry) -> None:
    got = two.set_canary("m", "v2", 0.1, by="admin (Airflow UI)", reason="run 7")
    assert got is not None and (got["version"], got["traffic"], got["by"]) == (
        "v2",
        0.1,
        "admin (Airflow UI)",
    )
    assert two.get_canary("m") == got
    assert two.current_version("m") == "v1"
    store = storage.open_store(str(two.base_dir))
    pointer = read_json(store, Keys(store).current("m"))
    assert pointer is not None and pointer[0]["canary"]["version"] == "v2"
    assert history_problems(two, "m") == []


def test_set_and_clear_canary_are_recorded_in_history(two: ModelRegistry) -> None:
    two.set_canary("m", "v2", 0.25, by="alice", reason="deploy_model run 3")
    two.clear_canary("m", by="bob", reason="rejected")
    events = [e for e in two.history("m") if e["event"] == "canary"]
    assert [(e["version"], e["traffic"], e["from"], e["by"], e["reason"]) for e in events] == [
        ("v2", 0.25, None, "alice", "deploy_model run 3"),
        (None, 0.0, "v2", "bob", "rejected"),
    ]
    assert [journal.describe(e) for e in events] == ["v2 at 25%", "off (was v2)"]
    assert two.get_canary("m") is None
    assert history_problems(two, "m") == []


def test_the_same_canary_twice_and_clearing_none_record_nothing(two: ModelRegistry) -> None:
    before = len(two.history("m"))
    two.clear_canary("m")
    two.set_canary("m", "v2", 0.1)
    assert two.set_canary("m", "v2", 0.1) == two.get_canary("m")
    assert len(two.history("m")) == before + 1


def test_set_canary_refuses_bad_traffic_current_and_unknown_versions(two: ModelRegistry) -> None:
    with pytest.raises(ServingError, match="strictly between 0 and 1"):
        two.set_canary("m", "v2", 1.0)
    with pytest.raises(VersionInUseError, match="current version already"):
        two.set_canary("m", "v1", 0.1)
    with pytest.raises(VersionNotFoundError, match="v9"):
        two.set_canary("m", "v9", 0.1)
    assert two.get_canary("m") is None


def test_a_canary_event_written_but_not_applied_is_finished_by_the_retry(
    two: ModelRegistry,
) -> None:
    store = storage.open_store(str(two.base_dir))
    keys = Keys(store)
    seq = int(read_json(store, keys.current("m"))[0]["seq"])  # type: ignore[index]
    died = {"event": "canary", "version": "v2", "traffic": 0.1, "from": None, "seq": seq + 1,
            "by": "ops", "reason": "r", "op": "dead", "at": "2026-01-01T00:00:00Z"}  # fmt: skip
    store.put_if_absent(keys.event("m", seq + 1), dumps(died))
    assert two.get_canary("m") is None  # readers see the pointer only
    got = two.set_canary("m", "v2", 0.1, by="ops", reason="r")  # the dead writer's retry
    assert got is not None and got["op"] == "dead"
    assert [e["event"] for e in two.history("m")].count("canary") == 1
    assert history_problems(two, "m") == []


def test_a_damaged_canary_in_the_pointer_is_an_integrity_error(two: ModelRegistry) -> None:
    store = storage.open_store(str(two.base_dir))
    keys = Keys(store)
    pointer, _ = read_json(store, keys.current("m"))  # type: ignore[misc]
    store.put(keys.current("m"), dumps({**pointer, "canary": {"version": 3}}))
    with pytest.raises(IntegrityError, match=r"the canary in s3://.* is damaged"):
        two.get_canary("m")


# --- retention -----------------------------------------------------------------------------


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


# --- cards, extra files, rollback_target ---------------------------------------------------


def test_extra_files_are_in_the_manifest_verified_and_in_the_local_copy(
    s3reg: ModelRegistry, make_run: MakeRun
) -> None:
    made = s3reg.register(
        make_run("a"), "m", extra_files=lambda v: {"model_card.md": f"# {v}".encode()}
    )
    assert made.version == "v1"
    assert "model_card.md" in s3reg.show("m", "v1")["files"]
    assert s3reg.verify("m", "v1").ok
    assert (s3reg.path_of("m", "v1") / "model_card.md").read_text() == "# v1"


def test_registry_card_of_a_version_in_a_bucket(
    s3reg: ModelRegistry, make_run: MakeRun, home: Path
) -> None:
    from ml.cards.build import version_card_dir
    from ml.cards.files import CACHE_DIR, CARD_HTML

    s3reg.register(make_run("a"), "m", extra_files={CARD_HTML: b"<html>card</html>"})
    s3reg.register(make_run("b"), "m")
    inside = version_card_dir(s3reg, "m", "v1")
    assert (inside / CARD_HTML).read_bytes() == b"<html>card</html>"
    rendered = version_card_dir(s3reg, "m", "v2")  # no card: rendered into the local cache
    assert (rendered / CARD_HTML).is_file()
    assert s3reg.cache_dir(CACHE_DIR) in rendered.parents
    assert home in rendered.parents and not (home / "s3:").exists()


def test_rollback_target_is_the_same_on_both_backends(two: ModelRegistry) -> None:
    assert two.rollback_target("m") is None
    two.promote_to_production("m", "v2")
    assert two.rollback_target("m") == "v1"
    two.rollback("m")
    assert two.rollback_target("m") is None


def test_cli_canary_gc_keep_last_and_card_take_a_bucket(
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
    assert main(["registry", "card", "m", "v4", "--json", "--base-dir", url]) == 0
    assert '"cached": true' in capsys.readouterr().out
    assert main(["registry", "canary", "m", "v9", "--base-dir", url]) == 2
    assert "version v9 not found" in capsys.readouterr().err
