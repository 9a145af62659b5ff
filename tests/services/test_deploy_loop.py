"""deploy_model under the real scheduler, triggerer and API server (the shared SQLite
stack): the evidence wait is deferred, the approval waits in ``awaiting_input`` with the
report in its body, the read-only ``viewer`` may not answer (403, nothing changes), the
``admin``'s approval promotes the candidate, and the history says who and why. Also on the
PostgreSQL + Celery stack (FAB auth manager, its Viewer role). A model
name of its own (``ctr_model_loop``) keeps the other service tests' versions as they are.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from ml.registry.model_registry import ModelRegistry
from testkit.registry import make_run_dir
from testkit.serving import write_served_logs

pytestmark = [pytest.mark.services, pytest.mark.slow, pytest.mark.timeout(900)]
MODEL = "ctr_model_loop"
DAG = "deploy_model"


def _wait_state(rest: Any, run_id: str, task: str, state: str, timeout: float) -> set[str]:
    """Poll until ``task`` is in ``state``; the states every task was seen in."""
    seen: set[str] = set()
    deadline = time.monotonic() + timeout
    while True:
        tis = rest.task_instances(DAG, run_id)
        seen |= {f"{k}:{v['state']}" for k, v in tis.items()}
        if tis.get(task, {}).get("state") == state:
            return seen
        failed = [k for k, v in tis.items() if v["state"] in ("failed", "upstream_failed")]
        assert not failed and time.monotonic() < deadline, (task, state, sorted(seen))
        time.sleep(1)


def test_approval_in_the_ui_promotes_and_the_viewer_may_not_answer(
    kit: Any, sqlite_stack: Any, tmp_path: Path
) -> None:
    _approve_flow(sqlite_stack, tmp_path, MODEL)


def test_fab_viewer_may_not_approve_on_postgres_celery(
    kit: Any, pg_stack: Any, tmp_path: Path
) -> None:
    """The production profile: FAB auth manager (Viewer role), Celery workers."""
    _approve_flow(pg_stack, tmp_path, f"{MODEL}_pg")


def _wait_parked_exit_seen(stack: Any, run_id: str, task: str, timeout: float) -> None:
    """Wait until the scheduler has taken the executor's "success" of the try that parked
    ``task`` in ``awaiting_input`` (its "TaskInstance Finished: ... state=awaiting_input"
    line), as a person's answer, seconds later, always finds it.

    Answering before that loses a race in Airflow 3.3.2 (apache/airflow#72716, fixes open
    in #72767 and #73510): the answer puts the task back to ``scheduled``; if the
    scheduler queues or runs the resumed try before it drains that stale "success" (same
    try number), it takes it for a task killed externally ("state mismatch") and fails
    the try, whose worker then hears "Server indicated the task shouldn't be running
    anymore". The guard in ``_process_executor_events`` covers only ``scheduled``. The
    test answered ~0.5 s after the task parked; on a loaded 2-core CI machine the
    scheduler drained the event later than that. docs/airflow.md says so for users.
    """
    line = f"TaskInstance Finished: dag_id={DAG}, task_id={task}, run_id={run_id},"
    log = stack.services.log_dir / "scheduler.log"
    deadline = time.monotonic() + timeout
    while True:
        text = log.read_text(errors="replace") if log.is_file() else ""
        if any(line in row and "state=awaiting_input" in row for row in text.splitlines()):
            return
        assert time.monotonic() < deadline, f"no {line!r} in {log}"
        time.sleep(0.5)


def _approve_flow(stack: Any, tmp_path: Path, model: str) -> None:
    reg = ModelRegistry(stack.registry_dir)
    for i in (1, 2):
        reg.register(make_run_dir(tmp_path / f"r{i}", bytes([i + 40]) * 512), model)
    reg.promote_to_production(model, "v1")
    rest = stack.rest
    rest.wait_dag(DAG)
    rest.unpause(DAG)
    try:
        conf = {
            "model_name": model,
            "version": "v2",
            "require_card": False,
            "min_impressions": 200,
            "log_dir": str(tmp_path / "serving"),
        }
        resp = rest.trigger(DAG, conf)
        assert resp.status_code == 200, resp.text
        run_id = resp.json()["dag_run_id"]
        deadline = time.monotonic() + 300
        while reg.get_canary(model) is None:
            assert time.monotonic() < deadline, rest.task_instances(DAG, run_id)
            time.sleep(1)
        seen = _wait_state(rest, run_id, "wait_for_evidence", "deferred", 120)
        write_served_logs(
            tmp_path / "serving",
            n=3000,
            versions={"control": "v1", "candidate": "v2"},
            shares={"control": 0.5, "candidate": 0.5},
            noise={"control": 1.5, "candidate": 0.2},
        )
        seen |= _wait_state(rest, run_id, "approve", "awaiting_input", 300)
        _wait_parked_exit_seen(stack, run_id, "approve", 120)
        hitl = f"/api/v2/dags/{DAG}/dagRuns/{run_id}/taskInstances/approve/-1/hitlDetails"
        detail = rest.http.get(hitl)
        assert detail.status_code == 200, detail.text
        assert "candidate BETTER on auc" in detail.json()["body"]
        answer = {"chosen_options": ["Approve"], "params_input": {}}
        viewer = httpx.patch(
            f"{stack.services.base_url}{hitl}",
            json=answer,
            headers={"Authorization": f"Bearer {stack.services.api_token('viewer')}"},
            timeout=60,
        )
        assert viewer.status_code == 403, viewer.text
        assert reg.current_version(model) == "v1"
        admin = rest.http.patch(hitl, json=answer)
        assert admin.status_code == 200, admin.text
        run = rest.wait_run(DAG, run_id, 300, stack)
        assert run["state"] == "success", rest.task_instances(DAG, run_id)
    finally:
        rest.http.patch(f"/api/v2/dags/{DAG}", json={"is_paused": True})
    assert reg.current_version(model) == "v2" and reg.get_canary(model) is None
    promote = [e for e in reg.history(model) if e["event"] == "promote"][-1]
    assert promote["by"] == "admin (Airflow UI)"
    assert (
        "candidate BETTER on auc" in promote["reason"] and "approved by admin" in promote["reason"]
    )
    assert "wait_for_evidence:deferred" in seen and "approve:awaiting_input" in seen
