"""The registry on a real S3 server (SeaweedFS, testkit/s3.py): the spec's API over s3://."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml.errors import (
    IntegrityError,
    ModelNotFoundError,
    NoPreviousVersionError,
    VersionNotFoundError,
)
from ml.registry.model_registry import ModelRegistry
from ml.registry.objectstore_api import ObjectStoreRegistry
from testkit.registry import history_problems
from tests.registry.conftest import MakeRun


@pytest.fixture
def s3reg(s3_env: str, home: Path) -> ModelRegistry:
    return ModelRegistry(f"{s3_env}/models")


def test_model_registry_url_gives_the_object_store_backend(s3reg: ModelRegistry) -> None:
    assert isinstance(s3reg, ObjectStoreRegistry)
    assert str(s3reg.base_dir).startswith("s3://ctr-test/")
    assert repr(s3reg).startswith("ModelRegistry('s3://")


def test_register_list_latest_round_trip(s3reg: ModelRegistry, make_run: MakeRun) -> None:
    a = s3reg.register(make_run("a"), "ctr_model", extra_files={"card.md": b"# card"})
    b = s3reg.register(make_run("b"), "ctr_model")
    assert (a.version, a.created, b.version) == ("v1", True, "v2")
    assert str(a.path).endswith("/models/staging/ctr_model/v1")
    assert s3reg.list_models() == {"ctr_model": ["v1", "v2"]}
    assert s3reg.list_versions("ctr_model") == ["v1", "v2"]
    assert s3reg.get_latest_version("ctr_model") == "v2"
    report = s3reg.verify("ctr_model", "v1")
    assert report.ok and set(report.files) >= {"model.pt", "metadata.json", "card.md"}
    shown = s3reg.show("ctr_model", "v1")
    assert shown["metadata"]["version"] == "v1" and "card.md" in shown["files"]
    assert shown["files"]["card.md"]["size"] == 6 and not shown["in_production"]


def test_register_same_run_again_returns_the_existing_version(
    s3reg: ModelRegistry, make_run: MakeRun
) -> None:
    run = make_run("a")
    first = s3reg.register(run, "m")
    again = s3reg.register(run, "m")
    forced = s3reg.register(run, "m", force=True)
    assert (again.version, again.created) == (first.version, False)
    assert (forced.version, forced.created) == ("v2", True)


def test_promote_rollback_current_and_history(s3reg: ModelRegistry, make_run: MakeRun) -> None:
    for run in ("a", "b", "c"):
        s3reg.register(make_run(run), "m")
    assert s3reg.current_version("m") is None
    p1 = s3reg.promote_to_production("m", "v1", reason="first")
    p2 = s3reg.promote_to_production("m", "v3")
    same = s3reg.promote_to_production("m", "v3")
    assert (p1.previous, p1.changed, p2.previous, same.changed) == (None, True, "v1", False)
    assert s3reg.list_models("production") == {"m": ["v1", "v3"]}
    back = s3reg.rollback("m", reason="bad")
    assert (back.version, back.previous, s3reg.current_version("m")) == ("v1", "v3", "v1")
    assert s3reg.resolve("m", "current") == ("production", "v1")
    events = s3reg.history("m")
    assert [e["event"] for e in events] == ["register"] * 3 + ["promote", "promote", "rollback"]
    assert events[3]["reason"] == "first" and events[-1]["to"] == "v1"
    assert history_problems(s3reg, "m") == []
    with pytest.raises(NoPreviousVersionError, match="no production version before v1"):
        s3reg.rollback("m")


def test_load_verifies_and_builds_from_the_bucket(
    s3reg: ModelRegistry, make_run: MakeRun, fake_predictor: list[Path]
) -> None:
    s3reg.register(make_run("a"), "m")
    s3reg.promote_to_production("m", "v1")
    s3reg.load("m", "current")
    assert len(fake_predictor) == 1 and fake_predictor[0].name == "model.pt"


def test_verify_finds_a_changed_object(s3reg: ModelRegistry, make_run: MakeRun) -> None:
    from ml import storage

    s3reg.register(make_run("a"), "m")
    store = storage.open_store(str(s3reg.base_dir))
    store.put("staging/m/v1/config.yaml", b"changed: true\n")
    store.put("staging/m/v1/stray.bin", b"x")
    report = s3reg.verify("m", "v1")
    assert report.problems == (
        "stray.bin: not in MANIFEST.json",
        "config.yaml: sha256 differs from MANIFEST.json",
    )
    with pytest.raises(IntegrityError, match="failed verification"):
        s3reg.promote_to_production("m", "v1")
    with pytest.raises(IntegrityError, match=r"config\.yaml: sha256 differs"):
        s3reg.load("m", "v1")


def test_not_found_errors_name_the_model_and_the_url(
    s3reg: ModelRegistry, make_run: MakeRun
) -> None:
    with pytest.raises(ModelNotFoundError, match=r"'ghost' has no version under s3://ctr-test/"):
        s3reg.get_latest_version("ghost")
    s3reg.register(make_run("a"), "m")
    with pytest.raises(VersionNotFoundError, match=r"version v9 not found .* available: v1"):
        s3reg.promote_to_production("m", "v9")
    with pytest.raises(ModelNotFoundError, match="no current production version"):
        s3reg.resolve("m", "current")
    with pytest.raises(ModelNotFoundError, match="'ghost' not found"):
        s3reg.history("ghost")


def test_registry_errors_of_the_store_name_the_url_and_hide_the_secret(
    s3_env: str, home: Path, make_run: MakeRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ml.errors import AccessDeniedError, BucketNotFoundError, StorageUnavailableError
    from testkit.s3 import _free_ports

    run = make_run("a")
    with pytest.raises(BucketNotFoundError, match="s3://no-such-bucket-ctr/models/") as nob:
        ModelRegistry("s3://no-such-bucket-ctr/models").register(run, "m")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret-xyz")
    with pytest.raises(AccessDeniedError, match=f"{s3_env}/models/") as denied:
        ModelRegistry(f"{s3_env}/models").list_models()
    assert "not-the-secret-xyz" not in str(denied.value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://u:pw-xyz@127.0.0.1:{_free_ports(1)[0]}")
    with pytest.raises(StorageUnavailableError, match=f"{s3_env}/models/") as down:
        ModelRegistry(f"{s3_env}/models").get_latest_version("m")
    assert "pw-xyz" not in str(down.value)
    assert (nob.value.exit_code, denied.value.exit_code, down.value.exit_code) == (2, 2, 3)


def test_cli_registry_commands_take_a_url_and_exit_by_branch(
    s3_env: str, home: Path, make_run: MakeRun, capsys: pytest.CaptureFixture[str]
) -> None:
    from ml.cli import main

    url = f"{s3_env}/models"
    assert main(["registry", "register", str(make_run("a")), "--base-dir", url]) == 0
    assert main(["registry", "promote", "ctr_model", "v1", "--base-dir", url]) == 0
    for verb in (["list"], ["list", "ctr_model"], ["show", "ctr_model", "current"]):
        assert main(["registry", *verb, "--base-dir", url]) == 0, verb
    assert main(["registry", "history", "ctr_model", "--base-dir", url]) == 0
    out = capsys.readouterr().out
    assert "production  ctr_model  1      v1      v1" in out
    assert f"path:        {url}/production/ctr_model/v1" in out and "promote   - -> v1" in out
    assert main(["registry", "list", "--base-dir", "s3://no-such-bucket-ctr/m"]) == 2
    assert (
        "error: listing s3://no-such-bucket-ctr/m/.registry: the bucket does not exist"
        in capsys.readouterr().err
    )


@pytest.mark.slow
def test_serve_from_a_bucket_scores_and_follows_current(
    s3_env: str, home: Path, tiny_features_dir: Path, tmp_path: Path
) -> None:
    import json
    import os
    import time
    import urllib.request

    from testkit.serving import free_port, start_server, stop_server, train_run, wait_ready

    url = f"{s3_env}/models"
    reg = ModelRegistry(url)
    for seed in (3, 4):
        run = train_run(tiny_features_dir, tmp_path / "runs", {"name": "logreg"}, seed=seed)
        reg.register(run, "ctr_model")
    reg.promote_to_production("ctr_model", "v1")
    port = free_port()
    checkout = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    args = ["--registry", url, "--log-dir", str(tmp_path / "logs"), "--port", str(port)]
    proc = start_server([*args, "--poll-interval", "0.1"], env, tmp_path / "server.log")
    base = f"http://127.0.0.1:{port}"
    try:
        ready = wait_ready(base, proc, tmp_path / "server.log")
        assert ready["control"] == {"version": "v1", "stage": "production"}
        reg.promote_to_production("ctr_model", "v2")
        seen = ready
        for _ in range(300):  # the watcher polls the pointer object every 0.1 s
            with urllib.request.urlopen(f"{base}/readyz", timeout=5) as resp:
                seen = json.loads(resp.read())
            if seen["control"]["version"] == "v2":
                break
            time.sleep(0.1)
        assert seen["control"] == {"version": "v2", "stage": "production"}, seen
        assert seen["last_reload_error"] is None
    finally:
        stop_server(proc)


def test_ctr_pipeline_registry_sets_the_default_root_everywhere(
    s3_env: str, home: Path, make_run: MakeRun, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    from ml.cli import main

    url = f"{s3_env}/models"
    monkeypatch.setenv("CTR_PIPELINE_REGISTRY", url)
    reg = ModelRegistry()
    assert isinstance(reg, ObjectStoreRegistry) and reg.base_dir == url
    reg.register(make_run("a"), "m")
    assert main(["registry", "list", "--json"]) == 0
    assert '"m"' in capsys.readouterr().out
    assert not (home / "models").exists()
    local = ModelRegistry("models")  # an explicit root wins
    assert local.list_models() == {}
    monkeypatch.delenv("CTR_PIPELINE_REGISTRY")
    assert ModelRegistry().base_dir == home / "models"
