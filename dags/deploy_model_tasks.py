"""Airflow glue of ``deploy_model`` and ``watch_production``: settings, the evidence
trigger, the approval. The work is ``ml.pipeline.deploy`` and ``ml.pipeline.watch``.

- :class:`EvidenceTrigger` runs in the triggerer: every ``poll_s`` seconds it counts the
  outcomes per variant (``ml.pipeline.deploy.evidence``, in a thread) and fires when
  there are ``min_impressions`` per variant or ``max_wait_s`` has passed.
  :class:`WaitForEvidence` checks once and defers to it: no worker slot is held while
  the canary collects evidence.
- :class:`DeployApproval` is the Airflow 3.3 HITL ``ApprovalOperator``: the task waits in
  ``awaiting_input`` (no worker) until a user with edit rights on the DAG approves or
  rejects in the Required Actions page (or over the REST API). Reject skips
  ``promote``. With ``approval: auto`` it asks nobody: ``decide``'s verdict approves
  (a significant win) or skips (anything else).

Nothing heavy is imported at module level (the DAG files parse fast).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk import BaseOperator
from airflow.triggers.base import BaseTrigger, TriggerEvent

AUTO_BY = "deploy_model (approval: auto)"


def deploy_settings(context: Mapping[str, Any]) -> Any:
    """``DeploySettings`` from the run's params, or from the Asset event that triggered it
    (its extra's ``model_name`` and ``version``)."""
    from ml.pipeline.deploy import DeploySettings

    params = dict(context["params"])
    for events in (context.get("triggering_asset_events") or {}).values():
        for event in events:
            extra = getattr(event, "extra", None) or {}
            if extra.get("version"):
                params["model_name"] = extra.get("model_name") or params["model_name"]
                params["version"] = extra["version"]
    dag_run = context["dag_run"]
    return DeploySettings.from_mapping(params, run=f"{dag_run.dag_id} {context['run_id']}")


class EvidenceTrigger(BaseTrigger):
    """Fires once the canary has its evidence (see module doc)."""

    def __init__(self, settings: dict[str, Any], version: str, since: float, poll_s: float):
        super().__init__()
        self.settings, self.version, self.since, self.poll_s = settings, version, since, poll_s

    def serialize(self) -> tuple[str, dict[str, Any]]:
        kwargs = {"settings": self.settings, "version": self.version, "since": self.since}
        return ("deploy_model_tasks.EvidenceTrigger", {**kwargs, "poll_s": self.poll_s})

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from ml.pipeline.deploy import DeploySettings, evidence

        s = DeploySettings(**self.settings)
        while True:
            counts = await asyncio.to_thread(evidence, s, self.version, self.since)
            self.log.info("evidence for %s: %s", self.version, counts)
            if counts["ready"]:
                yield TriggerEvent(counts)
                return
            await asyncio.sleep(self.poll_s)


class WaitForEvidence(BaseOperator):
    """Defer to :class:`EvidenceTrigger` until the canary has its evidence."""

    def __init__(self, *, poll_s: float = 60.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.poll_s = poll_s

    def execute(self, context: Any) -> Any:
        import dataclasses

        from ml.pipeline.deploy import evidence

        s = deploy_settings(context)
        started = context["ti"].xcom_pull(task_ids="start_canary")
        counts = evidence(s, started["version"], started["since"])
        if counts["ready"]:
            return counts
        self.defer(
            trigger=EvidenceTrigger(
                dataclasses.asdict(s), started["version"], started["since"], self.poll_s
            ),
            method_name="execute_complete",
        )

    def execute_complete(self, context: Any, event: dict[str, Any]) -> dict[str, Any]:
        return event


class DeployApproval(ApprovalOperator):
    """The HITL approval of the canary's candidate; decides alone with ``approval: auto``."""

    def execute(self, context: Any) -> Any:
        from airflow.sdk.exceptions import AirflowSkipException

        decision = context["ti"].xcom_pull(task_ids="decide") or {}
        if decision.get("action") == "promote":
            self.log.info("approval: auto: %s -> promote", decision.get("reason"))
            return {"chosen_options": [self.APPROVE], "responded_by_user": None, "auto": True}
        if decision.get("action") == "end":
            raise AirflowSkipException(f"approval: auto: {decision.get('reason')}: no promotion")
        return super().execute(context)


def task_states(context: Mapping[str, Any], task_ids: tuple[str, ...]) -> dict[str, str | None]:
    """The states of ``task_ids`` in this run (through the Execution API)."""
    ti, run_id = context["ti"], context["run_id"]
    found = ti.get_task_states(dag_id=ti.dag_id, task_ids=list(task_ids), run_ids=[run_id])
    return {k: getattr(v, "value", v) for k, v in found.get(run_id, {}).items()}


def deliver(text: str, context: Mapping[str, Any], kind: str) -> None:
    """Post ``text`` to Slack/email when configured (log-only otherwise), once per try."""
    from pipeline_notifications import deliver as _deliver

    ti = context["ti"]
    key = f"{kind}:{ti.task_id}:{ti.try_number}"
    _deliver(text, dag_id=context["dag_run"].dag_id, run_id=context["run_id"], key=key)
