"""ml.serving.service.routes: the router declares the service's five routes."""

from __future__ import annotations

from fastapi.routing import APIRoute

from ml.serving.service.routes import router


def test_router_declares_every_route_with_its_method() -> None:
    routes = {
        (r.path, method) for r in router.routes if isinstance(r, APIRoute) for method in r.methods
    }
    assert routes == {
        ("/predict", "POST"),
        ("/feedback", "POST"),
        ("/healthz", "GET"),
        ("/readyz", "GET"),
        ("/metrics", "GET"),
    }


def test_predict_documents_its_body_and_errors() -> None:
    (predict,) = [r for r in router.routes if isinstance(r, APIRoute) and r.path == "/predict"]
    assert predict.openapi_extra is not None
    assert "rows" in str(predict.openapi_extra["requestBody"])
    assert {413, 422} <= set(predict.responses)
