"""dags/deploy_model_tasks.py: settings from params or an Asset event, the evidence
trigger, the approval's automatic answers."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import deploy_model_tasks as tasks  # type: ignore[import-not-found]
import pytest
from airflow.sdk.exceptions import AirflowSkipException

from ml.pipeline.deploy import DeploySettings
from testkit.serving import write_served_logs


def _context(params: dict[str, Any], **extra: Any) -> dict[str, Any]:
    dag_run = SimpleNamespace(dag_id="deploy_model")
    return {"params": params, "dag_run": dag_run, "run_id": "manual__1", **extra}


def test_settings_come_from_the_triggering_asset_event() -> None:
    event = SimpleNamespace(extra={"model_name": "other_model", "version": "v7"})
    ctx = _context(
        {"model_name": "ctr_model", "version": None}, triggering_asset_events={"a": [event]}
    )
    s = tasks.deploy_settings(ctx)
    assert (s.model_name, s.version, s.run) == ("other_model", "v7", "deploy_model manual__1")
    plain = tasks.deploy_settings(_context({"model_name": "ctr_model", "version": "v2"}))
    assert plain.version == "v2"


def test_evidence_trigger_fires_once_the_canary_has_its_outcomes(tmp_path: Path) -> None:
    s = DeploySettings(log_dir=str(tmp_path), min_impressions=50)
    since = time.time() - 1
    write_served_logs(
        tmp_path,
        n=300,
        versions={"control": "v1", "candidate": "v2"},
        shares={"control": 0.5, "candidate": 0.5},
    )
    trigger = tasks.EvidenceTrigger(dataclasses.asdict(s), "v2", since, poll_s=0.01)
    classpath, kwargs = trigger.serialize()
    assert classpath == "deploy_model_tasks.EvidenceTrigger" and kwargs["version"] == "v2"

    async def first() -> Any:
        return await trigger.run().__anext__()

    event = asyncio.run(asyncio.wait_for(first(), timeout=30))
    assert event.payload["ready"] and event.payload["candidate"] >= 50


class _TI:
    def __init__(self, decision: dict[str, Any]) -> None:
        self.decision = decision

    def xcom_pull(self, task_ids: str) -> dict[str, Any]:
        return self.decision


def test_auto_approval_approves_a_win_and_skips_otherwise() -> None:
    op = tasks.DeployApproval(task_id="approve", subject="s", body="b")
    won = op.execute({"ti": _TI({"action": "promote", "reason": "better"})})
    assert won["chosen_options"] == ["Approve"] and won["auto"] is True
    with pytest.raises(AirflowSkipException, match="worse: no promotion"):
        op.execute({"ti": _TI({"action": "end", "reason": "worse"})})
