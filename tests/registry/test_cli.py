from __future__ import annotations

import argparse
import errno
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from ml.errors import RegistryAccessError, RegistryError, UserError, VersionNotFoundError
from ml.registry import cli
from ml.registry.model_registry import ModelRegistry
from testkit.registry import age_versions

MakeRun = Callable[..., Path]


def run_cli(*argv: str) -> int:
    """Parse with only the registry's own commands (errors propagate, no exit codes)."""
    parser = argparse.ArgumentParser(prog="ctr-pipeline registry")
    cli.add_commands(parser.add_subparsers(dest="command", required=True), cli.common_options())
    args = parser.parse_args(list(argv))
    return int(args.func(args))


def out_json(capsys: pytest.CaptureFixture[str], *argv: str) -> object:
    capsys.readouterr()
    assert run_cli(*argv, "--json") == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def populated(registry: ModelRegistry, make_run: MakeRun) -> ModelRegistry:
    for _ in range(3):
        registry.register(make_run())
    return registry


def test_cli_register_and_list_json(
    registry: ModelRegistry, make_run: MakeRun, capsys: pytest.CaptureFixture[str]
) -> None:
    run = make_run("a")
    assert run_cli("register", str(run), "--dag-id", "training_pipeline") == 0
    assert "✅ Model registered: ctr_model v1 (staging)" in capsys.readouterr().out
    assert run_cli("register", str(run)) == 0
    assert "already registered as: ctr_model v1" in capsys.readouterr().out
    assert out_json(capsys, "list", "--stage", "staging") == {"ctr_model": ["v1"]}
    assert out_json(capsys, "list") == {"staging": {"ctr_model": ["v1"]}, "production": {}}


def test_cli_list_table(populated: ModelRegistry, capsys: pytest.CaptureFixture[str]) -> None:
    run_cli("promote", "ctr_model", "v2")
    capsys.readouterr()
    assert run_cli("list") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["stage", "model", "count", "latest", "current", "versions"]
    assert lines[2].split() == ["staging", "ctr_model", "3", "v3", "v1", "v2", "v3"]
    assert lines[3].split() == ["production", "ctr_model", "1", "v2", "v2", "v2"]


def test_cli_latest_show_promote_rollback_history(
    populated: ModelRegistry, capsys: pytest.CaptureFixture[str]
) -> None:
    assert out_json(capsys, "latest", "ctr_model")["version"] == "v3"  # type: ignore[index]
    shown = out_json(capsys, "show", "ctr_model", "v2")
    assert shown["version"] == "v2" and "model.pt" in shown["files"]  # type: ignore[index]
    run_cli("promote", "ctr_model", "v1")
    promoted = out_json(capsys, "promote", "ctr_model", "v3", "--reason", "better AUC")
    assert promoted == {  # type: ignore[comparison-overlap]
        "name": "ctr_model",
        "version": "v3",
        "previous": "v1",
        "path": str(populated.base_dir / "production" / "ctr_model" / "v3"),
        "changed": True,
        "check": promoted["check"],  # type: ignore[index]
    }
    assert promoted["check"]["compared"] == "recorded"  # type: ignore[index]
    assert promoted["check"]["worse"] is False  # type: ignore[index]
    assert out_json(capsys, "rollback", "ctr_model")["version"] == "v1"  # type: ignore[index]
    capsys.readouterr()
    assert run_cli("show", "ctr_model", "current") == 0
    assert "ctr_model v1 (production)  <- current" in capsys.readouterr().out
    assert run_cli("history", "ctr_model") == 0
    table = capsys.readouterr().out
    assert "v1 -> v3" in table and "better AUC" in table and "v3 -> v1" in table


def test_cli_verify_exit_code_on_corruption(
    populated: ModelRegistry, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli("verify", "ctr_model") == 0
    model = populated.base_dir / "staging" / "ctr_model" / "v2" / "model.pt"
    data = bytearray(model.read_bytes())
    data[0] ^= 0xFF
    model.write_bytes(bytes(data))
    capsys.readouterr()
    assert run_cli("verify", "ctr_model") == 1
    out = capsys.readouterr().out
    assert "❌ ctr_model v2 (staging): 1 problem(s)" in out
    assert "model.pt: sha256" in out
    assert run_cli("verify", "ctr_model", "v1", "--json") == 0


def test_cli_delete_and_gc(populated: ModelRegistry, capsys: pytest.CaptureFixture[str]) -> None:
    archived = out_json(capsys, "delete", "ctr_model", "v3", "--reason", "oops")
    assert os.path.isdir(archived["archived_to"])  # type: ignore[index]
    assert out_json(capsys, "latest", "ctr_model")["version"] == "v2"  # type: ignore[index]
    (populated.base_dir / "staging" / "ctr_model" / ".tmp-dead").mkdir()
    report = out_json(capsys, "gc", "--min-age", "0")
    assert report["removed"] == ["models/staging/ctr_model/.tmp-dead"]  # type: ignore[index]


def test_cli_base_dir_option(
    home: Path, make_run: MakeRun, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    other = tmp_path / "other_registry"
    ModelRegistry(other).register(make_run())
    assert out_json(capsys, "list", "--stage", "staging", "--base-dir", str(other)) == {
        "ctr_model": ["v1"]
    }
    assert out_json(capsys, "list", "--stage", "staging") == {}


@pytest.mark.parametrize(
    "argv",
    [
        ["list"],
        ["list", "--stage", "staging"],
        ["show", "ctr_model"],
        ["latest", "ctr_model"],
        ["history", "ctr_model"],
        ["verify", "ctr_model", "v1"],
        ["promote", "ctr_model", "v1"],
        ["rollback", "ctr_model"],
        ["delete", "ctr_model", "v1"],
        ["gc"],
    ],
)
def test_cli_base_dir_that_is_a_file_is_refused_by_every_command(
    home: Path, tmp_path: Path, argv: list[str]
) -> None:
    afile = tmp_path / "registry.txt"
    afile.write_text("not a registry")
    with pytest.raises(RegistryAccessError, match=r"registry\.txt is a regular file") as info:
        run_cli(*argv, "--base-dir", str(afile))
    assert isinstance(info.value, UserError)  # the CLI exits 2
    assert afile.read_text() == "not a registry"


def test_cli_unknown_version_raises_registry_error(populated: ModelRegistry) -> None:
    with pytest.raises(VersionNotFoundError, match="version v9 not found under models/staging"):
        run_cli("promote", "ctr_model", "v9")


def test_ctr_pipeline_main_prints_error_and_exits_2(
    populated: ModelRegistry, capsys: pytest.CaptureFixture[str]
) -> None:
    from ml.cli import main

    code = main(["registry", "promote", "ctr_model", "v9"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: Model 'ctr_model' version v9 not found under models/staging")
    assert issubclass(VersionNotFoundError, RegistryError)


def test_cli_list_name_shows_one_row_per_version(
    registry: ModelRegistry, make_run: MakeRun, capsys: pytest.CaptureFixture[str]
) -> None:
    registry.register(make_run(), dag_id="training_pipeline", run_id="manual__1")
    run = make_run(metrics={"test_auc": 0.8123, "test_logloss": 0.4})
    registry.register(run)
    registry.promote_to_production("ctr_model", "v1")
    capsys.readouterr()
    assert run_cli("list", "ctr_model") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "version",
        "stage",
        "created",
        "(UTC)",
        "test_auc",
        "logloss",
        "run",
    ]
    assert lines[2].startswith("v1 ") and "staging, production (current)" in lines[2]
    assert "0.7500" in lines[2] and "0.4500" in lines[2]
    assert "training_pipeline/manual__1" in lines[2]
    assert lines[3].split()[:2] == ["v2", "staging"] and "0.8123" in lines[3]
    assert lines[3].endswith("experiments/runs/run1")
    records = out_json(capsys, "list", "ctr_model", "--stage", "production")
    assert [r["version"] for r in records] == ["v1"]  # type: ignore[index,union-attr]
    assert out_json(capsys, "list", "ctr_model", "--last", "1")[0]["version"] == "v2"  # type: ignore[index]


def test_cli_list_unknown_name_raises(registry: ModelRegistry) -> None:
    with pytest.raises(RegistryError, match="Model 'nope' has no version"):
        run_cli("list", "nope")


def test_cli_gc_keep_last_is_a_dry_run_unless_applied(
    registry: ModelRegistry, make_run: MakeRun, capsys: pytest.CaptureFixture[str]
) -> None:
    for _ in range(3):
        registry.register(make_run())
    age_versions(registry, "ctr_model")
    capsys.readouterr()
    assert run_cli("gc", "--keep-last", "1") == 0
    out = capsys.readouterr().out
    assert "would purge: models/staging/ctr_model/v1" in out
    assert "pass --apply to purge" in out
    assert registry.list_models("staging") == {"ctr_model": ["v1", "v2", "v3"]}
    report = out_json(capsys, "gc", "--keep-last", "1", "--apply")
    assert report["purged"] == [  # type: ignore[index]
        "models/staging/ctr_model/v1",
        "models/staging/ctr_model/v2",
    ]
    assert registry.list_models("staging") == {"ctr_model": ["v3"]}


def test_cli_gc_rejects_a_negative_keep_last(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        run_cli("gc", "--keep-last", "-1")
    assert "-1 is negative" in capsys.readouterr().err


def test_ctr_pipeline_main_exits_3_on_a_full_disk(
    registry: ModelRegistry,
    make_run: MakeRun,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ml.cli import main

    run = make_run()

    def full(*args: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "copy_file_range", full)
    assert main(["registry", "register", str(run)]) == 3
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert "No space left on device" in err and "models/staging/ctr_model/.tmp-" in err


def test_ctr_pipeline_main_exits_2_when_the_root_is_a_file(
    home: Path, make_run: MakeRun, capsys: pytest.CaptureFixture[str]
) -> None:
    from ml.cli import main

    (home / "models").write_text("a file")
    assert main(["registry", "register", str(make_run())]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: registry root models is a regular file")


V1_METRICS = {"test_auc": 0.7847, "test_logloss": 0.4920}
V2_METRICS = {"test_auc": 0.7651, "test_logloss": 0.5412}


def test_cli_promote_refuses_a_worse_version_without_force(
    registry: ModelRegistry, make_run: MakeRun, capsys: pytest.CaptureFixture[str]
) -> None:
    from ml.errors import UserError

    registry.register(make_run(metrics=V1_METRICS))
    registry.register(make_run(metrics=V2_METRICS))
    assert run_cli("promote", "ctr_model", "v1") == 0
    with pytest.raises(UserError) as caught:
        run_cli("promote", "ctr_model", "v2", "--reason", "newer")
    text = str(caught.value)
    assert text.startswith("not promoting ctr_model v2:")
    assert "same data: deltas from the test metrics recorded at registration" in text
    assert "AUC v2 − v1: -0.0196" in text and "log loss v2 − v1: +0.0492" in text
    assert "no intervals (could not score: v2 records no features directory)" in text
    assert "v2 is WORSE than v1" in text and "pass --force to promote anyway" in text
    assert registry.current_version("ctr_model") == "v1"
    capsys.readouterr()
    assert run_cli("promote", "ctr_model", "v2", "--force", "--reason", "hotfix") == 0
    assert "AUC v2 − v1: -0.0196" in capsys.readouterr().out
    assert registry.current_version("ctr_model") == "v2"
    assert registry.history("ctr_model")[-1]["reason"] == (
        "hotfix [promoted despite the check: worse than v1 (AUC -0.0196, log loss +0.0492)]"
    )


def test_cli_promote_needs_force_for_a_version_tested_on_other_data(
    registry: ModelRegistry, make_run: MakeRun
) -> None:
    from ml.errors import UserError

    other = {"data_fingerprint": {"digest": "0" * 64}, "code_version": {"source_digest": "e"}}
    registry.register(make_run())
    registry.register(make_run(run_info=other))
    run_cli("promote", "ctr_model", "v1")
    with pytest.raises(UserError, match="v2 was tested on other data than v1"):
        run_cli("promote", "ctr_model", "v2")
    assert run_cli("promote", "ctr_model", "v2", "--force") == 0
    assert registry.history("ctr_model")[-1]["reason"] == (
        "promoted despite the check: tested on other data"
    )


def test_ctr_pipeline_main_exits_2_for_a_worse_version(
    registry: ModelRegistry, make_run: MakeRun, capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        from ml.cli import main
    except ImportError:
        pytest.skip("ml.cli cannot import every area yet")
    registry.register(make_run(metrics=V1_METRICS))
    registry.register(make_run(metrics=V2_METRICS))
    registry.promote_to_production("ctr_model", "v1")
    assert main(["registry", "promote", "ctr_model", "v2"]) == 2
    err = capsys.readouterr().err
    assert "AUC v2 − v1: -0.0196" in err and "pass --force" in err
    assert registry.current_version("ctr_model") == "v1"


def test_cli_canary_sets_clears_and_history_shows_it(
    registry: ModelRegistry, make_run: MakeRun, capsys: pytest.CaptureFixture[str]
) -> None:
    registry.register(make_run())
    registry.register(make_run())
    registry.promote_to_production("ctr_model", "v1")
    assert run_cli("canary", "ctr_model", "v2", "--traffic", "0.2", "--reason", "try") == 0
    assert "v2 gets 20% of users" in capsys.readouterr().out
    assert registry.get_canary("ctr_model")["traffic"] == 0.2  # type: ignore[index]
    assert run_cli("canary", "ctr_model", "--off") == 0
    assert registry.get_canary("ctr_model") is None
    capsys.readouterr()
    run_cli("history", "ctr_model")
    out = capsys.readouterr().out
    assert "v2 at 20%" in out and "off (was v2)" in out and "try" in out


def test_cli_canary_needs_a_version_or_off(registry: ModelRegistry, make_run: MakeRun) -> None:
    registry.register(make_run())
    with pytest.raises(UserError, match="give a version"):
        run_cli("canary", "ctr_model")
    with pytest.raises(UserError, match="not both"):
        run_cli("canary", "ctr_model", "v1", "--off")
