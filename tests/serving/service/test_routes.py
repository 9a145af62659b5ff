"""ml.serving.service.routes: the router declares the service's five routes and the scope
each needs."""

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


def test_each_route_but_the_probes_declares_its_scope() -> None:
    scopes = {}
    for r in router.routes:
        if isinstance(r, APIRoute):
            deps = r.dependant.dependencies
            scopes[r.path] = sorted(s for d in deps for s in (d.own_oauth_scopes or []))
    assert scopes == {
        "/predict": ["predict"],
        "/feedback": ["feedback"],
        "/metrics": ["metrics"],
        "/healthz": [],
        "/readyz": [],
    }
    (feedback,) = [r for r in router.routes if isinstance(r, APIRoute) and r.path == "/feedback"]
    assert {401, 403, 404, 409, 410, 413, 422} <= set(feedback.responses)
