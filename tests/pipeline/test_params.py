"""ml.pipeline.params: the DAG's params without Airflow."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from ml.errors import ConfigError, UserError
from ml.pipeline.params import Params, PipelineRun


def test_from_mapping_keeps_unknown_keys_apart() -> None:
    params = Params.from_mapping({"min_auc": 0.7, "not_a_param": 3})
    assert params.min_auc == 0.7 and params.extra == {"not_a_param": 3}
    assert params.gates.min_auc == 0.7 and params.gates.baseline_tolerance == 0.0


@pytest.mark.parametrize("epochs", [0, -1, True])
def test_bad_epochs_are_refused(epochs: object) -> None:
    with pytest.raises(UserError, match="epochs must be a positive integer"):
        Params.from_mapping({"epochs": epochs})


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"max_psi": 0}, "max_psi must be a positive number"),
        ({"max_psi": True}, "max_psi must be a positive number"),
        ({"drift_action": "ignore"}, "drift_action must be one of"),
    ],
)
def test_bad_drift_params_are_refused(raw: dict[str, object], message: str) -> None:
    with pytest.raises(UserError, match=message):
        Params.from_mapping(raw)
    assert Params().max_psi == 0.25 and Params().drift_action == "warn"


@pytest.mark.parametrize(
    ("key", "value"), [("tuning_trials", -1), ("tuning_parallel", 0), ("tuning_trials", 1.5)]
)
def test_bad_tuning_params_are_refused(key: str, value: object) -> None:
    with pytest.raises(UserError, match=f"{key} must be an integer >= "):
        Params.from_mapping({key: value})


def test_config_applies_overrides_then_epochs(project_home: Path) -> None:
    params = Params(epochs=3, config_overrides={"training": {"epochs": 9, "batch_size": 64}})
    cfg = params.config()
    assert cfg.training.epochs == 3 and cfg.training.batch_size == 64


def test_features_dir_defaults_to_the_config(project_home: Path) -> None:
    cfg = Params().config()
    assert Params().features_dir(cfg) == cfg.data.features_dir
    assert Params(features_path="elsewhere").features_dir(cfg) == "elsewhere"
    with pytest.raises(ConfigError, match="features_path is empty"):
        Params(features_path=" ").features_dir(cfg)


def test_pipeline_run_key_follows_the_logical_date() -> None:
    day = datetime(2024, 11, 15, tzinfo=timezone.utc)
    a = PipelineRun("training_pipeline", "__airflow_temporary_run_1", day)
    b = PipelineRun("training_pipeline", "__airflow_temporary_run_2", day)
    c = PipelineRun("training_pipeline", "manual__1")
    assert a.key == b.key != c.key
    assert a.describe() == "training_pipeline / __airflow_temporary_run_1"
