"""The Models app with stand-in auth dependencies (the plugin supplies Airflow's)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from fastapi import HTTPException
from fastapi.testclient import TestClient

from ml.cards.webapp import Access, create_app
from ml.pipeline.summary import update_summary
from ml.registry.model_registry import ModelRegistry


def _client(can_edit: bool = True, can_read: bool = True) -> TestClient:
    def reader() -> Access:
        if not can_read:
            raise HTTPException(401, "Not authenticated")
        return Access("alice", can_edit)

    def editor() -> str:
        if not can_edit:
            raise HTTPException(403, "Forbidden")
        return "alice (test)"

    return TestClient(create_app(reader=reader, editor=editor))


def _state(home: Any) -> tuple[str | None, int]:
    registry = ModelRegistry("models")
    return registry.current_version("ctr_model"), len(registry.history("ctr_model"))


def test_read_only_json(shared_home: Any) -> None:
    client = _client(can_edit=False)
    assert client.get("/models").json() == [
        {
            "name": "ctr_model",
            "current": "v1",
            "versions": 2,
            "latest": "v2",
            "production_versions": ["v1"],
        }
    ]
    versions = client.get("/models/ctr_model/versions").json()
    assert [(v["version"], v["stages"], v["current"]) for v in versions] == [
        ("v2", ["staging"], False),
        ("v1", ["staging", "production"], True),
    ]
    assert versions[0]["card_page"] == "/models-ui/view/ctr_model/v2"
    assert versions[0]["dag_id"] == "training_pipeline" and versions[0]["run_id"] == "manual__b"
    assert isinstance(versions[0]["test_auc"], float) and versions[0]["created_at"]
    events = client.get("/models/ctr_model/history").json()
    assert [e["event"] for e in events] == ["register", "promote", "register"]  # newest first
    assert client.get("/me").json() == {"user": "alice", "can_edit": False}
    assert client.get("/models/nope/versions").status_code == 404
    assert client.get("/models/nope").status_code == 404
    assert client.get("/models/ctr_model/versions/v9").status_code == 404


def test_page_lists_versions_history_and_offers_actions_to_editors(shared_home: Any) -> None:
    page = _client(can_edit=True).get("/").text
    assert "data-testid='versions-ctr_model'" in page and "data-testid='history'" in page
    assert "data-testid='promote-v2'" in page and "data-testid='promote-v1'" not in page
    assert "href='/view/ctr_model/v2'" in page
    readonly = _client(can_edit=False).get("/").text
    assert "promote-v2" not in readonly and "read only" in readonly


def test_card_page_serves_the_versions_card_with_a_way_back(shared_home: Any) -> None:
    html = _client().get("/view/ctr_model/v2").text
    assert "<h1>Model card: ctr_model v2</h1>" in html
    assert "href='/view/ctr_model'>← ctr_model</a>" in html
    assert len(re.findall(r"data:image/png;base64,", html)) == 5
    md = _client().get("/models/ctr_model/versions/v2/card.md")
    assert md.headers["content-type"].startswith("text/markdown")
    assert md.text.startswith("# Model card: ctr_model v2")


def test_unauthenticated_reads_get_401_and_a_sign_in_page(shared_home: Any) -> None:
    client = _client(can_read=False)
    assert client.get("/models").status_code == 401
    assert client.get("/models").json() == {"detail": "Not authenticated"}
    page = client.get("/view/ctr_model/v2")
    assert page.status_code == 401 and "<h1>Sign in needed</h1>" in page.text
    assert "Model card" not in page.text


def _flagged(name: str, version: str, worse: bool = True) -> Any:
    from ml.cards.promotion import PromotionCheck

    return PromotionCheck(
        name,
        version,
        "v1",
        "recorded",
        worse,
        False,
        auc_delta=-0.0196,
        logloss_delta=0.0492,
        lines=[
            "ctr_model v2 (candidate) against v1",
            f"  {version} is WORSE than v1: promote only if you mean it",
        ],
    )


def test_promoting_a_worse_version_needs_an_explicit_confirmation(
    own_home: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ml.cards import webapp

    monkeypatch.setattr(
        webapp, "promotion_check", lambda reg, name, version: _flagged(name, version)
    )
    before = _state(own_home)
    client = _client()
    r = client.post("/models/ctr_model/versions/v2/promote", json={"reason": "hotfix"})
    assert r.status_code == 409
    assert r.json()["detail"] == (
        "v2 is WORSE than v1: promote only if you mean it (confirm to promote anyway)"
    )
    assert r.json()["check"]["needs_confirmation"] is True and _state(own_home) == before
    r = client.post(
        "/models/ctr_model/versions/v2/promote", json={"reason": "hotfix", "confirm": True}
    )
    assert r.status_code == 200, r.text
    last = ModelRegistry("models").history("ctr_model")[-1]
    assert last["reason"] == (
        "hotfix [promoted despite the check: worse than v1 (AUC -0.0196, log loss +0.0492)]"
    )
    assert _state(own_home)[0] == "v2"


def test_promotion_check_is_readable_by_viewers_and_shown_before_promoting(own_home: Any) -> None:
    viewer = _client(can_edit=False)
    check = viewer.get("/models/ctr_model/versions/v2/promotion-check").json()
    assert (check["candidate"], check["production"], check["compared"]) == ("v2", "v1", "recorded")
    assert {"auc_delta", "auc_interval", "logloss_interval", "worse", "other_data"} <= set(check)
    assert check["lines"][0] == "ctr_model v2 (candidate) against v1 (production's current version)"
    page = _client().get("/").text
    assert "ctrCheck('/models/ctr_model/versions/v2/promotion-check'" in page
    assert "data-testid='check-v2'" in page and "data-testid='confirm-anyway-v2'" in page
    assert "ctrCheck" not in viewer.get("/").text.split("<main>")[1]
    assert viewer.get("/models/ctr_model/versions/v9/promotion-check").status_code == 404


def test_compare_is_bounded_refuses_duplicates_and_caches(
    own_home: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ml.cards import compare_cache

    client = _client(can_edit=False)
    big = client.get("/models/ctr_model/compare?versions=v1&versions=v2&bootstrap=10000")
    assert big.status_code == 422
    assert big.json()["detail"].startswith("bootstrap=10000: ask for 1 to 2000 resamples here")
    dup = client.get("/view/ctr_model/compare?versions=v1&versions=v2&versions=v2")
    assert dup.status_code == 422 and "version(s) v2 given more than once" in dup.text
    url = "/models/ctr_model/compare?versions=v1&versions=v2&bootstrap=25"
    first = client.get(url).json()
    assert first["cached"] is False

    def never(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("computed again")

    monkeypatch.setattr(compare_cache, "compare_versions", never)
    again = client.get(url).json()
    assert again["cached"] is True and again["differences"] == first["differences"]


def test_promote_and_rollback_by_an_editor(own_home: Any) -> None:
    client = _client()
    r = client.post("/models/ctr_model/versions/v2/promote", json={"reason": "better AUC"})
    assert r.status_code == 200, r.text
    assert r.json()["message"] == "ctr_model v2 promoted to production (current: v1 → v2)"
    assert _state(own_home)[0] == "v2"
    last = ModelRegistry("models").history("ctr_model")[-1]
    assert (last["event"], last["by"], last["reason"]) == ("promote", "alice (test)", "better AUC")
    r = client.post("/models/ctr_model/rollback", json={})
    assert r.status_code == 200 and r.json()["version"] == "v1"
    assert _state(own_home)[0] == "v1"


def test_refused_actions_change_nothing(own_home: Any) -> None:
    before = _state(own_home)
    viewer = _client(can_edit=False)
    assert viewer.post("/models/ctr_model/versions/v2/promote", json={}).status_code == 403
    assert viewer.post("/models/ctr_model/rollback", json={}).status_code == 403
    editor = _client()
    form = editor.post(
        "/models/ctr_model/versions/v2/promote",
        content="reason=x",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert form.status_code in (415, 422)
    assert editor.post("/models/ctr_model/rollback", json={}).status_code == 409  # no previous
    assert editor.post("/models/ctr_model/versions/v9/promote", json={}).status_code == 404
    assert _state(own_home) == before


def test_compare_page_and_json(shared_home: Any) -> None:
    client = _client()
    data = client.get("/models/ctr_model/compare?versions=v1&versions=v2&bootstrap=30").json()
    assert [m["label"] for m in data["models"]] == ["v1", "v2"] and data["rows"] == 450
    page = client.get("/view/ctr_model/compare?versions=v1&versions=v2").text
    assert "data-testid='comparison'" in page and "95% bootstrap interval" in page
    one = client.get("/view/ctr_model/compare?versions=v1")
    assert one.status_code == 400 and "at least two different versions" in one.text


@pytest.mark.parametrize("with_summary", [True, False])
def test_dag_run_view_opens_the_card_of_the_version_it_registered(
    own_home: Any, with_summary: bool
) -> None:
    if not with_summary:  # found through the versions' recorded producers instead
        for path in (own_home.home / "experiments" / "summaries").rglob("*.json"):
            path.unlink()
    else:  # the summary names the version (even one a search would not find first)
        update_summary(
            "training_pipeline", "manual__zzz", model_name="ctr_model", model_version="v1"
        )
        assert (
            "Model card: ctr_model v1"
            in _client().get("/dag-run/training_pipeline/manual__zzz").text
        )
    page = _client().get("/dag-run/training_pipeline/manual__b").text
    assert "<h1>Model card: ctr_model v2</h1>" in page
    none = _client().get("/dag-run/training_pipeline/manual__none").text
    assert "registered no model version" in none


def test_json_errors_are_json(shared_home: Any) -> None:
    r = _client().get("/models/bad..name")
    assert r.status_code == 400
    assert json.loads(r.text)["detail"].startswith("invalid model name 'bad..name'")


def _deploy_history(registry: ModelRegistry) -> None:
    """What deploy_model and watch_production write: v2's canary, its approval by admin,
    the canary off, then watch_production's automatic rollback with the degraded figure."""
    run = "deploy_model manual__2026-12-07"
    registry.set_canary("ctr_model", "v2", 0.1, by="deploy_model", reason=f"{run}: canary started")
    registry.promote_to_production(
        "ctr_model",
        "v2",
        f"{run}: candidate BETTER on auc (1,000 control / 1,000 candidate outcomes); "
        "approved by admin (Airflow UI)",
        by="admin (Airflow UI)",
    )
    registry.clear_canary("ctr_model", by="deploy_model", reason=f"{run}: finished, promoted")
    registry.rollback(
        "ctr_model",
        "watch_production scheduled__1: v2 degraded on 3,000 outcomes: log loss 0.9000 "
        "[0.8800, 0.9200] > 0.7",
        by="watch_production (automatic)",
    )


def test_card_and_models_page_show_canary_approval_and_automatic_rollback(own_home: Any) -> None:
    _deploy_history(ModelRegistry("models"))
    client = _client(can_edit=False)
    card = client.get("/view/ctr_model/v2").text
    trail = card[card.index("data-testid='card-history'") :]
    trail = trail[: trail.index("</table>")]
    rows = re.findall(r"<tr>(.*?)</tr>", trail)[1:]  # newest first, the head row skipped
    assert [re.findall(r"<td[^>]*>(.*?)</td>", r)[1] for r in rows] == [
        "rollback",
        "canary",
        "promote",
        "canary",
        "register",
    ]
    assert "v2 → v1" in rows[0] and "watch_production (automatic)" in rows[0]
    assert "log loss 0.9000 [0.8800, 0.9200] &gt; 0.7" in rows[0]
    assert "admin (Airflow UI)" in rows[2] and "candidate BETTER on auc" in rows[2]
    assert "deploy_model manual__2026-12-07" in rows[2] and "v2 at 10%" in rows[3]
    assert "off (was v2)" in rows[1] and "finished, promoted" in rows[1]
    md = client.get("/models/ctr_model/versions/v2/card.md").text
    assert "## Deployment history of v2" in md and "| rollback | v2 → v1 |" in md
    assert "approved by admin (Airflow UI)" in md
    page = client.get("/view/ctr_model").text
    history = page[page.index("data-testid='history'") :]
    assert "watch_production (automatic)" in history and "v2 at 10%" in history
    assert "approved by admin (Airflow UI)" in history
    # v1's card shows only what concerns v1: its registration, promotion, and the rollback
    v1 = client.get("/view/ctr_model/v1").text
    v1_trail = v1[v1.index("card-history") : v1.index("</table>", v1.index("card-history"))]
    assert "canary" not in v1_trail and "rollback" in v1_trail
