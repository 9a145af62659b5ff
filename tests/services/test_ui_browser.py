"""The Airflow UI in a real headless Chromium, against the SQLite stack's successful run.

Logs in through SimpleAuthManager's login form (with the password ``make airflow``
printed), opens ``training_pipeline``, checks the successful run and its five tasks are
shown, and saves a screenshot to ``$CTR_TEST_ARTIFACTS`` or
``<base dir>/test-artifacts/ui-training_pipeline.png``.

Needs Debian's chromium at /usr/bin/chromium (``bash scripts/install_browser.sh``);
Playwright drives it, ``playwright install`` is never used.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from testkit import services as kit

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
def browser() -> Any:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed: run `bash scripts/install_browser.sh`")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


def test_ui_shows_successful_run_with_all_tasks(
    sqlite_stack: kit.Stack, sqlite_run: str, browser: Any
) -> None:
    from playwright.sync_api import expect

    # expect() waits 5 s by default: too little for a busy 2-core machine.
    expect.set_options(timeout=60_000)
    base = sqlite_stack.services.base_url
    password = sqlite_stack.services.admin_password()
    assert password, "make airflow's login needs the generated admin password"
    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    page.set_default_timeout(60_000)
    shot = artifacts_dir() / "ui-training_pipeline.png"
    try:
        # The real login form of SimpleAuthManager.
        page.goto(f"{base}/", wait_until="networkidle")
        expect(page.get_by_text("Sign into Airflow")).to_be_visible()
        page.locator("input[name=username]").fill("admin")
        page.locator("input[name=password]").fill(password)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(lambda url: "/auth/login" not in url)

        page.goto(f"{base}/dags/{kit.DAG_ID}", wait_until="networkidle")
        expect(page).to_have_title(f"{kit.DAG_ID} - Airflow")
        for task_id in kit.TASKS:
            expect(page.get_by_text(task_id, exact=True).first).to_be_visible()

        page.goto(f"{base}/dags/{kit.DAG_ID}/runs/{sqlite_run}", wait_until="networkidle")
        expect(page.get_by_text(sqlite_run).first).to_be_visible()
        # The five tasks plus the tuning group's two (create_study succeeds, the mapped
        # tune_worker is skipped when tuning_trials is 0).
        instances = len(kit.TASKS) + len(kit.TUNING_TASKS)
        expect(page.get_by_text(f"{instances} Task Instances")).to_be_visible()
        table = page.get_by_test_id("table-list")
        for task_id in kit.TASKS:
            expect(table.get_by_role("link", name=task_id, exact=True)).to_be_visible()
        # A "Success" badge for the run, and one per task instance in the table.
        expect(table.get_by_text("Success", exact=True)).to_have_count(len(kit.TASKS) + 1)
        expect(page.get_by_text("Success", exact=True)).to_have_count(len(kit.TASKS) + 2)
        assert page.get_by_text("Failed", exact=True).count() == 0
    finally:
        page.screenshot(path=str(shot), full_page=True)
        (shot.parent / "ui-training_pipeline.txt").write_text(page.inner_text("body"))
        page.close()
    assert shot.stat().st_size > 10_000
