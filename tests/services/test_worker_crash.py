"""A Celery worker SIGKILLed in the middle of ``train_model``: the stack heals itself.

The trial (``testkit.worker_crash``) runs on the shared PostgreSQL + Celery stack in the
background, started by the e2e test once its own run is done. Nobody acts after the kill:
``make airflow``'s supervisor restarts the worker (logged, with backoff), the scheduler
fails the orphaned try when its heartbeat times out (the profile sets 45 s instead of
Airflow's 300), Airflow retries it after ``train_model``'s ``retry_delay`` and the new
try resumes from the checkpoint of the killed one. The time from the kill to the run's
success is a ``make bench`` row too (``bench_dag.py``; target <= 3 min).
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from testkit import services as kit
from testkit.worker_crash import CRASH_MODEL, CrashResult, resumed_epoch

pytestmark = [pytest.mark.services, pytest.mark.slow, pytest.mark.timeout(1200)]


def test_killed_worker_is_restarted_and_the_run_succeeds_from_the_checkpoint(
    pg_stack: kit.Stack, pg_crash: Any
) -> None:
    result: CrashResult = pg_crash.result(timeout=1000)
    rest = pg_stack.rest
    assert rest is not None
    assert result.state == "success", rest.failure_report(kit.DAG_ID, result.run_id)
    assert len(result.killed) >= 3, result.killed  # worker, its pool child, the task
    # The killed try failed on its heartbeat; the second one resumed where it stopped.
    assert result.train_try == 2, result.train_log[-3000:]
    epoch = resumed_epoch(result.train_log)
    assert epoch is not None and epoch >= 1, result.train_log[-3000:]
    assert len(result.run_dirs) == 1, result.run_dirs  # the same run directory, resumed
    assert pg_stack.registered_versions(CRASH_MODEL) == ["v1"]
    # The supervisor saw the crash and restarted the worker, without anyone's help.
    worker = re.escape(result.worker)
    assert re.search(
        rf"{worker}: pid \d+ exited \(killed by SIGKILL\); restarting in 1 s", pg_stack.text
    ), pg_stack.text[-3000:]
    assert f"{result.worker}: restarted (pid" in pg_stack.text
    print(
        f"worker crash: killed {len(result.killed)} processes at epoch {epoch}; run "
        f"{result.run_id} succeeded {result.kill_to_success_s:.0f} s after the kill; "
        f"timeline: {result.timeline}"
    )
    assert result.kill_to_success_s < 300, "healing took more than 5 minutes"
