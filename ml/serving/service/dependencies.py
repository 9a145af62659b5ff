"""FastAPI dependencies of the scoring service's routes: the service, and who may call.

:func:`authorize` is used as ``Security(authorize, scopes=["predict"])`` on a route:
with ``--auth required`` the request must carry ``Authorization: Bearer <token>`` for a
token granting the scope (401 without a token or with an unknown one, ``WWW-Authenticate:
Bearer``; 403 with a token that lacks the scope). Refusals are counted in
``ctr_serving_rejected_requests_total`` (``unauthorized`` / ``forbidden``); the token is
never logged or echoed. With ``--auth off`` every request passes.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer, SecurityScopes

from ml.serving.service.state import Service

bearer = HTTPBearer(
    auto_error=False,
    description="A token from the service's token file or $CTR_SERVE_TOKENS (docs/serving.md)",
)


def get_service(request: Request) -> Service:
    """The worker's :class:`Service`, which :func:`ml.serving.service.app.create_app` set."""
    service: Service = request.app.state.service
    return service


ServiceDep = Annotated[Service, Depends(get_service)]
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def authorize(
    security_scopes: SecurityScopes, request: Request, service: ServiceDep, credentials: Credentials
) -> None:
    """Pass, or raise the 401/403 for a request lacking a token with the route's scopes."""
    tokens = service.tokens
    if tokens is None:
        return
    endpoint = request.url.path.strip("/")
    needed = security_scopes.scopes
    if credentials is None:
        service.metrics.rejected.labels(endpoint, "unauthorized").inc()
        raise HTTPException(
            401,
            f"/{endpoint} needs a bearer token with scope {','.join(needed)}: send the header "
            "'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": 'Bearer realm="ctr-serving"'},
        )
    granted = tokens.lookup(credentials.credentials)
    if granted is None:
        service.metrics.rejected.labels(endpoint, "unauthorized").inc()
        raise HTTPException(
            401,
            "the bearer token is not valid (unknown, revoked or mistyped)",
            headers={"WWW-Authenticate": 'Bearer realm="ctr-serving", error="invalid_token"'},
        )
    missing = [s for s in needed if s not in granted]
    if missing:
        service.metrics.rejected.labels(endpoint, "forbidden").inc()
        scope = " ".join(needed)
        raise HTTPException(
            403,
            f"the token's scopes {sorted(granted)} do not include {','.join(missing)}, which "
            f"/{endpoint} needs",
            headers={"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{scope}"'},
        )
