"""The Models plugin under a real API server (the shared SQLite stack and its run).

The plugin is loaded from ``plugins/`` through ``AIRFLOW__CORE__PLUGINS_FOLDER``; its
routes check the caller with Airflow's auth manager: no token → 401, a junk token →
403, the read-only ``viewer`` reads but may not promote, ``admin`` promotes and rolls
back. Promote and rollback run on a second model name (``ctr_model_ui``) so the
``ctr_model`` versions other service tests count stay as the DAG run left them.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

pytestmark = [pytest.mark.services, pytest.mark.slow, pytest.mark.timeout(900)]

APP = "/models-ui"
UI_MODEL = "ctr_model_ui"


@contextlib.contextmanager
def _client(stack: Any, user: str | None) -> Iterator[httpx.Client]:
    """An HTTP client of the API server, signed in as ``user`` (None: anonymous)."""
    with httpx.Client(base_url=stack.services.base_url, timeout=120) as client:
        if user is not None:
            password = stack.services.admin_password(user)
            assert password, f"no generated password for {user!r}"
            resp = client.post("/auth/token", json={"username": user, "password": password})
            assert resp.status_code in (200, 201), resp.text
            client.headers["Authorization"] = f"Bearer {resp.json()['access_token']}"
        yield client


def _registry(stack: Any) -> Any:
    from ml.registry.model_registry import ModelRegistry

    return ModelRegistry(stack.registry_dir)


def test_plugin_is_loaded_with_its_app_and_views(kit: Any, sqlite_stack: Any) -> None:
    resp = sqlite_stack.rest.http.get("/api/v2/plugins")
    assert resp.status_code == 200, resp.text
    (plugin,) = [p for p in resp.json()["plugins"] if p["name"] == "ctr_models"]
    assert [a["url_prefix"] for a in plugin["fastapi_apps"]] == [APP]
    views = {v["destination"]: v for v in plugin["external_views"]}
    assert views["nav"]["name"] == "Models" and views["nav"]["href"] == "models-ui/"
    assert views["dag_run"]["href"] == "models-ui/dag-run/{DAG_ID}/{RUN_ID}"
    errors = sqlite_stack.rest.http.get("/api/v2/plugins/importErrors").json()
    assert errors["total_entries"] == 0, errors


def test_without_a_valid_token_nothing_is_read_or_changed(
    kit: Any, sqlite_stack: Any, sqlite_run: str
) -> None:
    registry = _registry(sqlite_stack)
    history, current = registry.history("ctr_model"), registry.current_version("ctr_model")
    with _client(sqlite_stack, None) as anonymous:
        assert anonymous.get(f"{APP}/models").status_code == 401
        assert anonymous.get(f"{APP}/view/ctr_model/v1").status_code == 401
        promote = anonymous.post(f"{APP}/models/ctr_model/versions/v1/promote", json={})
        assert promote.status_code == 401
        assert anonymous.post(f"{APP}/models/ctr_model/rollback", json={}).status_code == 401
        junk = {"Authorization": "Bearer not-a-token"}
        r = anonymous.post(f"{APP}/models/ctr_model/versions/v1/promote", json={}, headers=junk)
        assert r.status_code == 403
    assert registry.history("ctr_model") == history
    assert registry.current_version("ctr_model") == current


def test_the_dag_runs_version_has_its_card(kit: Any, sqlite_stack: Any, sqlite_run: str) -> None:
    with _client(sqlite_stack, "admin") as admin:
        models = {m["name"]: m for m in admin.get(f"{APP}/models").json()}
        assert models["ctr_model"]["latest"] == "v1"
        (v1,) = admin.get(f"{APP}/models/ctr_model/versions").json()
        assert (v1["dag_id"], v1["run_id"], v1["card"]) == (kit.DAG_ID, sqlite_run, "in version")
        card = admin.get(f"{APP}/view/ctr_model/v1")
        assert card.status_code == 200 and "<h1>Model card: ctr_model v1</h1>" in card.text
        assert len(re.findall(r"data:image/png;base64,", card.text)) == 5
        assert (
            f"| DAG / run | {kit.DAG_ID} / {sqlite_run} |"
            in admin.get(f"{APP}/models/ctr_model/versions/v1/card.md").text
        )
        tab = admin.get(f"{APP}/dag-run/{kit.DAG_ID}/{sqlite_run}")
        assert "<h1>Model card: ctr_model v1</h1>" in tab.text
    summary = sqlite_stack.home / "experiments" / "summaries"
    assert any("model_card.html" in p.read_text() for p in summary.rglob("*.json"))


def test_viewer_reads_but_may_not_promote(kit: Any, sqlite_stack: Any, sqlite_run: str) -> None:
    before = _registry(sqlite_stack).history("ctr_model")
    with _client(sqlite_stack, "viewer") as viewer:
        assert viewer.get(f"{APP}/me").json() == {"user": "viewer", "can_edit": False}
        assert viewer.get(f"{APP}/models/ctr_model").status_code == 200
        assert "promote-v1" not in viewer.get(f"{APP}/").text
        r = viewer.post(f"{APP}/models/ctr_model/versions/v1/promote", json={"reason": "no"})
        assert r.status_code == 403, r.text
        assert viewer.post(f"{APP}/models/ctr_model/rollback", json={}).status_code == 403
    assert _registry(sqlite_stack).history("ctr_model") == before


def test_admin_promotes_and_rolls_back(kit: Any, sqlite_stack: Any, sqlite_run: str) -> None:
    registry = _registry(sqlite_stack)
    run_dir = registry.show("ctr_model", "v1")["metadata"]["source"]["run_dir"]
    for _ in range(2):  # two versions, registered without a card (like older versions)
        registry.register(run_dir, UI_MODEL, force=True)
    with _client(sqlite_stack, "admin") as admin:
        assert admin.get(f"{APP}/me").json() == {"user": "admin", "can_edit": True}
        for version in ("v1", "v2"):
            r = admin.post(
                f"{APP}/models/{UI_MODEL}/versions/{version}/promote", json={"reason": "test"}
            )
            assert r.status_code == 200, r.text
        assert registry.current_version(UI_MODEL) == "v2"
        r = admin.post(f"{APP}/models/{UI_MODEL}/rollback", json={"reason": "undo"})
        assert r.status_code == 200, r.text
        assert registry.current_version(UI_MODEL) == "v1"
        events = admin.get(f"{APP}/models/{UI_MODEL}/history").json()
        assert [e["event"] for e in events[:3]] == ["rollback", "promote", "promote"]
        assert {e["by"] for e in events[:3]} == {"admin (Airflow UI)"}
        # A version without a card gets one rendered into the cache, outside the version.
        card = admin.get(f"{APP}/view/{UI_MODEL}/v2")
        assert card.status_code == 200 and "rendered later from v2" in card.text
    assert (sqlite_stack.registry_dir / ".cards" / UI_MODEL / "v2" / "model_card.html").is_file()
    assert registry.verify(UI_MODEL, "v2").ok


def test_fab_roles_decide_who_may_promote_in_the_production_profile(
    kit: Any, pg_stack: Any, pg_run: str
) -> None:
    """PostgreSQL + Celery uses the FAB auth manager: its Viewer role reads the Models
    page but may not promote; its Admin role may. A model name of its own keeps the
    stack's ``ctr_model`` production untouched for the other tests."""
    registry = _registry(pg_stack)
    run_dir = registry.show("ctr_model", "v1")["metadata"]["source"]["run_dir"]
    registry.register(run_dir, "ctr_model_fab", force=True)
    services = pg_stack.services
    with httpx.Client(base_url=services.base_url, timeout=120) as client:
        viewer = {"Authorization": f"Bearer {services.api_token('viewer')}"}
        admin = {"Authorization": f"Bearer {services.api_token('admin')}"}
        assert client.get(f"{APP}/me", headers=viewer).json() == {
            "user": "viewer",
            "can_edit": False,
        }
        assert client.get(f"{APP}/models/ctr_model_fab", headers=viewer).status_code == 200
        url = f"{APP}/models/ctr_model_fab/versions/v1/promote"
        denied = client.post(url, json={"reason": "viewer"}, headers=viewer)
        assert denied.status_code == 403, denied.text
        assert registry.current_version("ctr_model_fab") is None
        allowed = client.post(url, json={"reason": "admin"}, headers=admin)
        assert allowed.status_code == 200, allowed.text
    assert registry.current_version("ctr_model_fab") == "v1"
