from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from ml.errors import IntegrityError, InvalidNameError, ModelNotFoundError
from ml.registry.model_registry import ModelRegistry
from testkit.registry import CODE_DIGEST, DATA_DIGEST

MakeRun = Callable[..., Path]


def test_list_models_spec_shape(registry: ModelRegistry, make_run: MakeRun) -> None:
    for _ in range(3):
        registry.register(make_run())
    registry.register(make_run(), "other_model")
    assert registry.list_models("staging") == {
        "ctr_model": ["v1", "v2", "v3"],
        "other_model": ["v1"],
    }
    assert registry.list_models("production") == {}
    assert registry.list_versions("other_model") == ["v1"]


def test_versions_are_ordered_numerically(registry: ModelRegistry, make_run: MakeRun) -> None:
    for _ in range(11):
        registry.register(make_run())
    assert registry.list_models("staging")["ctr_model"] == [f"v{i}" for i in range(1, 12)]
    assert registry.get_latest_version("ctr_model", stage="staging") == "v11"


def test_get_latest_version_unknown_model_raises(registry: ModelRegistry) -> None:
    with pytest.raises(
        ModelNotFoundError, match=r"Model 'ctr_model' has no version under models/staging"
    ):
        registry.get_latest_version("ctr_model")


def test_readers_ignore_temporary_directories(
    registry: ModelRegistry, make_run: MakeRun, home: Path
) -> None:
    registry.register(make_run())
    model_dir = home / "models" / "staging" / "ctr_model"
    (model_dir / ".tmp-crashed").mkdir()
    (model_dir / ".tmp-crashed" / "model.pt").write_bytes(b"half")
    assert registry.list_models("staging") == {"ctr_model": ["v1"]}
    assert registry.get_latest_version("ctr_model") == "v1"


def test_a_version_without_manifest_is_not_listed(
    registry: ModelRegistry, make_run: MakeRun, home: Path
) -> None:
    registry.register(make_run())
    (home / "models" / "staging" / "ctr_model" / "v2").mkdir()  # made by hand
    (home / "models" / "staging" / "ctr_model" / "v2" / "model.pt").write_bytes(b"half")
    assert registry.list_models("staging") == {"ctr_model": ["v1"]}
    assert registry.list_versions("ctr_model") == ["v1"]
    assert registry.get_latest_version("ctr_model") == "v1"
    assert [r["version"] for r in registry.versions("ctr_model")] == ["v1"]


def test_a_version_published_before_the_index_is_still_listed(
    registry: ModelRegistry, make_run: MakeRun, home: Path
) -> None:
    registry.register(make_run())
    registry.register(make_run())
    (home / "models" / ".registry" / "ctr_model" / "published-staging").write_text("1;\n")
    assert registry.list_models("staging") == {"ctr_model": ["v1", "v2"]}


def test_symlinked_version_dir_is_not_listed(
    registry: ModelRegistry, make_run: MakeRun, home: Path
) -> None:
    v1 = registry.register(make_run()).path
    (v1.parent / "v9").symlink_to(v1)
    assert registry.list_models("staging") == {"ctr_model": ["v1"]}


def test_symlinked_model_dir_is_refused(
    registry: ModelRegistry, make_run: MakeRun, home: Path, tmp_path: Path
) -> None:
    (tmp_path / "outside").mkdir()
    (home / "models" / "staging").mkdir(parents=True)
    (home / "models" / "staging" / "ctr_model").symlink_to(tmp_path / "outside")
    with pytest.raises(IntegrityError, match="is a symbolic link"):
        registry.get_latest_version("ctr_model")


def test_current_pointing_outside_is_refused(
    registry: ModelRegistry, make_run: MakeRun, home: Path
) -> None:
    registry.promote_to_production("ctr_model", registry.register(make_run()).version)
    current = home / "models" / "production" / "ctr_model" / "current"
    current.unlink()
    current.symlink_to("../../staging/ctr_model/v1")
    with pytest.raises(IntegrityError, match="not at a version directory"):
        registry.current_version("ctr_model")
    current.unlink()
    current.write_text("v1")
    with pytest.raises(IntegrityError, match="is not a symbolic link"):
        registry.current_version("ctr_model")


def test_resolve_refs(registry: ModelRegistry, make_run: MakeRun) -> None:
    registry.register(make_run())
    registry.register(make_run())
    registry.promote_to_production("ctr_model", "v1")
    assert registry.resolve("ctr_model", "current") == ("production", "v1")
    assert registry.resolve("ctr_model", "latest") == ("staging", "v2")
    assert registry.resolve("ctr_model", "v1", "production") == ("production", "v1")
    with pytest.raises(InvalidNameError, match="invalid version reference 'newest'"):
        registry.resolve("ctr_model", "newest")
    with pytest.raises(InvalidNameError, match="'current' exists only in production"):
        registry.resolve("ctr_model", "current", "staging")


def test_show_returns_metadata_files_and_stage(registry: ModelRegistry, make_run: MakeRun) -> None:
    registry.register(make_run())
    registry.promote_to_production("ctr_model", "v1")
    shown = registry.show("ctr_model", "current")
    assert (shown["version"], shown["stage"], shown["current"]) == ("v1", "production", True)
    assert shown["in_production"] is True
    assert "model.pt" in shown["files"]
    assert shown["metadata"]["metrics"]["test_auc"] == 0.75


def test_versions_records_metrics_stage_current_and_run(
    registry: ModelRegistry, make_run: MakeRun
) -> None:
    registry.register(make_run(), dag_id="training_pipeline", run_id="manual__1")
    second = make_run(metrics={"test_auc": 0.8, "test_logloss": 0.4})
    registry.register(second)
    registry.promote_to_production("ctr_model", "v1")
    first, last = registry.versions("ctr_model")
    assert first["version"] == "v1" and first["stages"] == ["staging", "production"]
    assert first["current"] is True
    assert (first["dag_id"], first["run_id"]) == ("training_pipeline", "manual__1")
    assert (first["test_auc"], first["test_logloss"]) == (0.75, 0.45)
    assert first["created_at"].endswith("Z")
    assert last["stages"] == ["staging"] and last["current"] is False
    assert last["test_auc"] == 0.8 and last["run_dir"] == str(second.resolve())
    assert [r["version"] for r in registry.versions("ctr_model", last=1)] == ["v2"]


def test_versions_without_index_lines_read_metadata(
    registry: ModelRegistry, make_run: MakeRun, home: Path
) -> None:
    registry.register(make_run(), dag_id="d", run_id="r")
    (home / "models" / ".registry" / "ctr_model" / "index.jsonl").write_text("")
    assert registry.versions("ctr_model")[0]["dag_id"] == "d"


def test_find_version_matches_all_three_digests(registry: ModelRegistry, make_run: MakeRun) -> None:
    registry.register(make_run())
    registry.register(make_run())
    config = registry.show("ctr_model", "v1")["metadata"]["config_digest"]
    found = registry.find_version(
        "ctr_model", data_digest=DATA_DIGEST, config_digest=config, code_digest=CODE_DIGEST
    )
    assert found == "v2"  # the newest of the identical ones
    assert (
        registry.find_version(
            "ctr_model", data_digest=DATA_DIGEST, config_digest=config, code_digest="0" * 64
        )
        is None
    )
    assert (
        registry.find_version("nope", data_digest="a", config_digest="b", code_digest="c") is None
    )


def test_find_version_never_matches_missing_digests(
    registry: ModelRegistry, make_run: MakeRun
) -> None:
    registry.register(make_run(run_info={}))
    meta = registry.show("ctr_model", "v1")["metadata"]
    assert meta["code_version"]["source_digest"] is None
    assert (
        registry.find_version(
            "ctr_model", data_digest="", config_digest=meta["config_digest"], code_digest=""
        )
        is None
    )


def test_find_version_confirms_the_index_against_metadata(
    registry: ModelRegistry, make_run: MakeRun, home: Path
) -> None:
    registry.register(make_run())
    config = registry.show("ctr_model", "v1")["metadata"]["config_digest"]
    index = home / "models" / ".registry" / "ctr_model" / "index.jsonl"
    line = json.loads(index.read_text())
    index.write_text(json.dumps({**line, "code_digest": "0" * 64}) + "\n")  # a lying cache
    assert (
        registry.find_version(
            "ctr_model", data_digest=DATA_DIGEST, config_digest=config, code_digest="0" * 64
        )
        is None
    )
    index.write_text("")  # no line at all: the metadata is read instead
    assert (
        registry.find_version(
            "ctr_model", data_digest=DATA_DIGEST, config_digest=config, code_digest=CODE_DIGEST
        )
        == "v1"
    )


def test_find_version_skips_deleted_versions(registry: ModelRegistry, make_run: MakeRun) -> None:
    registry.register(make_run())
    config = registry.show("ctr_model", "v1")["metadata"]["config_digest"]
    registry.delete("ctr_model", "v1")
    assert (
        registry.find_version(
            "ctr_model", data_digest=DATA_DIGEST, config_digest=config, code_digest=CODE_DIGEST
        )
        is None
    )
