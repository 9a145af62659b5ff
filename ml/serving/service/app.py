"""The HTTP scoring service: the FastAPI application over one :class:`Service` per worker.

- :mod:`~ml.serving.service.routes`: the routes (``/predict``, ``/feedback``,
  ``/healthz``, ``/readyz``, ``/metrics``), each one call into the service;
- :mod:`~ml.serving.service.state`: :class:`Service`, the models, logs and counters;
- :mod:`~ml.serving.service.schemas`: the request and response bodies;
- :mod:`~ml.serving.service.dependencies`: what the routes are given, and who may call
  (bearer tokens with scopes, :mod:`~ml.serving.service.auth`);
- :mod:`~ml.serving.service.request_ids`: signed request ids, once-per-row feedback;
- :mod:`~ml.serving.service.body`: request bodies read up to a limit;
- :mod:`~ml.serving.service.models`: the loaded models and the hot reload of ``current``;
- :mod:`~ml.serving.service.settings`: what to serve and the A/B routing;
- :mod:`~ml.serving.service.validation` / :mod:`~ml.serving.service.fastpath`: the
  request rows, checked and scored without a DataFrame;
- :mod:`~ml.serving.service.outcomes` / :mod:`~ml.serving.service.metrics`: the
  prediction and feedback logs, Prometheus;
- :mod:`~ml.serving.service.server`: uvicorn (``ctr-pipeline serve``).

``/predict`` reads the control model once per request (hot reload swaps it between
requests), picks the variant from the request key, scores every row with that one model,
and answers; the log line (and the shadow model's scores) is written after the response
is sent. A bad body is a 422 naming the row and field, a body over ``max_body_bytes`` a
413 (reading stops at the limit); any other failure is a 500 with the request id, logged;
the service keeps running. With ``auth: required`` a request without a token with the
route's scope is a 401/403 before its body is read.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError as FastAPIValidationError
from fastapi.responses import Response

from ml.serving.service import routes
from ml.serving.service.settings import SETTINGS_ENV, ServeSettings
from ml.serving.service.state import Service


def create_app(settings: ServeSettings, registry: Any = None) -> FastAPI:
    """Load the models (verified) and build the app; the watcher starts with the app."""
    service = Service(settings, registry)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service.watcher.start()
        try:
            yield
        finally:
            service.close()

    app = FastAPI(
        title=f"CTR scoring service: {settings.model}",
        version="1",
        description=routes.__doc__,
        lifespan=lifespan,
    )
    app.state.service = service
    app.include_router(routes.router)

    @app.exception_handler(FastAPIValidationError)
    async def rejected(request: Request, exc: FastAPIValidationError) -> Response:
        service.metrics.rejected.labels(request.url.path.strip("/"), "invalid").inc()
        return await request_validation_exception_handler(request, exc)

    return app


def app_from_env() -> FastAPI:
    """The uvicorn factory: settings from ``$CTR_SERVING_SETTINGS`` (set by the CLI)."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = ServeSettings.from_json(os.environ[SETTINGS_ENV])
    import torch

    torch.set_num_threads(settings.torch_threads())
    return create_app(settings)
