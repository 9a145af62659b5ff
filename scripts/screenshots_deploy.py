"""Screenshots of the deploy loop in the Airflow UI, to look at after changing it.

    .venv/bin/python -m scripts.screenshots_deploy HOME OUT_DIR

Starts the embedded stack (SQLite + LocalExecutor) in the empty directory HOME, registers
two versions, runs ``deploy_model`` (manual approval) with simulated traffic, and saves
into OUT_DIR the Required Actions page with the pending approval
(``required-actions.png``) and the approval with its A/B report (``approve-review.png``);
then approves over REST, lets ``watch_production``'s check roll the (broken) v2 back, and
saves the Models page's history (``models-history.png``, and the app's own page at full
height: ``models-history-app.png``) and v2's card with its deployment history
(``card-v2-history.png``). Needs Debian's chromium (scripts/install_browser.sh). A few
minutes.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path
from typing import Any

from ml.pipeline.watch import WatchSettings, watch
from ml.registry.model_registry import ModelRegistry
from testkit import services as kit
from testkit.registry import make_run_dir
from testkit.serving import write_served_logs

MODEL, DAG = "ctr_model", "deploy_model"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip


def _wait(rest: Any, run_id: str, task: str, state: str, timeout: float = 300) -> None:
    end = time.monotonic() + timeout
    while rest.task_instances(DAG, run_id).get(task, {}).get("state") != state:
        if time.monotonic() > end:
            raise RuntimeError(f"{task} not {state} within {timeout} s")
        time.sleep(1)


def _pending_approval(home: Path, stack: Any) -> tuple[ModelRegistry, str]:
    """v1 in production, v2's deploy_model run waiting for an answer (its report ready)."""
    reg = ModelRegistry(stack.registry_dir)
    for i in (1, 2):
        reg.register(make_run_dir(home / "runs" / f"r{i}", bytes([i + 40]) * 512), MODEL)
    reg.promote_to_production(MODEL, "v1", "first production version", by="admin (Airflow UI)")
    stack.rest.wait_dag(DAG)
    stack.rest.unpause(DAG)
    conf = {"model_name": MODEL, "version": "v2", "require_card": False, "min_impressions": 200}
    resp = stack.rest.trigger(DAG, conf)
    resp.raise_for_status()
    run_id = resp.json()["dag_run_id"]
    _wait(stack.rest, run_id, "wait_for_evidence", "deferred")
    write_served_logs(
        home / "experiments" / "serving" / MODEL, n=3000,
        versions={"control": "v1", "candidate": "v2"}, shares={"control": 0.5, "candidate": 0.5},
        noise={"control": 1.5, "candidate": 0.2},
    )  # fmt: skip
    _wait(stack.rest, run_id, "approve", "awaiting_input")
    time.sleep(5)  # the scheduler drains the parked try's exit (apache/airflow#72716)
    return reg, run_id


def _sign_in(page: Any, base: str, password: str) -> None:
    page.goto(f"{base}/", wait_until="networkidle")
    page.locator("input[name=username]").fill("admin")
    page.locator("input[name=password]").fill(password)
    submit = page.get_by_role("button", name=re.compile("sign in", re.I))
    submit.or_(page.locator("input[type=submit]")).first.click()
    page.wait_for_url(lambda url: "/login" not in url)
    page.wait_for_load_state("networkidle")


def _shoot(page: Any, url: str, out: Path, wait_ms: int = 2000, full: bool = True) -> None:
    page.goto(url, wait_until="networkidle")
    page.wait_for_timeout(wait_ms)
    page.screenshot(path=str(out), full_page=full)
    print(f"saved {out}", flush=True)


def _approve_then_roll_back(home: Path, stack: Any, reg: ModelRegistry, run_id: str) -> None:
    hitl = f"/api/v2/dags/{DAG}/dagRuns/{run_id}/taskInstances/approve/-1/hitlDetails"
    resp = stack.rest.http.patch(hitl, json={"chosen_options": ["Approve"], "params_input": {}})
    resp.raise_for_status()
    stack.rest.wait_run(DAG, run_id, 300, stack)
    write_served_logs(
        home / "experiments" / "serving" / MODEL, n=3000, versions={"control": "v2"}, seed=2,
        bias={"control": 3.0}, at=time.time(),
    )  # fmt: skip
    settings = WatchSettings(model_name=MODEL, min_outcomes=500, cooldown_s=0)
    out = watch(settings, reg, run="watch_production (scripts.screenshots_deploy)")
    print(f"watch_production: {out['action']}", flush=True)


def main(home: Path, out: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    kit.prepare_home(home)
    stack = kit.start_stack(home, "sqlite-local", env=kit.stack_env(home))
    try:
        reg, run_id = _pending_approval(home, stack)
        base = stack.services.base_url
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = browser.new_context(viewport={"width": 1500, "height": 1000}).new_page()
            page.set_default_timeout(60_000)
            _sign_in(page, base, stack.services.admin_password("admin"))
            _shoot(page, f"{base}/required_actions", out / "required-actions.png")
            task = f"{base}/dags/{DAG}/runs/{run_id}/tasks/approve/required_actions"
            _shoot(page, task, out / "approve-review.png", wait_ms=3000)
            _approve_then_roll_back(home, stack, reg, run_id)
            page.goto(f"{base}/plugin/models", wait_until="networkidle")
            frame = page.frame_locator("iframe[title='Models']")
            expect(frame.get_by_test_id("history").first).to_be_visible()
            _shoot(page, f"{base}/plugin/models", out / "models-history.png")
            card = f"{base}/plugin/models/models-ui/view/{MODEL}/v2"
            _shoot(page, card, out / "card-v2-history.png", wait_ms=2500, full=False)
            _shoot(page, f"{base}/models-ui/view/{MODEL}", out / "models-history-app.png", 500)
            browser.close()
    finally:
        stack.stop()


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve())
