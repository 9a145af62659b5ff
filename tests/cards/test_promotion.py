"""The promotion check: candidate against production, on the same data or scored anew."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from ml.cards import compare_cache
from ml.cards.promotion import PromotionCheck, promotion_check
from ml.errors import VersionNotFoundError
from ml.registry.model_registry import ModelRegistry


class _Edited:
    """A registry whose ``show`` edits a version's metadata (digest, features, metrics)."""

    def __init__(self, version: str, **metadata: Any) -> None:
        self._reg = ModelRegistry("models")
        self._version = version
        self._metadata = metadata

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._reg, attr)

    def show(self, name: str, ref: str = "latest", stage: str | None = None) -> dict[str, Any]:
        info = copy.deepcopy(self._reg.show(name, ref, stage))
        if info["version"] == self._version:
            for key, value in self._metadata.items():
                info["metadata"][key] = value
        return info


def _recorded(version: str, key: str) -> float:
    return float(ModelRegistry("models").show("ctr_model", version)["metadata"]["metrics"][key])


def _features(version: str) -> str:
    return str(ModelRegistry("models").show("ctr_model", version)["metadata"]["features_dir"])


def test_same_data_uses_the_recorded_metrics_and_scored_intervals(own_home: Any) -> None:
    check = promotion_check(ModelRegistry("models"), "ctr_model", "v2", n_boot=200)
    assert (check.candidate, check.production, check.compared) == ("v2", "v1", "recorded")
    assert check.other_data is False
    assert check.auc_delta == pytest.approx(
        _recorded("v2", "test_auc") - _recorded("v1", "test_auc")
    )
    assert check.logloss_delta == pytest.approx(
        _recorded("v2", "test_logloss") - _recorded("v1", "test_logloss")
    )
    assert check.auc_interval is not None and check.logloss_interval is not None
    assert check.auc_interval["low"] < check.auc_interval["high"]
    assert check.scored_on.endswith("data/features/v1 test split (450 rows)")  # type: ignore[union-attr]
    expected_worse = check.auc_interval["high"] < 0 or check.logloss_interval["low"] > 0
    assert check.worse is expected_worse and check.needs_confirmation is expected_worse
    text = "\n".join(check.lines)
    assert "data/features/v1 (data " in check.candidate_data  # type: ignore[operator]
    assert check.candidate_data == check.production_data
    assert "same data: deltas from the test metrics recorded at registration" in text
    assert f"AUC v2 − v1: {check.auc_delta:+.4f}, 95% " in text
    assert check.to_dict()["needs_confirmation"] is expected_worse


def test_an_interval_below_zero_makes_the_candidate_worse(
    own_home: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def scored(*args: Any, **kwargs: Any) -> dict[str, Any]:
        diff = {
            "auc": -0.0196,
            "logloss": 0.0492,
            "auc_interval": {"diff": -0.0196, "low": -0.031, "high": -0.009},
            "logloss_interval": {"diff": 0.0492, "low": 0.03, "high": 0.068},
        }
        return {"differences": [diff], "features_dir": "f", "split": "test", "rows": 9000}

    monkeypatch.setattr(compare_cache, "cached_compare_versions", scored)
    check = promotion_check(ModelRegistry("models"), "ctr_model", "v2")
    assert check.worse and not check.other_data and check.needs_confirmation
    assert "v2 is WORSE than v1: promote only if you mean it" in check.lines[-1]
    assert check.summary().startswith("worse than v1 (AUC ")
    assert check.summary().endswith(
        "log loss " + f"{check.logloss_delta:+.4f}, 95% +0.0300 to +0.0680)"
    )
    assert check.audit_reason("hotfix") == f"hotfix [promoted despite the check: {check.summary()}]"
    assert check.audit_reason(None) == f"promoted despite the check: {check.summary()}"


def test_other_data_scores_both_on_the_candidates_split(own_home: Any) -> None:
    registry = _Edited("v2", data_fingerprint={"digest": "f" * 64})
    check = promotion_check(registry, "ctr_model", "v2", n_boot=100)
    assert check.other_data and check.compared == "scored" and check.needs_confirmation
    scored = compare_cache.cached_compare_versions(
        ModelRegistry("models"),
        "ctr_model",
        ["v1", "v2"],
        features_dir=_features("v2"),
        n_boot=100,
    )
    assert scored["cached"] is True  # the check's own comparison, kept
    (diff,) = scored["differences"]
    assert check.auc_delta == diff["auc"] and check.logloss_delta == diff["logloss"]
    assert "  other data: both scored on v2's test split" in check.lines
    assert "v2 was tested on other data than v1" in check.lines[-1]
    assert "(data ffffffffffff)" in check.candidate_data  # type: ignore[operator]


def test_other_data_that_cannot_be_scored_still_needs_confirmation(own_home: Any) -> None:
    registry = _Edited("v2", data_fingerprint=None, features_dir=None)
    check = promotion_check(registry, "ctr_model", "v2")
    assert check.compared == "nothing" and check.other_data and not check.worse
    assert check.auc_delta is None and check.auc_interval is None
    assert "could not be scored on the same rows: v2 records no features directory" in "\n".join(
        check.lines
    )
    assert check.audit_reason("ok") == "ok [promoted despite the check: tested on other data]"


def test_without_intervals_any_recorded_drop_counts(own_home: Any) -> None:
    metrics = {"test_auc": _recorded("v1", "test_auc") - 0.001, "test_logloss": 0.0}
    registry = _Edited("v2", features_dir=None, metrics=metrics)
    check = promotion_check(registry, "ctr_model", "v2")
    assert check.compared == "recorded" and check.auc_interval is None
    assert check.worse and check.auc_delta == pytest.approx(-0.001)
    assert any("no intervals (could not score" in line for line in check.lines)


def test_nothing_to_check_without_a_production_version(own_home: Any) -> None:
    check = promotion_check(ModelRegistry("models"), "ctr_model", "v1")
    assert check == PromotionCheck(
        "ctr_model", "v1", "v1", "nothing", False, False, lines=["v1 already is current"]
    )
    with pytest.raises(VersionNotFoundError):
        promotion_check(ModelRegistry("models"), "ctr_model", "v9")
