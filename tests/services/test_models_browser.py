"""The Models page in a real headless Chromium, inside the Airflow UI of the SQLite stack.

As ``admin``: open the "Models" navigation entry, open the card of the version the DAG
run registered, promote that version, and open the DAG run's "Model card" tab. As the
read-only ``viewer``: the page shows no promote button. Screenshots go to
``$CTR_TEST_ARTIFACTS`` or ``<base dir>/test-artifacts/models-*.png``.

Needs Debian's chromium at /usr/bin/chromium (``bash scripts/install_browser.sh``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.services, pytest.mark.slow, pytest.mark.timeout(900)]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def artifacts_dir() -> Path:
    from ml import paths

    configured = os.environ.get("CTR_TEST_ARTIFACTS")
    out = Path(configured) if configured else paths.base_dir() / "test-artifacts"
    out.mkdir(parents=True, exist_ok=True)
    return out


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed: run `bash scripts/install_browser.sh`")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


def _signed_in_page(browser: Any, stack: Any, user: str) -> Any:
    from playwright.sync_api import expect

    base = stack.services.base_url
    password = stack.services.admin_password(user)
    assert password, f"no generated password for {user!r}"
    context = browser.new_context(viewport={"width": 1500, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(f"{base}/", wait_until="networkidle")
    expect(page.get_by_text("Sign into Airflow")).to_be_visible()
    page.locator("input[name=username]").fill(user)
    page.locator("input[name=password]").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/auth/login" not in url)
    return page


def _shot(page: Any, name: str) -> Path:
    path = artifacts_dir() / f"models-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def test_models_page_card_and_promotion_as_admin(
    kit: Any, sqlite_stack: Any, sqlite_run: str, browser: Any
) -> None:
    from playwright.sync_api import expect

    from ml.registry.model_registry import ModelRegistry

    base = sqlite_stack.services.base_url
    page = _signed_in_page(browser, sqlite_stack, "admin")
    shots = []
    try:
        # The navigation entry, and the page inside the UI's frame.
        page.goto(f"{base}/plugin/models", wait_until="networkidle")
        expect(page.get_by_role("link", name="Models").first).to_be_visible()
        frame = page.frame_locator("iframe[title='Models']")
        expect(frame.get_by_role("heading", name="Models", exact=True)).to_be_visible()
        model = frame.get_by_test_id("model-ctr_model")
        table = model.get_by_test_id("versions-ctr_model")
        expect(table.get_by_test_id("card-v1")).to_be_visible()
        expect(model.get_by_test_id("history")).to_contain_text("register")
        shots.append(_shot(page, "page"))

        # A version opens its card.
        table.get_by_test_id("card-v1").click()
        expect(frame.get_by_role("heading", name="Model card: ctr_model v1")).to_be_visible()
        expect(frame.get_by_role("img", name="ROC curve")).to_be_visible()
        expect(frame.get_by_text(f"{kit.DAG_ID} / {sqlite_run}").first).to_be_visible()
        page.wait_for_url(lambda url: "/plugin/models/models-ui/view/ctr_model/v1" in url)
        shots.append(_shot(page, "card"))

        # Back to the model, promote v1 (an inline confirmation: the frame has no dialogs).
        frame.get_by_role("link", name="← ctr_model").click()
        model = frame.get_by_test_id("model-ctr_model")
        model.get_by_test_id("promote-v1").click()
        model.get_by_test_id("confirm-promote-v1").click()
        expect(model.get_by_text("promoted to production")).to_be_visible()
        expect(model.locator("tr.cur").get_by_text("current", exact=True)).to_be_visible()
        expect(model.get_by_test_id("history")).to_contain_text("admin (Airflow UI)")
        shots.append(_shot(page, "promoted"))
        assert ModelRegistry(sqlite_stack.registry_dir).current_version("ctr_model") == "v1"

        # The DAG run's "Model card" tab shows the card of the version it registered.
        page.goto(f"{base}/dags/{kit.DAG_ID}/runs/{sqlite_run}", wait_until="networkidle")
        page.get_by_role("link", name="Model card").or_(
            page.get_by_role("tab", name="Model card")
        ).first.click()
        run_frame = page.frame_locator("iframe[title='Model card']")
        expect(run_frame.get_by_role("heading", name="Model card: ctr_model v1")).to_be_visible()
        shots.append(_shot(page, "dag-run-tab"))
    finally:
        (artifacts_dir() / "models-admin.txt").write_text(page.inner_text("body"))
        page.context.close()
    assert all(p.stat().st_size > 10_000 for p in shots)


def test_models_page_is_read_only_for_a_viewer(
    kit: Any, sqlite_stack: Any, sqlite_run: str, browser: Any
) -> None:
    from playwright.sync_api import expect

    page = _signed_in_page(browser, sqlite_stack, "viewer")
    try:
        page.goto(f"{sqlite_stack.services.base_url}/plugin/models", wait_until="networkidle")
        frame = page.frame_locator("iframe[title='Models']")
        expect(frame.get_by_text("Signed in as viewer")).to_be_visible()
        expect(frame.get_by_text("read only")).to_be_visible()
        expect(frame.get_by_test_id("versions-ctr_model")).to_be_visible()
        expect(frame.get_by_role("button", name="Promote…")).to_have_count(0)
        expect(frame.get_by_role("button", name="Roll back…")).to_have_count(0)
        shot = _shot(page, "viewer")
    finally:
        page.context.close()
    assert shot.stat().st_size > 10_000
