"""The scoring service's routes (one ``APIRouter``; OpenAPI at ``/docs``)::

    POST /predict   {"rows": [{field: value}, ...], "key": optional}
                    -> {"request_id", "model", "version", "variant", "probabilities"}
    POST /feedback  {"request_id", "clicked": bool | [bool, ...], "row": 0}  -> 202
    GET  /healthz   the process answers
    GET  /readyz    which versions serve (503 until the models are loaded)
    GET  /metrics   Prometheus text (all workers)

Each route is one call into the worker's :class:`~ml.serving.service.state.Service`.
With ``--auth required``, ``/predict``, ``/feedback`` and ``/metrics`` need a bearer
token with the scope of the same name (401 / 403 otherwise); ``/healthz`` and ``/readyz``
stay open for probes. The routes that take a body read it themselves, after the token
is checked and with a size limit (413).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Security
from fastapi.responses import Response

from ml.serving.service.dependencies import ServiceDep, authorize
from ml.serving.service.metrics import CONTENT_TYPE
from ml.serving.service.schemas import Feedback, PredictRequest, PredictResponse

router = APIRouter()


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


_AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "no bearer token, or an unknown one"},
    403: {"description": "the token lacks the route's scope"},
}


@router.post(
    "/predict",
    response_model=PredictResponse,
    openapi_extra=_body(PredictRequest.model_json_schema()),
    summary="Click probabilities for a batch of rows (at most the service's --max-batch)",
    responses={
        **_AUTH_ERRORS,
        413: {"description": "body too large"},
        422: {"description": "bad rows, or JSON nested too deeply"},
    },
    dependencies=[Security(authorize, scopes=["predict"])],
)
async def predict(request: Request, service: ServiceDep) -> Response:
    # The body is read by the service itself: it enforces the size limit before parsing.
    return await service.predict(request)


@router.post(
    "/feedback",
    status_code=202,
    summary="Record whether scored rows were clicked (once per request id and row)",
    openapi_extra=_body(Feedback.model_json_schema()),
    responses={
        **_AUTH_ERRORS,
        404: {"description": "a request id this service did not issue"},
        409: {"description": "an outcome for that request id and row was already recorded"},
        410: {"description": "the request id is older than --feedback-ttl"},
        413: {"description": "body too large"},
        422: {"description": "a bad body, or a row the request did not score"},
    },
    dependencies=[Security(authorize, scopes=["feedback"])],
)
async def feedback(request: Request, service: ServiceDep) -> Response:
    return await service.record_feedback(request)


@router.get("/healthz", summary="Liveness")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: the versions being served")
async def readyz(service: ServiceDep) -> dict[str, Any]:
    return service.readiness()


@router.get(
    "/metrics",
    summary="Prometheus metrics (all workers)",
    responses=_AUTH_ERRORS,
    dependencies=[Security(authorize, scopes=["metrics"])],
)
def metrics(service: ServiceDep) -> Response:
    return Response(service.metrics.render(), media_type=CONTENT_TYPE)
