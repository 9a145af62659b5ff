"""The Models page in a real headless Chromium, inside the Airflow UI.

SQLite stack (SimpleAuthManager): as ``admin``, open the "Models" navigation entry, open
the card of the version the DAG run registered, promote that version, and open the DAG
run's "Model card" tab; as the read-only ``viewer``, the page shows no promote button.

PostgreSQL + Celery stack (the FAB auth manager, the production profile): a model of
its own with v1 in production and v2 trained on other data. The ``viewer`` has the
"Models" entry, sees the versions, the history, a card and a comparison, no Promote or
Roll back button, and a write answers 403; ``admin`` gets the promotion check (other
data) and must tick "Promote anyway" before the Promote button works.

Screenshots go to ``$CTR_TEST_ARTIFACTS`` or ``<base dir>/test-artifacts/models-*.png``.

Needs Debian's chromium at /usr/bin/chromium (``bash scripts/install_browser.sh``).
"""

from __future__ import annotations

import os
import re
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
    """A page signed in as ``user`` (the login form of either auth manager)."""
    base = stack.services.base_url
    password = stack.services.admin_password(user)
    assert password, f"no generated password for {user!r}"
    context = browser.new_context(viewport={"width": 1500, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(f"{base}/", wait_until="networkidle")
    page.locator("input[name=username]").fill(user)
    page.locator("input[name=password]").fill(password)
    submit = page.get_by_role("button", name=re.compile("sign in", re.I))
    submit.or_(page.locator("input[type=submit]")).first.click()
    page.wait_for_url(lambda url: "/auth/login" not in url and "/login" not in url)
    page.wait_for_load_state("networkidle")
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


FAB_MODEL = "ctr_model_fab_ui"
SLOW_MS = 120_000


def _fab_versions(stack: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """v1 (features v1, promoted) and v2 (other features: a new seed) of FAB_MODEL,
    registered with cards by the pipeline's own steps into the stack's registry."""
    home = stack.home
    with monkeypatch.context() as env:
        env.setenv("CTR_PIPELINE_HOME", str(home))
        _train_and_register(home)


def _train_and_register(home: Path) -> None:
    from datetime import datetime, timezone

    from ml.data.generate.writer import generate_features
    from ml.pipeline import steps
    from ml.pipeline.params import Params, PipelineRun
    from testkit.airflow import small_config
    from testkit.cards import LOOSE

    (home / "config" / "small.yaml").write_text(small_config(epochs=2))
    generate_features(home / "data" / "features" / "other", rows=3000, seed=11)
    for day, (features, promote) in enumerate((("v1", True), ("other", False)), start=1):
        params = Params.from_mapping(
            {
                "config_path": "config/small.yaml",
                "features_path": f"data/features/{features}",
                "model_name": FAB_MODEL,
                "auto_promote": promote,
                "baseline_tolerance": None,
                **LOOSE,
            }
        )
        when = datetime(2024, 12, day, tzinfo=timezone.utc)
        run = PipelineRun("training_pipeline", f"manual__fab_ui_{day}", when, when)
        found = steps.validate(params, run)["features_path"]
        run_dir = steps.train(params, run, found)["run_dir"]
        metrics = steps.evaluate(params, run, run_dir)["metrics"]
        steps.register(params, run, run_dir, metrics)


def test_models_page_on_the_fab_profile_for_viewer_and_admin(
    pg_stack: Any, browser: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from playwright.sync_api import expect

    from ml.registry.model_registry import ModelRegistry

    _fab_versions(pg_stack, monkeypatch)
    registry = ModelRegistry(pg_stack.registry_dir)
    assert registry.current_version(FAB_MODEL) == "v1"
    base, app = pg_stack.services.base_url, "models-ui"
    shots: list[Path] = []

    page = _signed_in_page(browser, pg_stack, "viewer")
    try:
        # The navigation entry is there for a viewer, and the page opens in the frame.
        expect(page.get_by_role("link", name="Models").first).to_be_visible()
        page.get_by_role("link", name="Models").first.click()
        page.wait_for_url(lambda url: "/plugin/models" in url)
        frame = page.frame_locator("iframe[title='Models']")
        expect(frame.get_by_text("Signed in as viewer")).to_be_visible()
        expect(frame.get_by_text("read only")).to_be_visible()
        model = frame.get_by_test_id(f"model-{FAB_MODEL}")
        expect(
            model.get_by_test_id(f"versions-{FAB_MODEL}").get_by_test_id("card-v2")
        ).to_be_visible()
        expect(model.get_by_test_id("history")).to_contain_text("promote")
        expect(frame.get_by_role("button", name="Promote…")).to_have_count(0)
        expect(frame.get_by_role("button", name="Roll back…")).to_have_count(0)
        shots.append(_shot(page, "fab-viewer"))
        # A comparison and a card, read only.
        model.locator("input[name=versions][value=v1]").check()
        model.locator("input[name=versions][value=v2]").check()
        model.get_by_test_id("compare").click()
        # Scoring both versions in the API server: seconds on a busy machine.
        expect(frame.get_by_test_id("comparison")).to_be_visible(timeout=SLOW_MS)
        # The form sends the ticked versions in table order (newest first): v1 − v2.
        expect(frame.get_by_text("log loss v1 − v2")).to_be_visible()
        shots.append(_shot(page, "fab-viewer-compare"))
        page.goto(f"{base}/plugin/models/{app}/view/{FAB_MODEL}/v2", wait_until="networkidle")
        expect(frame.get_by_role("heading", name=f"Model card: {FAB_MODEL} v2")).to_be_visible()
        shots.append(_shot(page, "fab-viewer-card"))
        # The same session may read the check but not write.
        check = page.request.get(f"{base}/{app}/models/{FAB_MODEL}/versions/v2/promotion-check")
        assert check.status == 200 and check.json()["other_data"] is True
        denied = page.request.post(
            f"{base}/{app}/models/{FAB_MODEL}/versions/v2/promote",
            data={"reason": "viewer", "confirm": True},
            headers={"Content-Type": "application/json"},
        )
        assert denied.status == 403, denied.text()
        assert registry.current_version(FAB_MODEL) == "v1"
    finally:
        (artifacts_dir() / "models-fab-viewer.txt").write_text(page.inner_text("body"))
        page.context.close()

    page = _signed_in_page(browser, pg_stack, "admin")
    try:
        page.goto(f"{base}/plugin/models/{app}/view/{FAB_MODEL}", wait_until="networkidle")
        frame = page.frame_locator("iframe[title='Models']")
        model = frame.get_by_test_id(f"model-{FAB_MODEL}")
        model.get_by_test_id("promote-v2").click()
        check = model.get_by_test_id("check-v2")
        expect(check).to_contain_text("v2 was tested on other data than v1", timeout=SLOW_MS)
        expect(check).to_contain_text("both scored on v2's test split")
        expect(check).to_contain_text("AUC v2 − v1:")
        go = model.get_by_test_id("confirm-promote-v2")
        expect(go).to_be_disabled()
        shots.append(_shot(page, "fab-admin-check"))
        model.get_by_test_id("confirm-anyway-v2").check()
        expect(go).to_be_enabled()
        model.locator(f"#promote-{FAB_MODEL}-v2 input.reason").fill("new data source")
        go.click()
        expect(model.get_by_text("promoted to production")).to_be_visible(timeout=SLOW_MS)
        expect(model.get_by_test_id("history")).to_contain_text(
            "promoted despite the check", timeout=SLOW_MS
        )
        shots.append(_shot(page, "fab-admin-promoted"))
    finally:
        (artifacts_dir() / "models-fab-admin.txt").write_text(page.inner_text("body"))
        page.context.close()
    assert registry.current_version(FAB_MODEL) == "v2"
    last = registry.history(FAB_MODEL)[-1]
    assert last["by"] == "admin (Airflow UI)"
    assert last["reason"].startswith("new data source [promoted despite the check: tested on other")
    assert all(p.stat().st_size > 10_000 for p in shots)
