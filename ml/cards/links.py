"""Where the Models page lives in the Airflow UI, and links to a version's card there.

The Airflow plugin (``plugins/models_ui.py``) mounts the page's app under
:data:`APP_PREFIX` on the API server and adds a navigation entry whose route is
:data:`NAV_ROUTE`; the UI shows ``/plugin/<route>/<app path>`` as the app page at
``<app path>`` inside its own frame, so such links open the card with Airflow's menu.
"""

from __future__ import annotations

import os
from urllib.parse import quote

#: The plugin's FastAPI app, mounted under the API server.
APP_PREFIX = "/models-ui"
#: The navigation entry's route (``/plugin/models``).
NAV_ROUTE = "models"
#: Where the API server's public address is configured (first one set wins).
BASE_URL_ENV = ("CTR_AIRFLOW_BASE_URL", "AIRFLOW__API__BASE_URL")


def ui_base_url() -> str | None:
    """The Airflow UI's public base URL, or None when none is configured."""
    for var in BASE_URL_ENV:
        value = os.environ.get(var, "").strip()
        if value:
            return value.rstrip("/")
    return None


def card_page(name: str, version: str) -> str:
    """The app's path of a version's card (relative to the API server's root)."""
    return f"{APP_PREFIX}/view/{quote(name, safe='')}/{quote(version, safe='')}"


def card_url(name: str, version: str, base_url: str | None = None) -> str | None:
    """The card of ``name`` ``version`` inside the Airflow UI, or None without a base URL."""
    base = base_url or ui_base_url()
    if not base:
        return None
    return f"{base}/plugin/{NAV_ROUTE}{card_page(name, version)}"
