from __future__ import annotations

import json
import os
import sys
import types
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from ml.registry._lock import FileLock
from ml.registry.errors import (
    AlreadyExistsError,
    IntegrityError,
    InvalidNameError,
    InvalidRunError,
    LockTimeoutError,
    ModelNotFoundError,
    NoPreviousVersionError,
    RegistryError,
    VersionInUseError,
    VersionNotFoundError,
)
from ml.registry.model_registry import ModelRegistry, _hold_writer_lock

MakeRun = Callable[..., Path]


def _flip_byte(path: Path, offset: int = 10) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


# --- register ------------------------------------------------------------------------


def test_register_copies_artifacts_and_writes_manifest(
    registry: ModelRegistry, make_run: MakeRun, home: Path
) -> None:
    run = make_run("a")
    result = registry.register(run)
    assert (result.name, result.version, result.created) == ("ctr_model", "v1", True)
    vdir = home / "models" / "staging" / "ctr_model" / "v1"
    assert result.path == vdir
    assert sorted(os.listdir(vdir)) == [
        "MANIFEST.json",
        "config.yaml",
        "metadata.json",
        "metrics.json",
        "model.pt",
    ]
    assert (vdir / "model.pt").read_bytes() == (run / "model_best.pt").read_bytes()
    manifest = json.loads((vdir / "MANIFEST.json").read_text())
    assert set(manifest["files"]) == {"model.pt", "config.yaml", "metrics.json", "metadata.json"}
    assert manifest["version"] == "v1"


def test_register_metadata_records_lineage(
    registry: ModelRegistry, make_run: MakeRun, home: Path
) -> None:
    run = make_run("a")
    result = registry.register(
        run, dag_id="training_pipeline", run_id="manual__1", created_by="alice@ci"
    )
    meta = json.loads((result.path / "metadata.json").read_text())
    assert meta["source"]["run_dir"] == str(run.resolve())
    assert meta["source"]["dag_id"] == "training_pipeline"
    assert meta["source"]["run_id"] == "manual__1"
    assert len(meta["source"]["model_sha256"]) == 64
    assert meta["created_by"] == "alice@ci"
    assert meta["data_fingerprint"]["digest"] == "d" * 64
    assert meta["metrics"]["test_auc"] == 0.75
    assert "history" not in meta["metrics"]
    assert set(meta["libraries"]) == {"python", "torch", "numpy", "pandas"}
    assert "git_commit" in meta["code_version"]
    assert meta["version"] == "v1"
    assert meta["created_at"].endswith("Z")
    # The config hash is canonical: the same mapping hashes the same in any YAML layout.
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    blob = json.dumps(cfg, sort_keys=True, separators=(",", ":"))
    import hashlib

    assert meta["config_digest"] == hashlib.sha256(blob.encode()).hexdigest()


def test_register_defaults_created_by_to_user_at_host(
    registry: ModelRegistry, make_run: MakeRun
) -> None:
    meta = registry.show("ctr_model", registry.register(make_run()).version)["metadata"]
    assert "@" in meta["created_by"]


def test_register_same_run_twice_returns_existing_version(
    registry: ModelRegistry, make_run: MakeRun
) -> None:
    run = make_run("a")
    first = registry.register(run)
    again = registry.register(run)
    assert again.version == first.version == "v1"
    assert again.created is False
    assert registry.list_models("staging") == {"ctr_model": ["v1"]}
    # The same run reached through a symlink is still the same run.
    link = run.parent / "latest"
    link.symlink_to(run)
    assert registry.register(link).created is False


def test_register_force_creates_new_version(registry: ModelRegistry, make_run: MakeRun) -> None:
    run = make_run("a")
    registry.register(run)
    forced = registry.register(run, force=True)
    assert (forced.version, forced.created) == ("v2", True)


def test_register_retrained_run_dir_is_a_new_version(
    registry: ModelRegistry, make_run: MakeRun
) -> None:
    run = make_run("a", b"first")
    registry.register(run)
    (run / "model_best.pt").write_bytes(b"second")  # same directory, different model
    assert registry.register(run).version == "v2"


def test_register_incomplete_run_raises(registry: ModelRegistry, make_run: MakeRun) -> None:
    run = make_run("a", complete=False)
    with pytest.raises(InvalidRunError, match=r"not complete \(no COMPLETE marker\)"):
        registry.register(run)
    assert registry.list_models("staging") == {}


def test_register_missing_run_dir_raises(registry: ModelRegistry, home: Path) -> None:
    with pytest.raises(InvalidRunError, match="does not exist"):
        registry.register("experiments/runs/nope")


def test_register_bad_metrics_names_file_and_leaves_nothing(
    registry: ModelRegistry, make_run: MakeRun, home: Path
) -> None:
    run = make_run("a")
    (run / "metrics.json").write_text("{not json")
    with pytest.raises(InvalidRunError, match=r"metrics\.json is not valid JSON"):
        registry.register(run)
    model_dir = home / "models" / "staging" / "ctr_model"
    assert not model_dir.exists() or os.listdir(model_dir) == []


def test_register_missing_model_file_raises(registry: ModelRegistry, make_run: MakeRun) -> None:
    run = make_run("a")
    (run / "model_best.pt").unlink()
    with pytest.raises(InvalidRunError, match=r"has no model_best\.pt"):
        registry.register(run)


def test_versions_are_ordered_numerically(registry: ModelRegistry, make_run: MakeRun) -> None:
    for _ in range(11):
        registry.register(make_run())
    versions = registry.list_models("staging")["ctr_model"]
    assert versions == [f"v{i}" for i in range(1, 12)]
    assert registry.get_latest_version("ctr_model", stage="staging") == "v11"


def test_relative_base_dir_resolves_against_home_not_cwd(
    registry: ModelRegistry, make_run: MakeRun, home: Path
) -> None:
    registry.register(make_run())
    assert registry.base_dir == (home / "models").resolve()
    assert not Path("models").exists()  # cwd is elsewhere


# --- names ---------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["", "../x", "a/b", ".hidden", "a..b", "-x", "x" * 129, "a b"])
def test_invalid_model_name_rejected_before_disk_access(
    registry: ModelRegistry, make_run: MakeRun, home: Path, bad: str
) -> None:
    run = make_run()
    with pytest.raises(InvalidNameError, match="invalid model name"):
        registry.register(run, bad)
    with pytest.raises(InvalidNameError, match="invalid model name"):
        registry.get_latest_version(bad)
    assert not (home / "models").exists()


@pytest.mark.parametrize("bad", ["7", "v07", "v-1", "v1/../v2", "V1", "v"])
def test_invalid_version_rejected(registry: ModelRegistry, bad: str) -> None:
    with pytest.raises(InvalidNameError, match="invalid version"):
        registry.promote_to_production("ctr_model", bad)


def test_invalid_stage_rejected(registry: ModelRegistry) -> None:
    with pytest.raises(InvalidNameError, match="invalid stage 'prod'"):
        registry.list_models("prod")


# --- lookup --------------------------------------------------------------------------


def test_list_models_spec_shape(registry: ModelRegistry, make_run: MakeRun) -> None:
    for _ in range(3):
        registry.register(make_run())
    registry.register(make_run(), "other_model")
    assert registry.list_models("staging") == {
        "ctr_model": ["v1", "v2", "v3"],
        "other_model": ["v1"],
    }
    assert registry.list_models("production") == {}


def test_get_latest_version_unknown_model_raises(registry: ModelRegistry) -> None:
    with pytest.raises(
        ModelNotFoundError, match=r"Model 'ctr_model' has no version under models/staging"
    ):
        registry.get_latest_version("ctr_model")


def test_missing_version_message_names_model_version_and_dir(
    registry: ModelRegistry, make_run: MakeRun
) -> None:
    registry.register(make_run())
    with pytest.raises(
        VersionNotFoundError, match=r"Model 'ctr_model' version v7 not found under models/staging"
    ):
        registry.promote_to_production("ctr_model", "v7")


def test_readers_ignore_temporary_directories(
    registry: ModelRegistry, make_run: MakeRun, home: Path
) -> None:
    registry.register(make_run())
    model_dir = home / "models" / "staging" / "ctr_model"
    (model_dir / ".tmp-crashed").mkdir()
    (model_dir / ".tmp-crashed" / "model.pt").write_bytes(b"half")
    assert registry.list_models("staging") == {"ctr_model": ["v1"]}
    assert registry.get_latest_version("ctr_model") == "v1"


def test_version_without_manifest_is_never_loaded_or_promoted(
    registry: ModelRegistry, make_run: MakeRun, home: Path
) -> None:
    registry.register(make_run())
    model_dir = home / "models" / "staging" / "ctr_model"
    (model_dir / "v2").mkdir()  # made by hand: the registry only ever renames complete ones
    (model_dir / "v2" / "model.pt").write_bytes(b"half")
    assert registry.get_latest_version("ctr_model") == "v1"
    with pytest.raises(VersionNotFoundError, match="version v2 not found"):
        registry.promote_to_production("ctr_model", "v2")
    assert registry.verify("ctr_model", "v2").problems[0].startswith("MANIFEST.json: missing")
    # gc moves it out of sight and its number is never handed out.
    assert registry.gc(min_age=0).archived == ["models/staging/ctr_model/v2"]
    assert registry.list_models("staging") == {"ctr_model": ["v1"]}
    assert registry.register(make_run()).version == "v3"


def test_symlinked_model_dir_is_refused(
    registry: ModelRegistry, make_run: MakeRun, home: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    stage = home / "models" / "staging"
    stage.mkdir(parents=True)
    (stage / "ctr_model").symlink_to(outside)
    with pytest.raises(IntegrityError, match="is a symbolic link"):
        registry.register(make_run())
    with pytest.raises(IntegrityError, match="is a symbolic link"):
        registry.get_latest_version("ctr_model")
    assert os.listdir(outside) == []


def test_symlinked_version_dir_is_not_listed(
    registry: ModelRegistry, make_run: MakeRun, home: Path
) -> None:
    v1 = registry.register(make_run()).path
    (v1.parent / "v9").symlink_to(v1)
    assert registry.list_models("staging") == {"ctr_model": ["v1"]}


def test_current_pointing_outside_is_refused(
    registry: ModelRegistry, make_run: MakeRun, home: Path
) -> None:
    registry.promote_to_production("ctr_model", registry.register(make_run()).version)
    current = home / "models" / "production" / "ctr_model" / "current"
    current.unlink()
    current.symlink_to("../../staging/ctr_model/v1")
    with pytest.raises(IntegrityError, match="not at a version directory"):
        registry.load("ctr_model", "current")


# --- promote / rollback / history --------------------------------------------------------


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


def test_promote_refuses_corrupted_staging_version(
    registry: ModelRegistry, make_run: MakeRun, home: Path
) -> None:
    v1 = registry.register(make_run()).path
    _flip_byte(v1 / "model.pt")
    with pytest.raises(IntegrityError, match=r"model\.pt: sha256 differs from the manifest"):
        registry.promote_to_production("ctr_model", "v1")
    assert registry.current_version("ctr_model") is None
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
    # A promotion after rollbacks starts a new branch: rolling back returns to v1.
    registry.promote_to_production("ctr_model", "v3")
    assert registry.rollback("ctr_model").version == "v1"


def test_rollback_without_current_raises(registry: ModelRegistry, make_run: MakeRun) -> None:
    registry.register(make_run())
    with pytest.raises(NoPreviousVersionError, match="no current production version"):
        registry.rollback("ctr_model")


def test_rollback_skips_versions_deleted_from_production(
    registry: ModelRegistry, make_run: MakeRun
) -> None:
    for _ in range(3):
        registry.register(make_run())
    for v in ("v1", "v2", "v3"):
        registry.promote_to_production("ctr_model", v)
    registry.delete("ctr_model", "v2", "production")
    assert registry.rollback("ctr_model").version == "v1"


def test_history_records_who_when_from_to_reason(
    registry: ModelRegistry, make_run: MakeRun
) -> None:
    registry.register(make_run(), dag_id="training_pipeline", run_id="r1")
    registry.register(make_run())
    registry.promote_to_production("ctr_model", "v1", reason="first")
    registry.promote_to_production("ctr_model", "v2", by="bob@laptop")
    registry.rollback("ctr_model", reason="regression")
    events = registry.history("ctr_model")
    kinds = [e["event"] for e in events]
    assert kinds == ["register", "register", "promote", "promote", "rollback"]
    assert events[0]["dag_id"] == "training_pipeline"
    assert (events[2]["from"], events[2]["to"], events[2]["reason"]) == (None, "v1", "first")
    assert (events[3]["from"], events[3]["to"], events[3]["by"]) == ("v1", "v2", "bob@laptop")
    assert (events[4]["from"], events[4]["to"], events[4]["reason"]) == ("v2", "v1", "regression")
    assert all(e["at"].endswith("Z") and e["by"] for e in events)


def test_history_survives_a_torn_line(
    registry: ModelRegistry, make_run: MakeRun, home: Path
) -> None:
    registry.register(make_run())
    log = home / "models" / ".registry" / "ctr_model" / "history.jsonl"
    with log.open("a") as f:
        f.write('{"event": "promo')  # a writer killed mid-append
    registry.register(make_run())
    events = registry.history("ctr_model")
    assert [e["version"] for e in events] == ["v1", "v2"]


def test_history_unknown_model_raises(registry: ModelRegistry) -> None:
    with pytest.raises(ModelNotFoundError, match="Model 'nope' not found under models"):
        registry.history("nope")


# --- verify --------------------------------------------------------------------------


def test_verify_catches_one_flipped_byte(registry: ModelRegistry, make_run: MakeRun) -> None:
    v1 = registry.register(make_run()).path
    assert registry.verify("ctr_model", "v1").ok
    _flip_byte(v1 / "model.pt", offset=123)
    report = registry.verify("ctr_model", "v1")
    assert not report.ok
    assert len(report.problems) == 1
    assert report.problems[0].startswith("model.pt: sha256")
    with pytest.raises(IntegrityError, match=r"version v1 under models/staging failed.*model\.pt"):
        registry.verify("ctr_model", "v1", raise_on_error=True)


def test_verify_names_missing_and_extra_files(registry: ModelRegistry, make_run: MakeRun) -> None:
    v1 = registry.register(make_run()).path
    (v1 / "config.yaml").unlink()
    (v1 / "notes.txt").write_text("hi")
    problems = registry.verify("ctr_model", "v1").problems
    assert "config.yaml: missing" in problems
    assert "notes.txt: not listed in the manifest" in problems


def test_verify_unknown_version_raises(registry: ModelRegistry, make_run: MakeRun) -> None:
    registry.register(make_run())
    with pytest.raises(VersionNotFoundError, match="version v5 not found"):
        registry.verify("ctr_model", "v5")


# --- load ----------------------------------------------------------------------------


@pytest.fixture
def fake_predictor(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    loaded: list[Path] = []

    class Predictor:
        @classmethod
        def load(cls, path: Path) -> tuple[str, Path]:
            loaded.append(path)
            return ("predictor", path)

    module = types.ModuleType("ml.serving.predictor")
    module.Predictor = Predictor  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "ml.serving.predictor", module)
    return loaded


def test_load_resolves_refs_and_verifies_first(
    registry: ModelRegistry, make_run: MakeRun, home: Path, fake_predictor: list[Path]
) -> None:
    for _ in range(2):
        registry.register(make_run())
    registry.promote_to_production("ctr_model", "v1")
    registry.load("ctr_model", "current")
    registry.load("ctr_model", "latest")
    registry.load("ctr_model", "v1", stage="staging")
    models = home / "models"
    assert fake_predictor == [
        models / "production/ctr_model/v1/model.pt",
        models / "staging/ctr_model/v2/model.pt",
        models / "staging/ctr_model/v1/model.pt",
    ]
    _flip_byte(models / "staging/ctr_model/v2/model.pt")
    with pytest.raises(IntegrityError, match=r"model\.pt"):
        registry.load("ctr_model", "latest")
    assert len(fake_predictor) == 3


def test_load_without_current_raises(
    registry: ModelRegistry, make_run: MakeRun, fake_predictor: list[Path]
) -> None:
    registry.register(make_run())
    with pytest.raises(ModelNotFoundError, match="no current production version"):
        registry.load("ctr_model", "current")
    with pytest.raises(InvalidNameError, match="'current' exists only in production"):
        registry.load("ctr_model", "current", stage="staging")


# --- delete / gc / lock ----------------------------------------------------------------


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
    assert registry.history("ctr_model")[3]["event"] == "delete"


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


def test_gc_removes_crash_leftovers_but_not_live_writers(
    registry: ModelRegistry, make_run: MakeRun, home: Path
) -> None:
    registry.register(make_run())
    model_dir = home / "models" / "staging" / "ctr_model"
    dead = model_dir / ".tmp-dead"
    dead.mkdir()
    (dead / "model.pt").write_bytes(b"x")
    live = model_dir / ".tmp-live"
    live.mkdir()
    fd = _hold_writer_lock(live)
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
        os.close(fd)
    assert registry.gc(min_age=0).removed == ["models/staging/ctr_model/.tmp-live"]
    assert registry.list_models("staging") == {"ctr_model": ["v1"]}
    assert registry.register(make_run()).version == "v2"


def test_gc_dry_run_removes_nothing(registry: ModelRegistry, make_run: MakeRun, home: Path) -> None:
    registry.register(make_run())
    leftover = home / "models" / "staging" / "ctr_model" / ".tmp-x"
    leftover.mkdir()
    assert registry.gc(min_age=0, dry_run=True).removed == ["models/staging/ctr_model/.tmp-x"]
    assert leftover.exists()


def test_lock_timeout_names_the_lock_and_holder(home: Path, make_run: MakeRun) -> None:
    registry = ModelRegistry("models", lock_timeout=0.2)
    registry.register(make_run())
    lock_path = home / "models" / ".registry" / "ctr_model" / "lock"
    with (
        FileLock(lock_path, 1, "test"),
        pytest.raises(
            LockTimeoutError, match=r"could not lock model 'ctr_model' within 0.2 s: .* held by pid"
        ),
    ):
        registry.promote_to_production("ctr_model", "v1")
    assert registry.current_version("ctr_model") is None


def test_errors_share_the_registry_base() -> None:
    for exc in (
        InvalidNameError,
        InvalidRunError,
        ModelNotFoundError,
        VersionNotFoundError,
        AlreadyExistsError,
        VersionInUseError,
        NoPreviousVersionError,
        IntegrityError,
        LockTimeoutError,
    ):
        assert issubclass(exc, RegistryError)
    assert issubclass(LockTimeoutError, TimeoutError)
    assert issubclass(VersionNotFoundError, LookupError)
