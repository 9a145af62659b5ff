"""ml.pipeline.deploy: candidate check, canary, evidence, decision, promotion, finish."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ml.errors import ConfigError, UserError
from ml.pipeline import deploy
from ml.pipeline.deploy import DeploySettings
from ml.registry.model_registry import ModelRegistry
from testkit.registry import make_run_dir
from testkit.serving import write_served_logs

NAME = "ctr_model"


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModelRegistry:
    """v1 in production, v2 and v3 in staging."""
    monkeypatch.setenv("CTR_PIPELINE_HOME", str(tmp_path))
    reg = ModelRegistry("models", lock_timeout=5)
    for i in (1, 2, 3):
        reg.register(make_run_dir(tmp_path / "runs" / f"r{i}", bytes([i]) * 512), NAME)
    reg.promote_to_production(NAME, "v1")
    return reg


@pytest.fixture
def settings(tmp_path: Path) -> Callable[..., DeploySettings]:
    def make(**kw: Any) -> DeploySettings:
        base = {"log_dir": str(tmp_path / "logs"), "require_card": False, "min_impressions": 300}
        return DeploySettings.from_mapping({**base, **kw}, run="deploy_model manual__1")

    return make


def _traffic(tmp_path: Path, n: int, candidate: str, seed: int = 0, **kw: Any) -> None:
    write_served_logs(
        tmp_path / "logs",
        n=n,
        versions={"control": "v1", "candidate": candidate},
        shares={"control": 0.5, "candidate": 0.5},
        seed=seed,
        **kw,
    )


def _run(
    s: DeploySettings, registry: ModelRegistry, tmp_path: Path, **traffic: Any
) -> dict[str, Any]:
    cand = deploy.check_candidate(s, registry)
    started = deploy.start_canary(s, registry, cand["version"], by="deploy_model")
    assert registry.get_canary(NAME)["version"] == cand["version"]  # type: ignore[index]
    assert not deploy.evidence(s, cand["version"], started["since"])["ready"]
    _traffic(tmp_path, 2000, cand["version"], **traffic)
    assert deploy.evidence(s, cand["version"], started["since"])["ready"]
    decision = deploy.decide(s, cand["version"], started["since"], {"card": "http://x/card"})
    if decision["action"] == deploy.PROMOTE:
        deploy.promote(s, registry, cand["version"], "deploy_model (auto)", decision["reason"])
    return {**deploy.finish(s, registry, cand["version"], by="deploy_model"), **decision}


def test_auto_approval_promotes_the_better_candidate(
    registry: ModelRegistry, settings: Callable[..., DeploySettings], tmp_path: Path
) -> None:
    s = settings(approval="auto", version="v2")
    out = _run(s, registry, tmp_path, noise={"control": 1.5, "candidate": 0.2})
    assert out["verdict"] == "better" and out["outcome"] == "promoted"
    assert registry.current_version(NAME) == "v2" and registry.get_canary(NAME) is None
    events = [e for e in registry.history(NAME) if e["event"] in ("canary", "promote")][-3:]
    assert [e["event"] for e in events] == ["canary", "promote", "canary"]
    assert "deploy_model manual__1: candidate BETTER on auc" in events[1]["reason"]
    assert "[card](http://x/card)" in out["markdown"] and "verdict:" in out["markdown"]


def test_auto_approval_ends_the_canary_of_a_worse_candidate(
    registry: ModelRegistry, settings: Callable[..., DeploySettings], tmp_path: Path
) -> None:
    s = settings(approval="auto", version="v3")
    out = _run(s, registry, tmp_path, noise={"control": 0.2, "candidate": 1.5})
    assert out["verdict"] == "worse" and out["action"] == deploy.END
    assert out["outcome"] == "not promoted"
    assert registry.current_version(NAME) == "v1" and registry.get_canary(NAME) is None


def test_manual_approval_asks(
    registry: ModelRegistry, settings: Callable[..., DeploySettings], tmp_path: Path
) -> None:
    out = _run(settings(version="v2"), registry, tmp_path, noise={"candidate": 0.2})
    assert out["action"] == "ask" and registry.current_version(NAME) == "v1"


def test_evidence_times_out_after_max_wait(
    registry: ModelRegistry, settings: Callable[..., DeploySettings]
) -> None:
    s = settings(max_wait_s=5.0)
    got = deploy.evidence(s, "v2", time.time() - 10)
    assert got["ready"] and got["timed_out"] and got["candidate"] == 0
    reason = deploy.decide(s, "v2", time.time() - 10, {})["reason"]
    assert "max_wait (5 s) passed" in reason


def test_evidence_counts_only_the_canary_version_for_the_candidate(
    registry: ModelRegistry, settings: Callable[..., DeploySettings], tmp_path: Path
) -> None:
    since = time.time() - 1
    _traffic(tmp_path, 1000, "v3")  # a previous experiment's candidate
    got = deploy.evidence(settings(), "v2", since)
    assert got["candidate"] == 0 and got["control"] > 300 and not got["ready"]


def test_check_candidate_refuses_current_and_a_missing_card(
    registry: ModelRegistry, settings: Callable[..., DeploySettings]
) -> None:
    with pytest.raises(UserError, match="current version already"):
        deploy.check_candidate(settings(version="v1"), registry)
    with pytest.raises(UserError, match="no model card"):
        deploy.check_candidate(settings(version="v2", require_card=True), registry)
    assert deploy.check_candidate(settings(), registry)["version"] == "v3"  # latest


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        ("canary_traffic", 1.5, "canary_traffic"),
        ("approval", "maybe", "approval must be"),
        ("min_impressions", 0, "min_impressions"),
        ("metric", "f1", "metric must be"),
    ],
)
def test_bad_params_are_config_errors(key: str, value: Any, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        DeploySettings.from_mapping({key: value})


def test_approver_names_the_user_who_responded() -> None:
    response = {"chosen_options": ["Approve"], "responded_by_user": {"id": "1", "name": "admin"}}
    assert deploy.approver(response, "x") == "admin (Airflow UI)"
    assert deploy.approver(None, "deploy_model (auto)") == "deploy_model (auto)"


def test_links_point_at_the_card_and_the_models_page_in_the_ui() -> None:
    got = deploy.links("ctr_model", "v2", "https://airflow.example")
    assert got == {
        "model card of v2": "https://airflow.example/plugin/models/models-ui/view/ctr_model/v2",
        "Models page: ctr_model": "https://airflow.example/plugin/models/models-ui/view/ctr_model",
    }


def test_finish_leaves_a_canary_someone_else_set(
    registry: ModelRegistry, settings: Callable[..., DeploySettings]
) -> None:
    registry.set_canary(NAME, "v3", 0.2, by="alice", reason="by hand")
    out = deploy.finish(settings(), registry, "v2", by="deploy_model")
    assert out["outcome"] == "not promoted"
    assert registry.get_canary(NAME)["version"] == "v3"  # type: ignore[index]


def test_start_canary_refuses_to_replace_another_versions_canary(
    registry: ModelRegistry, settings: Callable[..., DeploySettings]
) -> None:
    registry.set_canary(NAME, "v3", 0.2, by="alice", reason="by hand")
    with pytest.raises(UserError, match="a canary of v3 is running"):
        deploy.start_canary(settings(), registry, "v2", by="deploy_model")
    assert registry.get_canary(NAME)["version"] == "v3"  # type: ignore[index]
    again = deploy.start_canary(settings(canary_traffic=0.3), registry, "v3", by="x")
    assert again["traffic"] == 0.3  # the same version: a retry, or a new share


def test_finish_after_a_failed_approval_turns_the_canary_off_and_says_what_failed(
    registry: ModelRegistry, settings: Callable[..., DeploySettings]
) -> None:
    """What deploy_model's finish does after approve failed (promote never ran)."""
    s = settings(version="v2")
    deploy.start_canary(s, registry, "v2", by="deploy_model")
    states = {"wait_for_evidence": "success", "decide": "success", "approve": "failed"}
    states |= {"promote": "upstream_failed", "check_candidate": "failed"}
    decision = {"action": "ask", "verdict": "better"}
    note = deploy.finish_note(states, decision, None, "auto")
    assert note == "approve failed; promote upstream_failed"
    out = deploy.finish(s, registry, "v2", by="deploy_model", note=note)
    assert out["outcome"] == "not promoted" and "(approve failed;" in out["text"]
    assert registry.get_canary(NAME) is None and registry.current_version(NAME) == "v1"
    off = [e for e in registry.history(NAME) if e["event"] == "canary"][-1]
    assert off["version"] is None and "not promoted (approve failed" in off["reason"]
    assert deploy.finish_note({"approve": "skipped", "promote": "skipped"}, None, None, "") == ""


def test_finish_note_names_who_rejected_and_the_verdict() -> None:
    bob = {"chosen_options": ["Reject"], "responded_by_user": {"id": "7", "name": "bob"}}
    decision = {"action": "ask", "verdict": "better"}
    states = {"approve": "success", "promote": "skipped"}
    got = deploy.finish_note(states, decision, bob, "auto")
    assert got == "rejected by bob (Airflow UI); verdict better"
    approved = {"chosen_options": ["Approve"], "responded_by_user": {"name": "ann"}}
    assert deploy.finish_note(states, decision, approved, "auto") == ""
    ended = deploy.finish_note({}, {"action": "end", "verdict": "worse"}, None, "auto")
    assert ended == "approval: auto ended it, verdict worse"
