"""The Models page as a FastAPI app; the Airflow plugin mounts it under the API server.

Authentication and authorisation are the caller's: :func:`create_app` takes two FastAPI
dependencies, ``reader`` (returns an :class:`Access`; raises 401/403 for users who may
not read) and ``editor`` (returns the user's name; raises 401/403 for users who may not
promote or roll back). The plugin builds them from Airflow's auth manager; tests pass
fakes. Nothing here imports Airflow.

HTML: ``/`` (every model), ``/view/{name}``, ``/view/{name}/{version}`` (the card),
``/view/{name}/compare?versions=v1&versions=v2``, ``/dag-run/{dag_id}/{run_id}`` (the
card of the version a DAG run registered). JSON: ``/models``, ``/models/{name}``,
``/models/{name}/versions``, ``/models/{name}/versions/{version}``,
``/models/{name}/history``, ``/models/{name}/compare``,
``/models/{name}/versions/{version}/promotion-check``, ``/me``; ``POST
/models/{name}/versions/{version}/promote`` (JSON body ``{"reason": ..., "confirm":
false}``) and ``POST /models/{name}/rollback`` (``{"reason": ...}``).

A promotion runs :func:`ml.cards.promotion.promotion_check` first: when the candidate
is worse than production or was tested on other data, it answers 409 with the check
unless the body says ``"confirm": true`` (the history then records the check).
Comparisons are bounded for web requests (at most :data:`MAX_BOOTSTRAP` resamples,
each version once: 422 otherwise), run one at a time per process, and are cached on
disk (:mod:`ml.cards.compare_cache`), so a repeat answers at once.
"""

import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from ml.cards import audit, catalog, pages
from ml.cards.files import CARD_HTML, CARD_MD
from ml.cards.promotion import PromotionCheck, promotion_check
from ml.errors import CardError, CtrPipelineError, RetryableError, UserError

HTML_PREFIXES = ("/view", "/dag-run")
#: The most bootstrap resamples a web request may ask for (the CLI has no such bound).
MAX_BOOTSTRAP = 2000
#: One comparison at a time per API server process: the others wait, then hit the cache.
_COMPARE_LOCK = threading.Lock()


@dataclass(frozen=True)
class Access:
    """Who is asking, and whether they may promote and roll back."""

    user: str
    can_edit: bool


class ActionBody(BaseModel):
    """Body of promote and rollback: why (recorded in the registry's history)."""

    reason: str | None = None


class PromoteBody(ActionBody):
    """Body of promote: ``confirm`` promotes despite a failed promotion check."""

    confirm: bool = False


def _status(exc: CtrPipelineError) -> int:
    from ml.errors import InvalidNameError, NotFoundError

    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, (InvalidNameError, CardError)):
        return 400
    if isinstance(exc, RetryableError):
        return 503
    return 409 if isinstance(exc, UserError) else 500


def _root(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


def _wants_html(request: Request) -> bool:
    path = request.url.path[len(_root(request)) :] or "/"
    return path == "/" or path.startswith(HTML_PREFIXES)


def create_app(
    *,
    reader: Callable[..., Access],
    editor: Callable[..., str],
    registry_factory: Callable[[], Any] | None = None,
    login_url: Callable[[Request], str] | None = None,
) -> FastAPI:
    """The app; see the module doc for its routes and the two dependencies."""

    def registry() -> Any:
        if registry_factory is not None:
            return registry_factory()
        from ml.registry.model_registry import ModelRegistry

        return ModelRegistry()

    app = FastAPI(title="CTR models", docs_url=None, redoc_url=None, openapi_url="/openapi.json")
    _add_error_handlers(app, login_url)
    _html_routes(app, registry, reader)
    _json_routes(app, registry, reader)
    _action_routes(app, registry, editor)
    return app


#: The navigation entry's icon (a card with a rising curve); public, like Airflow's own.
ICON = (
    "<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 24 24' fill='none' "
    "stroke='#5f6b7a' stroke-width='1.8' stroke-linecap='round' stroke-linejoin='round'>"
    "<rect x='3' y='3' width='18' height='18' rx='2'/><path d='M7 16l3-4 3 2 4-6'/></svg>"
)


def _html_routes(app: FastAPI, registry: Callable[[], Any], reader: Callable[..., Access]) -> None:
    # No `from __future__ import annotations` in this module: FastAPI reads these
    # annotations at definition time, closures included.
    ReadDep = Annotated[Access, Depends(reader)]

    @app.get("/icon.svg")
    def icon() -> Response:
        return Response(ICON, media_type="image/svg+xml")

    @app.get("/", response_class=HTMLResponse)
    def index(request: Request, access: ReadDep) -> HTMLResponse:
        reg, root = registry(), _root(request)
        sections = [
            _section(reg, root, n, access, catalog.PAGE_VERSIONS) for n in catalog.model_names(reg)
        ]
        return HTMLResponse(pages.models_page(root, sections, access.user, access.can_edit))

    @app.get("/view/{name}", response_class=HTMLResponse)
    def model_view(request: Request, name: str, access: ReadDep) -> HTMLResponse:
        reg, root = registry(), _root(request)
        section = _section(reg, root, name, access, None)
        return HTMLResponse(pages.models_page(root, [section], access.user, access.can_edit))

    @app.get("/view/{name}/compare", response_class=HTMLResponse)
    def compare_view(
        request: Request,
        name: str,
        access: ReadDep,
        versions: Annotated[list[str], Query()] = [],  # noqa: B006 (FastAPI's idiom)
    ) -> HTMLResponse:
        result = _compare(registry(), name, versions, 1000)
        query = urlencode([("versions", v) for v in versions])
        href = f"{_root(request)}/models/{name}/compare?{query}"
        return HTMLResponse(pages.comparison_page(_root(request), name, result, href))

    @app.get("/view/{name}/{version}", response_class=HTMLResponse)
    def card_view(request: Request, name: str, version: str, access: ReadDep) -> HTMLResponse:
        return _card_response(registry(), _root(request), name, version)

    @app.get("/dag-run/{dag_id}/{run_id}", response_class=HTMLResponse)
    def dag_run_view(request: Request, dag_id: str, run_id: str, access: ReadDep) -> HTMLResponse:
        reg, root = registry(), _root(request)
        found = catalog.version_of_dag_run(reg, dag_id, run_id)
        if found is None:
            text = (
                f"The DAG run {dag_id} / {run_id} registered no model version (yet): a gate "
                "failed, the run is still going, or it found nothing changed."
            )
            return HTMLResponse(pages.message_page(root, "No model card", text))
        return _card_response(reg, root, *found)


def _json_routes(app: FastAPI, registry: Callable[[], Any], reader: Callable[..., Access]) -> None:
    ReadDep = Annotated[Access, Depends(reader)]

    @app.get("/me")
    def me(access: ReadDep) -> dict[str, Any]:
        return asdict(access)

    @app.get("/models")
    def models(access: ReadDep) -> list[dict[str, Any]]:
        reg = registry()
        return [catalog.model_summary(reg, n) for n in catalog.model_names(reg)]

    @app.get("/models/{name}")
    def model(name: str, access: ReadDep) -> dict[str, Any]:
        reg = registry()
        return {
            **catalog.model_summary(reg, name),
            "versions": catalog.version_records(reg, name, last=catalog.PAGE_VERSIONS),
            "history": catalog.history(reg, name, last=catalog.PAGE_VERSIONS),
        }

    @app.get("/models/{name}/versions")
    def versions(name: str, access: ReadDep, last: int | None = None) -> list[dict[str, Any]]:
        return catalog.version_records(registry(), name, last=last)

    @app.get("/models/{name}/versions/{version}")
    def version(name: str, version: str, access: ReadDep) -> dict[str, Any]:
        reg = registry()
        record = catalog.version_record(reg, name, version, reg.current_version(name))
        return {**record, "show": reg.show(name, version, record["stages"][0])}

    @app.get("/models/{name}/versions/{version}/card.md", response_class=PlainTextResponse)
    def card_markdown(name: str, version: str, access: ReadDep) -> PlainTextResponse:
        from ml.cards.build import version_card_dir

        reg = registry()
        where = version_card_dir(reg, name, version)
        text = (where / CARD_MD).read_text(encoding="utf-8").rstrip()
        trail = audit.markdown(audit.version_events(reg, name, version), version)
        text = "\n".join([text, "", *trail, ""])
        return PlainTextResponse(text, media_type="text/markdown; charset=utf-8")

    @app.get("/models/{name}/history")
    def history(name: str, access: ReadDep) -> list[dict[str, Any]]:
        return catalog.history(registry(), name)

    @app.get("/models/{name}/compare")
    def compare(
        name: str,
        access: ReadDep,
        versions: Annotated[list[str], Query()] = [],  # noqa: B006
        bootstrap: int = 1000,
    ) -> dict[str, Any]:
        return _compare(registry(), name, versions, bootstrap)

    @app.get("/models/{name}/versions/{version}/promotion-check")
    def check(name: str, version: str, access: ReadDep) -> dict[str, Any]:
        return _check(registry(), name, version).to_dict()


def _action_routes(app: FastAPI, registry: Callable[[], Any], editor: Callable[..., str]) -> None:
    EditDep = Annotated[str, Depends(editor)]

    @app.post("/models/{name}/versions/{version}/promote")
    def promote(request: Request, name: str, version: str, body: PromoteBody, user: EditDep) -> Any:
        _require_json(request)
        reg = registry()
        check = _check(reg, name, version)
        if check.needs_confirmation and not body.confirm:
            detail = f"{check.lines[-1].strip()} (confirm to promote anyway)"
            return JSONResponse(
                {"detail": detail, "check": check.to_dict()},
                status_code=409,
            )
        p = reg.promote_to_production(name, version, check.audit_reason(body.reason), by=user)
        text = (
            f"{name} {version} promoted to production (current: {p.previous or 'none'} → {version})"
            if p.changed
            else f"{name} {version} already is production's current version"
        )
        return {**p.to_dict(), "message": text}

    @app.post("/models/{name}/rollback")
    def rollback(request: Request, name: str, body: ActionBody, user: EditDep) -> dict[str, Any]:
        _require_json(request)
        p = registry().rollback(name, body.reason, by=user)
        return {**p.to_dict(), "message": f"{name} rolled back: current {p.previous} → {p.version}"}


def _section(reg: Any, root: str, name: str, access: Access, last: int | None) -> str:
    summary = catalog.model_summary(reg, name)
    if not summary["versions"] and not summary["production_versions"]:
        reg.get_latest_version(name)  # raises the registry's not-found error
    records = catalog.version_records(reg, name, last=last)
    events = catalog.history(reg, name, last=last)
    more = last is not None and summary["versions"] > last
    return pages.model_section(root, summary, records, events, can_edit=access.can_edit, more=more)


def _compare(reg: Any, name: str, versions: list[str], n_boot: int) -> dict[str, Any]:
    from ml.cards.compare import duplicates
    from ml.cards.compare_cache import cached_compare_versions

    if not 1 <= n_boot <= MAX_BOOTSTRAP:
        raise HTTPException(
            422,
            f"bootstrap={n_boot}: ask for 1 to {MAX_BOOTSTRAP} resamples here "
            "(`ctr-pipeline registry compare --bootstrap N` has no such limit)",
        )
    again = duplicates(versions)
    if again:
        raise HTTPException(
            422, f"version(s) {', '.join(again)} given more than once; list each version once"
        )
    with _COMPARE_LOCK:
        return cached_compare_versions(reg, name, versions, n_boot=n_boot)


def _check(reg: Any, name: str, version: str) -> PromotionCheck:
    with _COMPARE_LOCK:
        return promotion_check(reg, name, version)


def _card_response(reg: Any, root: str, name: str, version: str) -> HTMLResponse:
    from ml.cards.build import version_card_dir

    where = version_card_dir(reg, name, version)
    text = (where / CARD_HTML).read_text(encoding="utf-8")
    trail = audit.html(audit.version_events(reg, name, version), version)
    top = pages.card_bar(root, name, version) + trail
    return HTMLResponse(text.replace("<body>", "<body>" + top, 1))


def _require_json(request: Request) -> None:
    """Refuse form posts: only a script on the page (same origin) sends JSON."""
    if not request.headers.get("content-type", "").startswith("application/json"):
        raise HTTPException(415, "send the body as JSON (Content-Type: application/json)")


def _add_error_handlers(app: FastAPI, login_url: Callable[[Request], str] | None) -> None:
    def respond(request: Request, status: int, detail: str) -> Response:
        if not _wants_html(request):
            return JSONResponse({"detail": detail}, status_code=status)
        login = login_url(request) if login_url is not None and status in (401, 403) else None
        title = {401: "Sign in needed", 403: "Not allowed", 404: "Not found"}.get(status, "Error")
        return HTMLResponse(
            pages.message_page(_root(request), title, detail, login=login), status_code=status
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return respond(request, exc.status_code, str(exc.detail))

    @app.exception_handler(CtrPipelineError)
    async def pipeline_error(request: Request, exc: CtrPipelineError) -> Response:
        return respond(request, _status(exc), str(exc))
