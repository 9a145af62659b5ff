"""Canary, retention, cards, extra files and rollback_target on the object-store registry
(real S3 server): the same behaviour as the local registry's tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml import storage
from ml.errors import (
    IntegrityError,
    ServingError,
    VersionInUseError,
    VersionNotFoundError,
)
from ml.registry import journal
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
    s3reg: ModelRegistry, make_run: MakeRun, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ml.cards.build import version_card_dir
    from ml.cards.files import CACHE_DIR, CARD_HTML
    from ml.cli import main

    s3reg.register(make_run("a"), "m", extra_files={CARD_HTML: b"<html>card</html>"})
    s3reg.register(make_run("b"), "m")
    inside = version_card_dir(s3reg, "m", "v1")
    assert (inside / CARD_HTML).read_bytes() == b"<html>card</html>"
    assert main(["registry", "card", "m", "v1", "--json", "--base-dir", str(s3reg.base_dir)]) == 0
    assert '"cached": false' in capsys.readouterr().out
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
