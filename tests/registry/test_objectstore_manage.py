"""delete, versions and find_version on the object-store registry (real S3 server)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml.errors import (
    ModelNotFoundError,
    NoPreviousVersionError,
    StorageUnavailableError,
    VersionInUseError,
    VersionNotFoundError,
)
from ml.registry.model_registry import ModelRegistry
from ml.registry.objectstore import Keys
from ml.registry.provenance import lineage_digests
from testkit.registry import history_problems
from tests.registry.conftest import MakeRun


@pytest.fixture
def s3reg(s3_env: str, home: Path) -> ModelRegistry:
    return ModelRegistry(f"{s3_env}/models")


def test_delete_staging_hides_the_version_and_never_reuses_its_number(
    s3reg: ModelRegistry, make_run: MakeRun
) -> None:
    run = make_run("a")
    s3reg.register(run, "m")
    s3reg.register(make_run("b"), "m")
    where = s3reg.delete("m", "v2", reason="bad data", by="ops")
    assert str(where).endswith("/models/staging/m/v2")
    assert s3reg.list_models() == {"m": ["v1"]} and s3reg.get_latest_version("m") == "v1"
    with pytest.raises(VersionNotFoundError, match="version v2 not found"):
        s3reg.verify("m", "v2")
    with pytest.raises(VersionNotFoundError):
        s3reg.delete("m", "v2")
    assert s3reg.register(make_run("c"), "m").version == "v3"
    assert s3reg.history("m")[-2]["event"] == "delete"
    assert history_problems(s3reg, "m") == []


def test_delete_current_needs_force_and_then_leaves_no_current(
    s3reg: ModelRegistry, make_run: MakeRun
) -> None:
    for run in ("a", "b"):
        s3reg.register(make_run(run), "m")
    s3reg.promote_to_production("m", "v1")
    s3reg.promote_to_production("m", "v2")
    with pytest.raises(VersionInUseError, match="v2 is production's current version"):
        s3reg.delete("m", "v2", stage="production")
    s3reg.delete("m", "v1", stage="production")
    assert s3reg.list_models("production") == {"m": ["v2"]}
    with pytest.raises(NoPreviousVersionError):
        s3reg.rollback("m")  # v1 left production: nothing below v2
    s3reg.delete("m", "v2", stage="production", force=True)
    assert s3reg.current_version("m") is None
    with pytest.raises(ModelNotFoundError, match="no current production version"):
        s3reg.load("m", "current")
    assert history_problems(s3reg, "m") == []
    assert s3reg.promote_to_production("m", "v1").previous is None  # promotable again


def test_versions_lists_facts_of_both_stages(s3reg: ModelRegistry, make_run: MakeRun) -> None:
    for run in ("a", "b", "c"):
        s3reg.register(make_run(run), "m", dag_id="training_pipeline", run_id=f"r-{run}")
    s3reg.promote_to_production("m", "v2")
    records = s3reg.versions("m")
    assert [r["version"] for r in records] == ["v1", "v2", "v3"]
    assert records[1]["stages"] == ["staging", "production"] and records[1]["current"]
    assert records[0]["test_auc"] == 0.75 and records[2]["run_id"] == "r-c"
    assert [r["version"] for r in s3reg.versions("m", last=2)] == ["v2", "v3"]


def test_find_version_finds_the_newest_with_the_same_lineage(
    s3reg: ModelRegistry, make_run: MakeRun
) -> None:
    s3reg.register(make_run("a"), "m")
    s3reg.register(make_run("b"), "m")
    meta = s3reg.show("m", "v2")["metadata"]
    data, config, code = lineage_digests(meta)
    found = s3reg.find_version("m", data_digest=data, config_digest=config, code_digest=code)
    assert found == "v2"
    s3reg.delete("m", "v2")
    found = s3reg.find_version("m", data_digest=data, config_digest=config, code_digest=code)
    assert found == "v1"
    other = s3reg.find_version("m", data_digest="0" * 64, config_digest=config, code_digest=code)
    assert other is None


def test_gc_removes_a_dead_registration_and_a_slow_writer_cannot_publish_it_after(
    s3reg: ModelRegistry, make_run: MakeRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ml import storage
    from ml.registry import objectstore_write

    run = make_run("a")
    real = objectstore_write._publish

    def die(*args: object, **kwargs: object) -> None:
        raise StorageUnavailableError("died after the manifest")

    monkeypatch.setattr(objectstore_write, "_publish", die)
    with pytest.raises(StorageUnavailableError):
        s3reg.register(run, "m")
    monkeypatch.setattr(objectstore_write, "_publish", real)
    store = storage.open_store(str(s3reg.base_dir))
    young = s3reg.gc()  # the claim is seconds old: left alone
    assert young.removed == [] and young.kept[0].endswith("/staging/m/v1")
    dry = s3reg.gc(min_age=0, dry_run=True)
    assert dry.removed[0].endswith("/staging/m/v1") and store.exists("staging/m/v1/MANIFEST.json")
    report = s3reg.gc(min_age=0)
    assert report.removed == dry.removed and not store.list_objects("staging/m/v1/")
    with pytest.raises(StorageUnavailableError, match="gc gave up this claimed number"):
        objectstore_write._publish(store, Keys(store), "m", 1, "k" * 64, False)
    again = s3reg.register(run, "m")  # the retry takes a new number
    assert (again.version, s3reg.list_models()) == ("v2", {"m": ["v2"]})
    assert [e["version"] for e in s3reg.history("m")] == ["v2"]
    assert s3reg.gc(min_age=0).removed == []


def test_path_of_is_a_verified_local_copy_reused_until_the_version_changes(
    s3reg: ModelRegistry, make_run: MakeRun, home: Path
) -> None:
    s3reg.register(make_run("a"), "m")
    path = s3reg.path_of("m", "v1")
    assert path.name == "v1" and path.is_relative_to(home / ".cache" / "registry")
    assert sorted(p.name for p in path.iterdir()) == [
        "MANIFEST.json",
        "config.yaml",
        "metadata.json",
        "metrics.json",
        "model.pt",
    ]
    assert s3reg.path_of("m", "v1") == path
    s3reg.promote_to_production("m", "v1")
    assert s3reg.path_of("m", "v1", "production") != path
    with pytest.raises(VersionNotFoundError, match="version v7 not found"):
        s3reg.path_of("m", "v7")
