"""``ctr-pipeline data drift``: the drift check by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ml.cli import main
from ml.registry.model_registry import ModelRegistry
from testkit.drift import register_with_profile


@pytest.fixture
def models(tmp_path: Path, tiny_profile: dict) -> Path:
    reg = ModelRegistry(tmp_path / "models")
    register_with_profile(reg, tmp_path / "runs" / "a", tiny_profile)
    return tmp_path / "models"


def test_data_drift_prints_the_table_and_exits_0_when_warning(
    models: Path, shifted_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["data", "drift", "--features-dir", str(shifted_dir), "--registry", str(models)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "Drift vs ctr_model v1 (production), train split: 2 of 15" in out
    assert "item_price" in out.splitlines()[1] or "item_price" in out.splitlines()[2]


def test_data_drift_fail_action_exits_1(
    models: Path, shifted_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["data", "drift", "--features-dir", str(shifted_dir), "--registry", str(models)]
    assert main([*args, "--reference", "ctr_model/v1", "--action", "fail"]) == 1
    assert "error: data drift against ctr_model v1 (production)" in capsys.readouterr().err


def test_data_drift_json_on_unshifted_data(
    models: Path, unshifted_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["data", "drift", "--features-dir", str(unshifted_dir), "--registry", str(models)]
    assert main([*args, "--json", "--max-psi", "0.2"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["drifted"] == [] and report["max_psi"] == 0.2 and len(report["fields"]) == 15


def test_data_drift_unknown_reference_is_a_user_error(
    models: Path, shifted_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["data", "drift", "--features-dir", str(shifted_dir), "--registry", str(models)]
    assert main([*args, "--reference", "ctr_model/v7"]) == 2
    assert "v7 not found" in capsys.readouterr().err
