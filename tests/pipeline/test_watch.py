"""ml.pipeline.watch: live figures from feedback, automatic rollback, no flapping."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ml.errors import ConfigError
from ml.pipeline.watch import BY, WatchSettings, watch
from ml.registry.model_registry import ModelRegistry
from testkit.registry import make_run_dir
from testkit.serving import write_served_logs

NAME = "ctr_model"


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModelRegistry:
    """v1 then v2 promoted (v2 current, v1 its rollback target), the changes aged."""
    monkeypatch.setenv("CTR_PIPELINE_HOME", str(tmp_path))
    reg = ModelRegistry("models", lock_timeout=5)
    for i in (1, 2):
        reg.register(make_run_dir(tmp_path / "runs" / f"r{i}", bytes([i]) * 512), NAME)
        reg.promote_to_production(NAME, f"v{i}")
    return reg


@pytest.fixture
def settings(tmp_path: Path) -> Callable[..., WatchSettings]:
    def make(**kw: Any) -> WatchSettings:
        base = {"log_dir": str(tmp_path / "logs"), "min_outcomes": 500, "cooldown_s": 0.0}
        return WatchSettings(**{**base, **kw})

    return make


def _serve(tmp_path: Path, version: str, *, n: int, seed: int, **kw: Any) -> None:
    write_served_logs(
        tmp_path / "logs", n=n, versions={"control": version}, seed=seed, at=time.time(), **kw
    )


def test_a_broken_production_version_is_rolled_back_with_the_evidence(
    registry: ModelRegistry, settings: Callable[..., WatchSettings], tmp_path: Path
) -> None:
    _serve(tmp_path, "v1", n=3000, seed=1)
    _serve(tmp_path, "v2", n=3000, seed=2, bias={"control": 3.0})  # predicts far too high
    result = watch(settings(), registry, run="watch_production scheduled__1")
    assert result["action"] == "rolled_back", result["text"]
    assert registry.current_version(NAME) == "v1"
    event = registry.history(NAME)[-1]
    assert event["event"] == "rollback" and event["by"] == BY
    assert "watch_production scheduled__1: v2 degraded on 3,000 outcomes" in event["reason"]
    assert "log loss" in event["reason"] and "predicted CTR" in event["reason"]
    assert result["figures"]["v2"]["calibration_error"] > 1


def test_a_fair_coins_feedback_does_not_roll_back(
    registry: ModelRegistry, settings: Callable[..., WatchSettings], tmp_path: Path
) -> None:
    for seed in range(5):
        _serve(tmp_path, "v1", n=2000, seed=10 + seed, coin=True)
        _serve(tmp_path, "v2", n=2000, seed=20 + seed, coin=True)
        result = watch(settings(), registry)
        assert result["action"] == "none", result["text"]
        assert result["degraded"] == []
    assert registry.current_version(NAME) == "v2"


def test_too_few_outcomes_cooldown_and_dry_run_never_roll_back(
    registry: ModelRegistry, settings: Callable[..., WatchSettings], tmp_path: Path
) -> None:
    _serve(tmp_path, "v1", n=1500, seed=1)
    _serve(tmp_path, "v2", n=100, seed=2, bias={"control": 3.0})
    assert watch(settings(), registry)["action"] == "too_few_outcomes"
    _serve(tmp_path, "v2", n=1500, seed=3, bias={"control": 3.0})
    assert watch(settings(cooldown_s=3600), registry)["action"] == "cooldown"
    dry = watch(settings(dry_run=True), registry)
    assert dry["action"] == "dry_run" and "would roll back to v1" in dry["text"]
    assert registry.current_version(NAME) == "v2"
    assert [e["event"] for e in registry.history(NAME)].count("rollback") == 0


def test_after_a_rollback_the_next_check_does_not_roll_back_again(
    registry: ModelRegistry, settings: Callable[..., WatchSettings], tmp_path: Path
) -> None:
    registry.promote_to_production(NAME, "v2")  # no-op: v2 is current
    _serve(tmp_path, "v1", n=2000, seed=1, bias={"control": 3.0})
    _serve(tmp_path, "v2", n=2000, seed=2, bias={"control": 3.0})
    # both broken: no significant increase over v1, but v2's calibration is off
    first = watch(settings(cooldown_s=0.0), registry)
    assert first["action"] == "rolled_back"
    second = watch(settings(cooldown_s=3600.0), registry)  # v1 is broken too: no flapping
    assert second["action"] in ("cooldown", "no_previous"), second["text"]
    assert registry.current_version(NAME) == "v1"


def test_bad_thresholds_are_config_errors(registry: ModelRegistry) -> None:
    with pytest.raises(ConfigError, match="min_outcomes"):
        watch(WatchSettings(min_outcomes=0), registry)
    with pytest.raises(ConfigError, match="max_logloss must be"):
        watch(WatchSettings(max_logloss=-1.0), registry)


def test_served_rows_drift_is_reported_against_the_training_profile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    import numpy as np
    import pandas as pd

    from ml.monitoring.profile import profile_categorical, profile_numeric
    from ml.pipeline.watch import drift_of_served_rows
    from ml.serving.service.outcomes import PREDICTIONS_FILE, AppendLog

    monkeypatch.setenv("CTR_PIPELINE_HOME", str(tmp_path))
    rng = np.random.default_rng(0)
    train_cat = pd.Series(rng.choice(["a", "b", "c"], 5000), dtype=object)
    train_num = pd.Series(rng.normal(size=5000))
    profile = {
        "categorical": {"site": profile_categorical(train_cat)},
        "numeric": {"price": profile_numeric(train_num)},
    }
    reg = ModelRegistry("models", lock_timeout=5)
    run = make_run_dir(tmp_path / "runs" / "r1", b"x" * 512)
    reg.register(run, NAME, extra_files={"data_profile.json": json.dumps(profile).encode()})
    reg.promote_to_production(NAME, "v1")
    log = AppendLog(tmp_path / "logs" / PREDICTIONS_FILE)
    for _ in range(20):  # the served sites all "a", prices shifted by +3
        rows = {"site": ["a"] * 50, "price": (rng.normal(size=50) + 3).tolist()}
        log.append({"at": time.time(), "version": "v1", "scores": [0.1] * 50, "features": rows})
    log.close()
    got = drift_of_served_rows(WatchSettings(log_dir=str(tmp_path / "logs")), reg, "v1")
    assert got is not None and got["rows"] == 1000
    by_field = {f["field"]: f for f in got["fields"]}
    assert by_field["site"]["drifted"] and by_field["price"]["drifted"]
    assert drift_of_served_rows(WatchSettings(log_dir=str(tmp_path / "none")), reg, "v1") is None
    same = AppendLog(tmp_path / "same" / PREDICTIONS_FILE)
    for _ in range(20):  # the training distribution: no drift
        rows = {
            "site": rng.choice(["a", "b", "c"], 50).tolist(),
            "price": rng.normal(size=50).tolist(),
        }
        same.append({"at": time.time(), "version": "v1", "scores": [0.1] * 50, "features": rows})
    same.close()
    calm = drift_of_served_rows(WatchSettings(log_dir=str(tmp_path / "same")), reg, "v1")
    assert calm is not None and not any(f["drifted"] for f in calm["fields"])


def test_settings_take_the_config_and_a_param_that_is_not_null_overrides_it() -> None:
    from ml.config import WatchConfig

    cfg = WatchConfig(min_outcomes=50, cooldown_s=10.0, max_logloss=0.7)
    params = {"model_name": "m", "min_outcomes": None, "cooldown_s": 0, "config_path": "c.yaml"}
    s = WatchSettings.from_config(cfg, {**params, "dry_run": True, "max_logloss": None})
    assert (s.model_name, s.min_outcomes, s.cooldown_s, s.max_logloss) == ("m", 50, 0, 0.7)
    assert s.dry_run and s.window_s == 3600.0
    with pytest.raises(ConfigError, match=r"^min_outcomes must be >= 1"):
        WatchSettings.from_config(cfg, {"min_outcomes": 0}).check()
