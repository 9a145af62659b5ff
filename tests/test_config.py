"""ml.config: the one typed config; every bad key, type and range is named."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ml.config import (
    Config,
    config_from_dict,
    inapplicable_warning,
    load_config,
)
from ml.errors import ConfigError

BASE = {"features": {"label": "click", "categorical": ["site"], "numeric": ["price"]}}


def _config(**sections: object) -> Config:
    return config_from_dict({**BASE, **sections})


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cfg.yaml"
    path.write_text(text)
    return path


def test_shipped_config_loads_and_round_trips(project_home: Path) -> None:
    cfg = load_config()
    assert isinstance(cfg, Config)
    again = config_from_dict(cfg.to_dict())
    assert again == cfg and again.digest() == cfg.digest()


def test_unknown_key_in_a_yaml_file_names_file_and_key(tmp_path: Path) -> None:
    path = _write(tmp_path, "model:\n  name: dcnv2\n  embeding_dim: 8\n")
    with pytest.raises(ConfigError, match=r"cfg\.yaml.*model: unknown key 'embeding_dim'"):
        load_config(path)
    with pytest.raises(ConfigError, match="unknown key 'trainig'"):
        load_config(_write(tmp_path, "trainig:\n  epochs: 2\n"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("training:\n  epochs: two\n", "training.epochs must be an integer, got 'two'"),
        ("training:\n  learning_rate: [1]\n", "training.learning_rate must be a number"),
        ("model:\n  hidden_units: 64\n", "model.hidden_units must be a list"),
        ("features:\n  categorical: [a, a]\n", "listed twice"),
        ("training:\n  batch_size: true\n", "training.batch_size must be an integer"),
        ("training:\n  weight_decay: auto\n", "training.weight_decay must be a number"),
        ("seed: 1.5\n", "seed must be an integer"),
        (
            "features:\n  categorical: [a]\n  hash_buckets: {b: 10}\n",
            "hash_buckets.b: 'b' is not a categorical column",
        ),
        (
            "features:\n  categorical: [a]\n  hash_buckets: {a: 1}\n",
            "hash_buckets.a must be an integer in [2, 2147483646]",
        ),
        ("features:\n  categorical: [a]\n  hash_buckets: {a: 1e6}\n", "hash_buckets.a must be"),
        ("features:\n  categorical: [a]\n  hash_buckets: [a]\n", "hash_buckets must be a map"),
    ],
)
def test_wrong_type_is_named(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        load_config(_write(tmp_path, text))


@pytest.mark.parametrize(
    ("section", "key", "value", "message"),
    [
        ("training", "epochs", 0, "training.epochs must be >= 1"),
        ("training", "patience", 0, "training.patience must be >= 1"),
        ("training", "monitor", "val_f1", "training.monitor must be one of"),
        ("training", "min_delta", -0.1, "training.min_delta must be >= 0"),
        ("training", "weight_decay", -1e-4, "training.weight_decay must be >= 0 or null"),
        ("training", "batch_size", 0, "training.batch_size must be >= 1 or null"),
        ("training", "device", "tpu", "training.device must be one of"),
        (
            "training",
            "precision",
            "fp16",
            r"training.precision must be one of \('auto', 'fp32', 'bf16'\)",
        ),
        ("model", "dropout", 1.0, r"model.dropout must be in \[0, 1\)"),
        ("model", "name", "xgboost", "model.name must be one of"),
        ("data", "min_frequency", 0, "data.min_frequency must be >= 1"),
        ("data", "max_oov_share", 1.5, r"data.max_oov_share must be in \[0, 1\]"),
        ("data", "numeric_nan", "drop", "data.numeric_nan must be one of"),
    ],
)
def test_out_of_range_is_named(section: str, key: str, value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _config(**{section: {key: value}})


def test_missing_and_invalid_yaml_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist; pass --config"):
        load_config(tmp_path / "absent.yaml")
    with pytest.raises(ConfigError, match="is not valid YAML"):
        load_config(_write(tmp_path, "model: [unclosed\n"))


def test_replace_overrides_one_key_and_validates() -> None:
    cfg = _config()
    assert cfg.replace(training={"epochs": 2}).training.epochs == 2
    assert cfg.replace(training={"epochs": 2}).training.batch_size == cfg.training.batch_size
    with pytest.raises(ConfigError, match="unknown key 'epoch'"):
        cfg.replace(training={"epoch": 2})


def test_keys_a_model_ignores_are_warned_and_left_out_of_the_record() -> None:
    cfg = _config(model={"name": "logreg", "embedding_dim": 8})
    assert cfg.ignored_settings() == ["model.embedding_dim"]
    warning = inapplicable_warning(cfg)
    assert "model.embedding_dim" in warning and "'logreg'" in warning
    assert cfg.recorded_dict()["model"] == {"name": "logreg"}
    # Ignored keys do not change what the run is: same digest.
    plain = _config(model={"name": "logreg"})
    assert cfg.digest() == plain.digest()
    assert inapplicable_warning(_config()) == ""


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("watch:\n  min_outcome: 5\n", "watch: unknown key 'min_outcome'"),
        ("watch:\n  min_outcomes: 0\n", "watch.min_outcomes must be >= 1, got 0"),
        ("watch:\n  window_s: fast\n", "watch.window_s must be a number, got 'fast'"),
        ("watch:\n  max_logloss: -1\n", "watch.max_logloss must be > 0 or null"),
        ("watch:\n  alpha: 0.7\n", r"watch.alpha must be in \(0, 0.5\)"),
    ],
)
def test_bad_watch_thresholds_name_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    features = "features:\n  label: click\n  categorical: [site]\n"
    with pytest.raises(ConfigError, match=rf"cfg\.yaml.*{message}"):
        load_config(_write(tmp_path, features + text))


def test_watch_section_is_read_and_left_out_of_the_digest() -> None:
    cfg = _config(watch={"min_outcomes": 50, "max_logloss": 0.6})
    assert cfg.watch.min_outcomes == 50 and cfg.watch.max_logloss == 0.6
    assert cfg.watch.cooldown_s == 3600.0  # the rest keep their defaults
    assert "watch" not in cfg.recorded_dict() and cfg.digest() == _config().digest()


def test_hash_buckets_are_read_recorded_and_digested() -> None:
    plain = _config()
    hashed = _config(features={**plain.features.to_dict(), "hash_buckets": {"site": 1000}})
    assert hashed.features.hash_buckets == {"site": 1000}
    assert "hash_buckets" not in plain.features.to_dict()  # unchanged when unused
    assert hashed.features.to_dict()["hash_buckets"] == {"site": 1000}
    assert hashed.digest() != plain.digest()
    assert config_from_dict(yaml.safe_load(hashed.to_yaml())) == hashed
