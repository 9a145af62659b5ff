"""plugins/models_ui.py in-process: what it registers with Airflow, and who may do what.

Tokens are minted by a real SimpleAuthManager and checked by Airflow's own
``airflow.api_fastapi.core_api.security`` dependencies. Two database lookups those
dependencies make are stubbed (no metadata database here): the DAG's team (none) and
token revocation (none revoked). tests/services/test_models_ui.py runs the same checks
against a real API server.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

CHECKOUT = Path(__file__).resolve().parents[2]
PLUGIN = CHECKOUT / "plugins" / "models_ui.py"
SIMPLE = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"


def _load_plugin() -> Any:
    spec = importlib.util.spec_from_file_location("ctr_models_ui_plugin", PLUGIN)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def plugin() -> Any:
    return _load_plugin()


@pytest.fixture
def auth(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """Bearer headers of an ``admin`` and a ``viewer`` of SimpleAuthManager."""
    from airflow.api_fastapi.app import create_auth_manager, purge_cached_app
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    monkeypatch.setenv("AIRFLOW__CORE__AUTH_MANAGER", SIMPLE)
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "admin:admin,viewer:viewer")
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "False")
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE", str(tmp_path / "pw"))
    monkeypatch.setenv("AIRFLOW__API_AUTH__JWT_SECRET", "x" * 64)
    purge_cached_app()
    manager = create_auth_manager()
    tokens = {
        user: manager.generate_jwt(SimpleAuthManagerUser(username=user, role=user))
        for user in ("admin", "viewer")
    }
    with (
        mock.patch("airflow.models.dag.DagModel.get_team_name", return_value=None),
        mock.patch("airflow.models.revoked_token.RevokedToken.is_revoked", return_value=False),
    ):
        yield {user: f"Bearer {token}" for user, token in tokens.items()}
    purge_cached_app()


def test_plugin_registers_the_app_the_nav_entry_and_the_dag_run_tab(plugin: Any) -> None:
    from airflow.api_fastapi.core_api.datamodels.plugins import ExternalViewResponse

    cls = plugin.CtrModelsPlugin
    (app,) = cls.fastapi_apps
    assert app["url_prefix"] == "/models-ui" and app["app"] is plugin.app
    views = [ExternalViewResponse.model_validate(v) for v in cls.external_views]
    assert views[0].icon == "models-ui/icon.svg"
    assert [(v.destination, v.url_route, v.href) for v in views] == [
        ("nav", "models", "models-ui/"),
        ("dag_run", "model-card", "models-ui/dag-run/{DAG_ID}/{RUN_ID}"),
    ]


def test_no_token_gets_401_and_changes_nothing(plugin: Any, own_home: Any, auth: Any) -> None:
    from fastapi.testclient import TestClient

    from ml.registry.model_registry import ModelRegistry

    client = TestClient(plugin.app)
    before = ModelRegistry("models").history("ctr_model")
    assert client.get("/models").status_code == 401
    assert client.post("/models/ctr_model/versions/v2/promote", json={}).status_code == 401
    assert client.post("/models/ctr_model/rollback", json={}).status_code == 401
    junk = {"Authorization": "Bearer not-a-token"}
    assert (
        client.post("/models/ctr_model/versions/v2/promote", json={}, headers=junk).status_code
        == 403
    )
    assert ModelRegistry("models").history("ctr_model") == before
    page = client.get("/")
    assert page.status_code == 401 and "/auth/login?next=" in page.text


def test_viewer_reads_but_may_not_promote(plugin: Any, own_home: Any, auth: Any) -> None:
    from fastapi.testclient import TestClient

    from ml.registry.model_registry import ModelRegistry

    client = TestClient(plugin.app, headers={"Authorization": auth["viewer"]})
    assert client.get("/me").json() == {"user": "viewer", "can_edit": False}
    assert client.get("/models").json()[0]["current"] == "v1"
    assert "Model card: ctr_model v2" in client.get("/view/ctr_model/v2").text
    assert "promote-v2" not in client.get("/").text
    r = client.post("/models/ctr_model/versions/v2/promote", json={"reason": "try"})
    assert r.status_code == 403
    assert ModelRegistry("models").current_version("ctr_model") == "v1"


def test_admin_promotes_and_rolls_back(plugin: Any, own_home: Any, auth: Any) -> None:
    from fastapi.testclient import TestClient

    from ml.registry.model_registry import ModelRegistry

    client = TestClient(plugin.app, headers={"Authorization": auth["admin"]})
    assert client.get("/me").json() == {"user": "admin", "can_edit": True}
    r = client.post("/models/ctr_model/versions/v2/promote", json={"reason": "plugin test"})
    assert r.status_code == 200, r.text
    registry = ModelRegistry("models")
    assert registry.current_version("ctr_model") == "v2"
    assert registry.history("ctr_model")[-1]["by"] == "admin (Airflow UI)"
    assert client.post("/models/ctr_model/rollback", json={}).status_code == 200
    assert registry.current_version("ctr_model") == "v1"
