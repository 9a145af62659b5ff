"""ml.serving.service.dependencies: the routes get the app's service, and with
``auth: required`` every route but the probes needs a bearer token with its scope."""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

with warnings.catch_warnings():  # starlette's note about httpx2, raised at import
    warnings.filterwarnings("ignore", message=".*httpx2.*")
    from fastapi.testclient import TestClient

from ml.data.generate.world_default import DEFAULT_SPEC
from ml.data.loading import load_split
from ml.errors import UserError
from ml.serving.service.app import create_app
from ml.serving.service.auth import TOKENS_ENV
from ml.serving.service.dependencies import get_service
from ml.serving.service.settings import ServeSettings

TOKENS = {
    "predict": "predict-token-0123456789abcdef",
    "feedback": "feedback-token-0123456789abcdef",
    "metrics": "metrics-token-0123456789abcdef",
}
WRONG = "not-a-known-token-0123456789abcdef"


def test_get_service_returns_the_apps_service() -> None:
    service = object()
    request: Any = SimpleNamespace(app=SimpleNamespace(state=SimpleNamespace(service=service)))
    assert get_service(request) is service


def _write_tokens(path: Path, lines: list[str]) -> None:
    tmp = path.with_name(path.name + ".new")
    tmp.write_text("".join(f"{line}\n" for line in lines))
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)  # atomic: a reader sees the old file or the new one


@pytest.fixture(scope="module")
def row(tiny_features_dir: Path) -> dict[str, Any]:
    df = load_split(tiny_features_dir, "test", DEFAULT_SPEC, with_label=False).head(1)
    record = df.astype(object).to_dict("records")[0]
    return {k: (v.item() if hasattr(v, "item") else v) for k, v in record.items()}


@pytest.fixture
def secured(registry_dir: Path, tmp_path: Path) -> Iterator[tuple[TestClient, Path]]:
    token_file = tmp_path / "tokens.txt"
    _write_tokens(token_file, [f"{token} {scope}" for scope, token in TOKENS.items()])
    settings = ServeSettings(
        registry_dir=str(registry_dir),
        log_dir=str(tmp_path / "logs"),
        threads=1,
        auth="required",
        token_file=str(token_file),
    )
    with TestClient(create_app(settings)) as client:
        yield client, token_file


def _call(client: TestClient, route: str, token: str | None, row: dict[str, Any]) -> Any:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    if route == "/metrics":
        return client.get(route, headers=headers)
    if route == "/predict":
        return client.post(route, json={"rows": [row]}, headers=headers)
    rid = client.post(
        "/predict", json={"rows": [row]}, headers={"Authorization": f"Bearer {TOKENS['predict']}"}
    ).json()["request_id"]
    return client.post(route, json={"request_id": rid, "clicked": 1}, headers=headers)


_METHOD = {"/predict": "POST", "/feedback": "POST", "/metrics": "GET"}
ROUTES = [
    ("/predict", "predict", 200),
    ("/feedback", "feedback", 202),
    ("/metrics", "metrics", 200),
]


@pytest.mark.parametrize(("route", "scope", "ok"), ROUTES)
def test_every_route_needs_a_token_with_its_scope(
    secured: tuple[TestClient, Path], row: dict[str, Any], route: str, scope: str, ok: int
) -> None:
    client, _ = secured
    missing = _call(client, route, None, row)
    assert missing.status_code == 401 and missing.headers["www-authenticate"].startswith("Bearer")
    assert f"needs a bearer token with scope {scope}" in missing.text
    wrong = _call(client, route, WRONG, row)
    assert wrong.status_code == 401 and 'error="invalid_token"' in wrong.headers["www-authenticate"]
    assert WRONG not in wrong.text
    other = next(t for s, t in TOKENS.items() if s != scope)
    forbidden = _call(client, route, other, row)
    assert forbidden.status_code == 403 and f"do not include {scope}" in forbidden.text
    assert 'error="insufficient_scope"' in forbidden.headers["www-authenticate"]
    assert _call(client, route, TOKENS[scope], row).status_code == ok
    basic = {"Authorization": "Basic dXNlcjpwYXNz"}  # not a bearer token: as if none was sent
    assert client.request(_METHOD[route], route, headers=basic).status_code == 401
    metrics = client.get("/metrics", headers={"Authorization": f"Bearer {TOKENS['metrics']}"})
    endpoint = route.strip("/")
    assert f'{{endpoint="{endpoint}",reason="unauthorized"}} 3.0' in metrics.text
    assert f'{{endpoint="{endpoint}",reason="forbidden"}} 1.0' in metrics.text


def test_probes_and_docs_stay_open(secured: tuple[TestClient, Path]) -> None:
    client, _ = secured
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").json()["control"]["version"] == "v1"
    spec = client.get("/openapi.json").json()
    assert "HTTPBearer" in spec["components"]["securitySchemes"]
    assert "security" in spec["paths"]["/feedback"]["post"]
    assert "security" not in spec["paths"]["/healthz"]["get"]


def test_tokens_from_the_environment_and_a_service_without_any_refuses_to_start(
    registry_dir: Path, tmp_path: Path, row: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = ServeSettings(
        registry_dir=str(registry_dir), log_dir=str(tmp_path / "logs"), threads=1, auth="required"
    )
    with pytest.raises(UserError, match=f"neither --token-file nor \\${TOKENS_ENV} holds a token"):
        create_app(settings)
    monkeypatch.setenv(TOKENS_ENV, f"{TOKENS['predict']} predict")
    with TestClient(create_app(settings)) as client:
        headers = {"Authorization": f"Bearer {TOKENS['predict']}"}
        assert client.post("/predict", json={"rows": [row]}, headers=headers).status_code == 200
        assert client.post("/predict", json={"rows": [row]}).status_code == 401


def test_token_rotation_under_load_loses_no_request(
    secured: tuple[TestClient, Path], row: dict[str, Any]
) -> None:
    """Old token A; the file gains B; clients move to B; A is removed. Every request made
    with a token valid at that moment succeeds; A fails once it is gone."""
    client, token_file = secured
    old, new = TOKENS["predict"], "rotated-predict-token-0123456789"
    current = [old]
    statuses: list[tuple[str, int]] = []
    stop = threading.Event()
    progress = threading.Condition()

    def fire() -> None:
        while not stop.is_set():
            token = current[0]
            response = client.post(
                "/predict", json={"rows": [row]}, headers={"Authorization": f"Bearer {token}"}
            )
            with progress:
                statuses.append((token, response.status_code))
                progress.notify_all()

    def after(n: int) -> None:  # wait until n more requests were answered
        with progress:
            target = len(statuses) + n
            assert progress.wait_for(lambda: len(statuses) >= target, timeout=60)

    others = [f"{t} {s}" for s, t in TOKENS.items() if s != "predict"]
    thread = threading.Thread(target=fire)
    thread.start()
    try:
        after(20)
        _write_tokens(token_file, [f"{old} predict", f"{new} predict", *others])
        after(20)
        current[0] = new  # the clients move to the new token
        after(20)
        _write_tokens(token_file, [f"{new} predict", *others])  # the old one is revoked
        after(20)
    finally:
        stop.set()
        thread.join()
    assert len(statuses) >= 80 and {s for _, s in statuses} == {200}
    assert {t for t, _ in statuses} == {old, new}
    headers = {"Authorization": f"Bearer {old}"}
    assert client.post("/predict", json={"rows": [row]}, headers=headers).status_code == 401
