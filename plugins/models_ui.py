"""Airflow plugin: the "Models" page of the Airflow UI (docs/models-ui.md).

Found through ``AIRFLOW__CORE__PLUGINS_FOLDER`` (``scripts/airflow_env.py`` points it
at this folder). It adds

- ``fastapi_apps``: the Models app of ``ml.cards.webapp``, mounted on the API server at
  ``/models-ui`` (models, versions, cards, history, compare; JSON for scripts);
- ``external_views``: a "Models" entry in the navigation (the app inside the UI's
  frame) and a "Model card" tab on each DAG run (the card of the version it registered).
  The UI reads them from ``GET /api/v2/plugins``: with the FAB auth manager a role needs
  ``can read on Plugins`` to get them (Admin and Op have it; ``make airflow`` grants it to
  the other roles it creates users for; see docs/models-ui.md), else no entry and a 404.

Plugin endpoints are not protected by Airflow, so every route checks the caller here,
with Airflow's own auth manager: reading needs permission to read the
``training_pipeline`` DAG; promote and rollback need permission to edit it
(``requires_access_dag("PUT", ...)``). A request without a valid token or session
cookie gets 401/403 and changes nothing. All the work is in ``ml/``; this file is wiring.
"""

from __future__ import annotations

import os

from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_dag
from airflow.plugins_manager import AirflowPlugin
from fastapi import HTTPException, Request

from ml.cards.links import APP_PREFIX, NAV_ROUTE
from ml.cards.webapp import Access, create_app

#: The DAG whose permissions guard the page (read: see it; edit: promote and roll back).
DAG_ID = os.environ.get("CTR_MODELS_DAG_ID", "training_pipeline")

_may_read = requires_access_dag("GET", param_dag_id=DAG_ID)
_may_edit = requires_access_dag("PUT", param_dag_id=DAG_ID)


def reader(request: Request, user: GetUserDep) -> Access:
    """The signed-in user (401/403 for anyone who may not read the DAG)."""
    _may_read(request, user)
    try:
        _may_edit(request, user)
        editable = True
    except HTTPException:
        editable = False
    return Access(user=user.get_name(), can_edit=editable)


def editor(request: Request, user: GetUserDep) -> str:
    """The user's name for the registry's history (401/403 unless they may edit the DAG)."""
    _may_edit(request, user)
    return f"{user.get_name()} (Airflow UI)"


def login_url(request: Request) -> str:
    from airflow.api_fastapi.app import get_auth_manager

    return get_auth_manager().get_url_login(next_url=str(request.url))


app = create_app(reader=reader, editor=editor, login_url=login_url)


class CtrModelsPlugin(AirflowPlugin):
    """The Models page and the DAG run's "Model card" tab."""

    name = "ctr_models"
    fastapi_apps = [{"app": app, "url_prefix": APP_PREFIX, "name": "CTR models"}]  # noqa: RUF012
    external_views = [  # noqa: RUF012
        {
            "name": "Models",
            "href": f"{APP_PREFIX.lstrip('/')}/",
            "destination": "nav",
            "url_route": NAV_ROUTE,
            "icon": f"{APP_PREFIX.lstrip('/')}/icon.svg",
        },
        {
            "name": "Model card",
            "href": f"{APP_PREFIX.lstrip('/')}/dag-run/{{DAG_ID}}/{{RUN_ID}}",
            "destination": "dag_run",
            "url_route": "model-card",
        },
    ]
