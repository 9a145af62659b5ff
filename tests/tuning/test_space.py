"""ml.tuning.space: the tuning section's parsing, its errors, sampling and trial 0."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest

from ml.config import Config, config_from_dict, load_config
from ml.errors import ConfigError
from ml.tuning.space import SearchParam, apply, label

BASE: dict[str, Any] = {
    "features": {"label": "click", "categorical": ["site"], "numeric": ["price"]},
    "model": {
        "name": "dcnv2",
        "embedding_dim": 8,
        "hidden_units": [64],
        "cross_layers": 3,
        "dropout": 0.1,
    },
    "training": {"learning_rate": 0.01},
}


def _cfg(space: dict[str, Any], **tuning: Any) -> Config:
    return config_from_dict({**BASE, "tuning": {"space": space, **tuning}})


def test_space_parses_ranges_and_choices_and_round_trips() -> None:
    cfg = _cfg(
        {
            "training.learning_rate": {"low": 0.001, "high": 0.1, "log": True},
            "data.min_frequency": {"low": 1, "high": 50, "step": 1},
            "model.hidden_units": [[64], [256, 128]],
            "model.name": {"choices": ["dcnv2", "deepfm"]},
        },
        metric="val_logloss",
        trials=7,
    )
    params = {p.key: p for p in cfg.tuning.space}
    assert params["training.learning_rate"] == SearchParam(
        "training.learning_rate", low=0.001, high=0.1, log=True
    )
    assert params["model.hidden_units"].choices == ((64,), (256, 128))
    assert params["model.hidden_units"].labels() == ["[64]", "[256, 128]"]
    assert cfg.tuning.trials == 7 and cfg.tuning.direction == "minimize"
    assert config_from_dict(cfg.to_dict()) == cfg


def test_shipped_config_has_a_space_that_holds_its_own_values(project_home: Path) -> None:
    cfg = load_config()
    assert len(cfg.tuning.space) >= 5 and cfg.tuning.metric == "val_auc"
    params, outside = cfg.tuning.space.defaults(cfg)
    # model.name auto is no point of the space: trial 0 is auto's choice (ml.training.auto)
    assert [o.split(" ")[0] for o in outside] == ["model.name=auto"]
    assert "model.name" not in params and len(params) == len(cfg.tuning.space) - 1


def test_digest_and_recorded_config_ignore_the_tuning_section() -> None:
    plain = config_from_dict(BASE)
    tuned = _cfg({"model.dropout": {"low": 0.0, "high": 0.5}}, trials=50)
    assert tuned != plain
    assert tuned.digest() == plain.digest()
    assert "tuning" not in tuned.recorded_dict() and "tuning" not in tuned.to_yaml()
    assert tuned.replace(training={"epochs": 2}).digest() != plain.digest()


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({"model.embeding_dim": [8, 16]}, "unknown key 'model.embeding_dim'; tunable keys: "),
        ({"training.device": ["cpu"]}, "unknown key 'training.device'"),
        ({"dropout": [0.1]}, "key 'dropout' must be SECTION.KEY"),
        ({"model.dropout": {"low": 0.3, "high": 0.1}}, r"model.dropout: inverted range"),
        ({"model.dropout": {"low": 0.2, "high": 0.2}}, r"model.dropout: empty range"),
        ({"model.name": []}, "model.name: the list of choices is empty"),
        ({"model.dropout": {"low": 0.0, "high": 1.5}}, "model.dropout must be in"),
        ({"model.hidden_units": [64, 128]}, "choices of a list key are lists"),
        ({"model.name": ["dcnv2", "xgboost"]}, "'xgboost' is not a valid value"),
        ({"model.name": {"low": 1, "high": 2}}, "a range needs a numeric key"),
        ({"data.min_frequency": {"low": 1.5, "high": 9}}, r"min_frequency.low must be an integer"),
        ({"training.learning_rate": {"low": 0, "high": 1, "log": True}}, "log range needs low > 0"),
        ({"model.dropout": {"low": 0, "high": 0.5, "bins": 3}}, "unknown range key 'bins'"),
        ({"model.dropout": 0.3}, "must be a list of choices or a range"),
        ({"model.name": ["dcnv2", "dcnv2"]}, "listed twice"),
    ],
)
def test_bad_space_is_a_config_error_naming_the_key(space: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _cfg(space)


def test_bad_metric_and_trials_are_named() -> None:
    with pytest.raises(ConfigError, match=r"tuning\.metric must be one of"):
        _cfg({}, metric="test_auc")
    with pytest.raises(ConfigError, match=r"tuning\.trials must be >= 1"):
        _cfg({}, trials=0)


def test_a_bad_space_in_a_yaml_file_names_the_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "cfg.yaml"
    path.write_text("tuning:\n  space:\n    model.dropout: {low: 0.5, high: 0.1}\n")
    with pytest.raises(ConfigError, match=r"cfg\.yaml.tuning\.space\.model\.dropout: inverted"):
        load_config(path)


def _sample(cfg: Config, n: int = 20) -> list[dict[str, Any]]:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    out = []
    for _ in range(n):
        trial = study.ask()
        out.append(cfg.tuning.space.suggest(trial, cfg))
        study.tell(trial, 0.5)
    return out


def test_suggest_skips_keys_the_trials_model_does_not_use() -> None:
    cfg = _cfg(
        {
            "model.name": ["dcnv2", "deepfm", "logreg"],
            "model.cross_layers": {"low": 1, "high": 4},
            "model.hidden_units": [[16], [32, 16]],
            "training.learning_rate": {"low": 0.001, "high": 0.1, "log": True},
        }
    )
    samples = _sample(cfg, 30)
    assert {s["model.name"] for s in samples} == {"dcnv2", "deepfm", "logreg"}
    for s in samples:
        assert ("model.cross_layers" in s) == (s["model.name"] == "dcnv2")
        assert ("model.hidden_units" in s) == (s["model.name"] != "logreg")
        assert 0.001 <= s["training.learning_rate"] <= 0.1
        if "model.cross_layers" in s:
            assert isinstance(s["model.cross_layers"], int)
        if "model.hidden_units" in s:
            assert s["model.hidden_units"] in ([16], [32, 16])
    trial_cfg = apply(cfg, samples[0])
    assert trial_cfg.model.name == samples[0]["model.name"]


def test_values_decode_optuna_params_back_to_config_values() -> None:
    cfg = _cfg({"model.hidden_units": [[64], [256, 128]], "model.dropout": [0.0, 0.2]})
    values = cfg.tuning.space.values({"model.hidden_units": "[256, 128]", "model.dropout": 0.2})
    assert values == {"model.hidden_units": [256, 128], "model.dropout": 0.2}
    assert apply(cfg, values).model.hidden_units == (256, 128)
    assert label((256, 128)) == "[256, 128]" and label(3) == 3


def test_defaults_are_the_configs_own_values_and_name_those_outside_the_space() -> None:
    cfg = _cfg(
        {
            "model.dropout": {"low": 0.0, "high": 0.3},
            "training.learning_rate": {"low": 0.05, "high": 0.5, "log": True},
            "model.hidden_units": [[64], [128]],
            "model.cross_layers": [1, 2],
        }
    )
    params, outside = cfg.tuning.space.defaults(cfg)
    assert params == {"model.dropout": 0.1, "model.hidden_units": "[64]"}
    assert outside == [
        "training.learning_rate=0.01 (space [0.05, 0.5] log)",
        "model.cross_layers=3 (space {1, 2})",
    ]


def test_inapplicable_names_model_keys_a_family_does_not_use() -> None:
    cfg = _cfg({"model.cross_layers": [1, 2], "model.dropout": [0.0, 0.1]})
    assert cfg.tuning.space.inapplicable("deepfm") == ["model.cross_layers"]
    assert cfg.tuning.space.inapplicable("logreg") == ["model.cross_layers", "model.dropout"]
    assert cfg.tuning.space.inapplicable("dcnv2") == []
