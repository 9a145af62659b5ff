from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from ml.registry import cli
from ml.registry.errors import RegistryError, VersionNotFoundError
from ml.registry.model_registry import ModelRegistry

MakeRun = Callable[..., Path]


def run_cli(*argv: str) -> int:
    """Parse with only the registry commands (other areas' CLIs are not needed)."""
    parser = argparse.ArgumentParser(prog="ctr-pipeline")
    cli.add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["registry", *argv])
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
    }
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


def test_cli_unknown_version_raises_registry_error(populated: ModelRegistry) -> None:
    with pytest.raises(VersionNotFoundError, match="version v9 not found under models/staging"):
        run_cli("promote", "ctr_model", "v9")


def test_ctr_pipeline_main_prints_error_and_exits_2(
    populated: ModelRegistry, capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        from ml.cli import main
    except ImportError:
        pytest.skip("ml.cli cannot import every area yet")
    try:
        code = main(["registry", "promote", "ctr_model", "v9"])
    except ImportError:
        pytest.skip("another area's CLI module is missing")
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: Model 'ctr_model' version v9 not found under models/staging")
    assert issubclass(VersionNotFoundError, RegistryError)
