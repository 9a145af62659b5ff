"""ml.pipeline.params: the DAG's params without Airflow."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest

from ml.errors import ConfigError, UserError
from ml.pipeline.params import Params, PipelineRun, param_specs


def test_from_mapping_keeps_unknown_keys_apart() -> None:
    params = Params.from_mapping({"min_auc": 0.7, "not_a_param": 3})
    assert params.min_auc == 0.7 and params.extra == {"not_a_param": 3}


def test_from_mapping_takes_an_integer_for_a_number() -> None:
    assert Params.from_mapping({"min_auc": 1}).min_auc == 1.0


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"epochs": 0}, "param epochs: 0 is less than the minimum of 1"),
        ({"epochs": True}, "param epochs must be an integer or null, got True"),
        ({"epochs": 1.5}, "param epochs must be an integer or null"),
        ({"max_psi": 0}, "param max_psi: 0.0 must be greater than 0"),
        ({"max_psi": True}, "param max_psi must be a number, got True"),
        ({"drift_action": "stop"}, "param drift_action: 'stop' is not one of warn, fail"),
        ({"tuning_trials": -1}, "param tuning_trials: -1 is less than the minimum of 0"),
        ({"tuning_parallel": 0}, "param tuning_parallel: 0 is less than the minimum of 1"),
        ({"min_auc": 1.5}, "param min_auc: 1.5 is greater than the maximum of 1"),
        ({"model_name": "../x"}, "param model_name: '../x' does not match"),
        ({"config_path": " "}, "param config_path: ' ' is empty"),
        ({"config_path": None}, "param config_path must be a string, got None"),
        ({"auto_promote": "yes"}, "param auto_promote must be a boolean"),
    ],
)
def test_bad_values_are_refused_naming_the_param(raw: dict[str, object], message: str) -> None:
    with pytest.raises(UserError, match=re.escape(message)):
        Params.from_mapping(raw)


def test_every_field_but_overrides_is_a_param_with_a_description() -> None:
    names = [s.name for s in param_specs()]
    assert names == [f.name for f in dataclasses.fields(Params)][: len(names)]
    assert {f.name for f in dataclasses.fields(Params)} - set(names) == {
        "config_overrides",
        "extra",
    }
    assert all(s.description.endswith(".") for s in param_specs())


def test_json_schema_of_nullable_and_bounded_params() -> None:
    specs = {s.name: s for s in param_specs()}
    assert specs["epochs"].json_schema() == {
        "type": ["null", "integer"],
        "minimum": 1,
        "maximum": 10_000,
    }
    assert specs["drift_action"].json_schema()["enum"] == ["warn", "fail"]
    assert specs["features_path"].flag == "--features-dir"
    assert specs["auto_promote"].json_schema() == {"type": "boolean"}
    assert specs["model_family"].json_schema()["enum"][-1] is None  # null: the config's


def test_model_family_overrides_the_configs_model_name(project_home: Path) -> None:
    assert Params().config().model.name == "auto"  # the shipped default
    assert Params(model_family="fm").config().model.name == "fm"
    assert Params.from_mapping({"model_family": None}).model_family is None
    with pytest.raises(UserError, match="param model_family: 'xgb' is not one of auto, logreg"):
        Params.from_mapping({"model_family": "xgb"})


def test_the_docs_params_table_lists_every_param_with_its_default() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "airflow.md").read_text()
    for spec in param_specs():
        default = "null" if spec.default is None else json.dumps(spec.default)
        row = f"| `{spec.name}` | `{default}` |"
        assert row in doc, f"docs/airflow.md's params table lacks {row}"


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
