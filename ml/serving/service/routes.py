"""The scoring service's routes (one ``APIRouter``; OpenAPI at ``/docs``)::

    POST /predict   {"rows": [{field: value}, ...], "key": optional}
                    -> {"request_id", "model", "version", "variant", "probabilities"}
    POST /feedback  {"request_id", "clicked": bool | [bool, ...], "row": 0}  -> 202
    GET  /healthz   the process answers
    GET  /readyz    which versions serve (503 until the models are loaded)
    GET  /metrics   Prometheus text (all workers)

Each route is one call into the worker's :class:`~ml.serving.service.state.Service`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ml.serving.service.dependencies import ServiceDep
from ml.serving.service.metrics import CONTENT_TYPE
from ml.serving.service.schemas import Feedback, PredictRequest, PredictResponse

router = APIRouter()

_BODY_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": PredictRequest.model_json_schema()}},
    }
}


@router.post(
    "/predict",
    response_model=PredictResponse,
    openapi_extra=_BODY_SCHEMA,
    summary="Click probabilities for a batch of rows (at most the service's --max-batch)",
    responses={413: {"description": "body too large"}, 422: {"description": "bad rows"}},
)
async def predict(request: Request, service: ServiceDep) -> Response:
    # The body is read by the service itself: it enforces the size limit before parsing.
    return await service.predict(request)


@router.post("/feedback", status_code=202, summary="Record whether scored rows were clicked")
def feedback(body: Feedback, service: ServiceDep) -> dict[str, Any]:
    return service.record_feedback(body)


@router.get("/healthz", summary="Liveness")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: the versions being served")
async def readyz(service: ServiceDep) -> dict[str, Any]:
    return service.readiness()


@router.get("/metrics", summary="Prometheus metrics (all workers)")
def metrics(service: ServiceDep) -> Response:
    return Response(service.metrics.render(), media_type=CONTENT_TYPE)
