from __future__ import annotations

import errno
import json
import multiprocessing
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from ml.errors import ExtraFileError, InvalidNameError, InvalidRunError, RegistryStorageError
from ml.registry import provenance
from ml.registry.model_registry import ModelRegistry
from testkit.registry import CODE_DIGEST, check_consistent, make_run_dir

MakeRun = Callable[..., Path]


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
    assert registry.verify("ctr_model", "v1").ok


def test_register_metadata_records_lineage(
    registry: ModelRegistry, make_run: MakeRun, home: Path
) -> None:
    run = make_run("a")
    result = registry.register(
        run, dag_id="training_pipeline", run_id="manual__1", created_by="alice@ci"
    )
    meta = json.loads((result.path / "metadata.json").read_text())
    assert meta["source"]["run_dir"] == str(run.resolve())
    assert (meta["source"]["dag_id"], meta["source"]["run_id"]) == (
        "training_pipeline",
        "manual__1",
    )
    assert len(meta["source"]["model_sha256"]) == 64
    assert meta["created_by"] == "alice@ci"
    assert meta["data_fingerprint"]["digest"] == "d" * 64
    assert meta["code_version"]["source_digest"] == CODE_DIGEST
    assert "git_commit" in meta["code_version"]
    assert meta["metrics"]["test_auc"] == 0.75 and "history" not in meta["metrics"]
    assert set(meta["libraries"]) == {"python", "torch", "numpy", "pandas"}
    assert meta["version"] == "v1" and meta["created_at"].endswith("Z")
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    assert meta["config_digest"] == provenance.canonical_digest(cfg)


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
    link = run.parent / "latest"  # the same run reached through a link is the same run
    link.symlink_to(run)
    assert registry.register(link).created is False
    assert [e["event"] for e in registry.history("ctr_model")] == ["register"]


def test_register_is_idempotent_without_the_index(
    registry: ModelRegistry, make_run: MakeRun, home: Path
) -> None:
    run = make_run("a")
    registry.register(run)
    (home / "models" / ".registry" / "ctr_model" / "index.jsonl").write_text("")
    assert registry.register(run).created is False


def test_register_force_creates_new_version(registry: ModelRegistry, make_run: MakeRun) -> None:
    run = make_run("a")
    registry.register(run)
    forced = registry.register(run, force=True)
    assert (forced.version, forced.created) == ("v2", True)
    assert registry.register(run).version == "v2"  # the newest registration of the run


def test_register_retrained_run_dir_is_a_new_version(
    registry: ModelRegistry, make_run: MakeRun
) -> None:
    run = make_run("a", b"first")
    registry.register(run)
    make_run_dir(run, b"second")  # same directory, different model
    assert registry.register(run).version == "v2"


def test_register_bad_metrics_leaves_nothing(
    registry: ModelRegistry, make_run: MakeRun, home: Path
) -> None:
    run = make_run("a")
    (run / "metrics.json").write_text("{not json")
    with pytest.raises(InvalidRunError, match=r"metrics\.json is not valid JSON"):
        registry.register(run)
    model_dir = home / "models" / "staging" / "ctr_model"
    assert not model_dir.exists() or os.listdir(model_dir) == []


def test_register_refuses_bytes_that_are_not_a_checkpoint(
    registry: ModelRegistry, make_run: MakeRun, home: Path
) -> None:
    run = make_run("a")
    (run / "model_best.pt").write_bytes(b"root:x:0:0:root:/root:/bin/bash\n")
    with pytest.raises(InvalidRunError, match=r"model_best\.pt is not a model checkpoint"):
        registry.register(run)
    assert registry.list_models("staging") == {}
    assert os.listdir(home / "models" / "staging" / "ctr_model") == []


def test_register_keeps_a_private_checkpoint_private(home: Path, make_run: MakeRun) -> None:
    run = make_run("a")
    (run / "model_best.pt").chmod(0o600)
    version = ModelRegistry("models").register(run)
    assert stat.S_IMODE((version.path / "model.pt").stat().st_mode) == 0o600
    chosen = ModelRegistry("models2", file_mode=0o640).register(run)
    assert stat.S_IMODE((chosen.path / "model.pt").stat().st_mode) == 0o640
    assert stat.S_IMODE((chosen.path / "metadata.json").stat().st_mode) == 0o640


def test_disk_full_during_the_copy_blames_the_registry(
    registry: ModelRegistry, make_run: MakeRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = make_run("a")

    def full(*args: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "copy_file_range", full)
    with pytest.raises(RegistryStorageError) as info:
        registry.register(run)
    message = str(info.value)
    assert "models/staging/ctr_model/.tmp-" in message and "No space left on device" in message
    assert str(run) not in message
    monkeypatch.undo()
    assert registry.register(run).version == "v1"
    assert check_consistent(registry, "ctr_model") == []


def test_register_names_are_checked_before_disk_access(
    registry: ModelRegistry, make_run: MakeRun, home: Path
) -> None:
    with pytest.raises(InvalidNameError, match="invalid model name"):
        registry.register(make_run(), "../evil")
    assert not (home / "models").exists()


def test_extra_files_are_published_and_covered_by_the_manifest(
    registry: ModelRegistry, make_run: MakeRun, home: Path, fake_predictor: list[Path]
) -> None:
    profile = home / "profile.json"
    profile.write_text('{"rows": 3}')
    result = registry.register(
        make_run(), extra_files={"model_card.md": b"# card\n", "data_profile.json": profile}
    )
    manifest = json.loads((result.path / "MANIFEST.json").read_text())
    assert {"model_card.md", "data_profile.json"} <= set(manifest["files"])
    assert (result.path / "model_card.md").read_bytes() == b"# card\n"
    assert registry.verify("ctr_model", "v1").ok
    registry.promote_to_production("ctr_model", "v1")
    assert registry.verify("ctr_model", "v1", "production").ok
    assert (home / "models" / "production" / "ctr_model" / "v1" / "data_profile.json").exists()
    registry.load("ctr_model", "current")
    (result.path / "model_card.md").write_bytes(b"# edited\n")
    assert registry.verify("ctr_model", "v1").problems[0].startswith("model_card.md: size")


def test_extra_files_callable_gets_the_new_version(
    registry: ModelRegistry, make_run: MakeRun
) -> None:
    registry.register(make_run())
    seen: list[str] = []

    def card(version: str) -> dict[str, bytes]:
        seen.append(version)
        return {"model_card.md": f"# ctr_model {version}\n".encode()}

    result = registry.register(make_run(), extra_files=card)
    assert seen == ["v2"]
    assert (result.path / "model_card.md").read_text() == "# ctr_model v2\n"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"cards/card.md": b"x"}, "is not a plain file name"),
        ({".hidden": b"x"}, "is not a plain file name"),
        ({"model.pt": b"x"}, "is one the registry writes itself"),
        ({"MANIFEST.json": b"x"}, "is one the registry writes itself"),
        ({"card.md": 3}, "must be bytes or a path, got int"),
        (["card.md"], "must map file names to bytes or paths"),
    ],
)
def test_bad_extra_files_are_refused_before_anything_is_copied(
    registry: ModelRegistry, make_run: MakeRun, home: Path, extra: object, message: str
) -> None:
    with pytest.raises(ExtraFileError, match=message):
        registry.register(make_run(), extra_files=extra)  # type: ignore[arg-type]
    assert not (home / "models" / "staging").exists()


def test_a_bad_name_from_the_callable_publishes_nothing(
    registry: ModelRegistry, make_run: MakeRun, home: Path
) -> None:
    with pytest.raises(ExtraFileError, match="is one the registry writes itself"):
        registry.register(make_run(), extra_files=lambda v: {"metadata.json": b"x"})
    assert registry.list_models("staging") == {}
    assert [p for p in os.listdir(home / "models" / "staging" / "ctr_model")] == []


def test_an_extra_file_that_is_a_link_is_refused(
    registry: ModelRegistry, make_run: MakeRun, home: Path, tmp_path: Path
) -> None:
    secret = tmp_path / "secret"
    secret.write_text("x")
    (home / "card.md").symlink_to(secret)
    with pytest.raises(ExtraFileError, match=r"card\.md.*pass a regular file"):
        registry.register(make_run(), extra_files={"card.md": home / "card.md"})
    assert registry.list_models("staging") == {}


def test_numbers_count_archived_and_production_versions(
    registry: ModelRegistry, make_run: MakeRun, home: Path
) -> None:
    for _ in range(3):
        registry.register(make_run())
    registry.promote_to_production("ctr_model", "v3")
    registry.delete("ctr_model", "v3")
    (home / "models" / ".registry" / "ctr_model" / "last_version").unlink(missing_ok=True)
    assert registry.register(make_run()).version == "v4"


def _register_many(base_dir: str, run_dirs: list[str], queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    reg = ModelRegistry(base_dir, lock_timeout=30)
    queue.put([reg.register(run).version for run in run_dirs])


def test_concurrent_registrations_from_processes_get_distinct_versions(
    registry: ModelRegistry, home: Path
) -> None:
    procs, per_proc = 4, 3
    runs = [
        [
            str(make_run_dir(home / "runs" / f"p{p}_{i}", f"m {p} {i}".encode() * 500))
            for i in range(per_proc)
        ]
        for p in range(procs)
    ]
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    workers = [
        ctx.Process(target=_register_many, args=(str(registry.base_dir), r, queue)) for r in runs
    ]
    for w in workers:
        w.start()
    got = [v for _ in workers for v in queue.get(timeout=60)]
    for w in workers:
        w.join(timeout=60)
        assert w.exitcode == 0
    expected = [f"v{i}" for i in range(1, procs * per_proc + 1)]
    assert sorted(got, key=lambda v: int(v[1:])) == expected
    assert registry.list_models("staging")["ctr_model"] == expected
    assert check_consistent(registry, "ctr_model") == []


def test_concurrent_registrations_of_the_same_run_create_one_version(
    registry: ModelRegistry, home: Path
) -> None:
    run = str(make_run_dir(home / "runs" / "same", b"same model" * 1000))
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    workers = [
        ctx.Process(target=_register_many, args=(str(registry.base_dir), [run], queue))
        for _ in range(4)
    ]
    for w in workers:
        w.start()
    got = [v for _ in workers for v in queue.get(timeout=60)]
    for w in workers:
        w.join(timeout=60)
    assert got == ["v1"] * 4
    assert registry.list_models("staging") == {"ctr_model": ["v1"]}
