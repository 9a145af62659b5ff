"""FastAPI dependencies of the scoring service's routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from ml.serving.service.state import Service


def get_service(request: Request) -> Service:
    """The worker's :class:`Service`, which :func:`ml.serving.service.app.create_app` set."""
    service: Service = request.app.state.service
    return service


ServiceDep = Annotated[Service, Depends(get_service)]
