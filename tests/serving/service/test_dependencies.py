"""ml.serving.service.dependencies: the routes get the service the app was built with."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from ml.serving.service.dependencies import get_service


def test_get_service_returns_the_apps_service() -> None:
    service = object()
    request: Any = SimpleNamespace(app=SimpleNamespace(state=SimpleNamespace(service=service)))
    assert get_service(request) is service
