"""Versions and runs side by side on the same rows."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ml.cards.compare import compare_runs, compare_versions, comparison_lines
from ml.cli import main as cli_main
from ml.errors import CardError
from ml.evaluation.evaluate import evaluate_checkpoint
from ml.registry.model_registry import ModelRegistry


def test_two_versions_with_known_metrics(shared_home: Any) -> None:
    registry = ModelRegistry("models")
    features = shared_home.home / "data" / "features" / "v1"
    known = {
        v: evaluate_checkpoint(registry.path_of("ctr_model", v), features) for v in ("v1", "v2")
    }
    result = compare_versions(registry, "ctr_model", ["v1", "v2"], n_boot=300)
    assert result["features_dir"] == "data/features/v1" and result["split"] == "test"
    assert result["rows"] == known["v1"]["rows"] == 450
    for model in result["models"]:
        for metric in ("auc", "logloss", "accuracy"):
            assert model[metric] == pytest.approx(known[model["label"]][metric], abs=1e-9)
    (diff,) = result["differences"]
    assert (diff["a"], diff["b"]) == ("v1", "v2")
    assert diff["auc"] == pytest.approx(known["v2"]["auc"] - known["v1"]["auc"], abs=1e-9)
    interval = diff["auc_interval"]
    assert interval["low"] < interval["diff"] < interval["high"]
    assert interval["diff"] == pytest.approx(diff["auc"], abs=1e-12)
    loss = diff["logloss_interval"]
    assert loss["low"] < loss["diff"] < loss["high"]
    assert loss["diff"] == pytest.approx(known["v2"]["logloss"] - known["v1"]["logloss"], abs=1e-9)
    assert any(line.startswith("log loss v2 - v1: ") for line in comparison_lines(result))


def test_compare_command_prints_a_table_and_json(
    shared_home: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_main(["registry", "compare", "ctr_model", "v1", "v2", "--bootstrap", "50"]) == 0
    out = capsys.readouterr().out
    assert "ctr_model on data/features/v1 test split (450 rows" in out
    assert out.splitlines()[1].split() == ["metric", "v1", "v2", "v2", "-", "v1"]
    assert "AUC v2 - v1: " in out and "95% bootstrap interval" in out and "(50 resamples" in out
    assert (
        cli_main(["registry", "compare", "ctr_model", "v2", "v1", "--json", "--bootstrap", "50"])
        == 0
    )
    data = json.loads(capsys.readouterr().out)
    assert [m["label"] for m in data["models"]] == ["v2", "v1"]
    assert data["differences"][0]["auc_interval"]["n_boot"] == 50


def test_compare_needs_two_versions_that_exist(
    shared_home: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(CardError, match="at least two different versions"):
        compare_versions(ModelRegistry("models"), "ctr_model", ["v1"])
    with pytest.raises(CardError, match=r"version\(s\) v1 given more than once"):
        compare_versions(ModelRegistry("models"), "ctr_model", ["v1", "v2", "v1"])
    assert cli_main(["registry", "compare", "ctr_model", "v1", "v7"]) == 2
    assert "v7" in capsys.readouterr().err


def test_runs_compare_on_the_newest_runs_split(shared_home: Any) -> None:
    result = compare_runs([shared_home.run_a, shared_home.run_b], n_boot=50)
    assert [m["label"] for m in result["models"]] == [
        shared_home.run_a.name,
        shared_home.run_b.name,
    ]
    lines = comparison_lines(result)
    assert lines[0].startswith("models on data/features/v1 test split (450 rows")
    with pytest.raises(CardError, match="at least two different runs"):
        compare_runs([shared_home.run_a, shared_home.run_a])
