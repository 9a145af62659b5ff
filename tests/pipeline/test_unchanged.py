""" "Nothing changed since vN": same data, config and code skip training and registration."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ml.pipeline.local import new_run, run_pipeline
from ml.pipeline.unchanged import recorded
from ml.registry.model_registry import ModelRegistry


def _run(params: Any, **overrides: Any) -> dict[str, Any]:
    return run_pipeline(params(**overrides), new_run())


def test_a_rerun_on_unchanged_inputs_names_the_version_and_skips(home: Path, params: Any) -> None:
    first = _run(params)
    assert first["model_version"] == "v1" and "unchanged_since" not in first
    runs_before = sorted((home / "experiments" / "runs").iterdir())
    again = _run(params)
    assert again["state"] == "success"
    assert again["model_version"] == "v1" and again["registered_path"].endswith("ctr_model/v1")
    assert again["unchanged_since"]["version"] == "v1"
    assert again["metrics"]["test_auc"] == first["metrics"]["test_auc"]
    assert "Nothing changed since ctr_model v1" in again["message"]
    assert "train" not in {k for k, v in again["steps"].items() if v.get("state") == "success"}
    assert sorted((home / "experiments" / "runs").iterdir()) == runs_before  # no training
    assert ModelRegistry().list_versions("ctr_model") == ["v1"]


def test_force_retrain_or_a_changed_config_trains_again(home: Path, params: Any) -> None:
    _run(params)
    forced = _run(params, force_retrain=True)
    assert "unchanged_since" not in forced
    changed = _run(params, config_overrides={"training": {"learning_rate": 0.02}})
    assert "unchanged_since" not in changed
    assert forced["model_version"] == "v2"  # a new training run: a new version
    assert changed["model_version"] == "v3"


def test_recorded_reads_the_runs_summary(home: Path, params: Any) -> None:
    run = new_run()
    assert recorded(run) is None
    run_pipeline(params(), run)
    assert recorded(run) is None  # the first run trained: nothing recorded as unchanged
