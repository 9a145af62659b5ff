"""Where the DAGs' notifications go: the task log always, Slack when a connection exists.

The text comes from ``ml.notifications``; this module only delivers it, once per kind,
task and try (``ml.pipeline.summary.claim_notification``), and never fails a task. Task
log links are built from ``$AIRFLOW__API__BASE_URL`` (set by ``make airflow`` for its API
server); without it, as under ``make run``, messages carry no link rather than a wrong
``localhost:8080`` one.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

log = logging.getLogger("training_pipeline_tasks")
SLACK_CONN_ENV = "CTR_SLACK_CONN_ID"


def api_base_url() -> str | None:
    """The Airflow UI's base URL when one is configured, else None."""
    return os.environ.get("AIRFLOW__API__BASE_URL", "").strip() or None


def post_to_slack(text: str, conn_id: str | None = None) -> bool:
    """Post ``text`` to the Slack webhook connection; never raises (False if not posted)."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    from ml.notifications import slack_payload

    conn_id = conn_id or os.environ.get(SLACK_CONN_ENV, "slack_webhook")
    try:
        BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        log.info(
            "No Airflow connection %r: notifications are log-only (add a 'slackwebhook' "
            "connection named %r to post them to Slack)",
            conn_id,
            conn_id,
        )
        return False
    try:
        from airflow.providers.slack.hooks.slack_webhook import SlackWebhookHook

        SlackWebhookHook(slack_webhook_conn_id=conn_id, timeout=10).send_dict(slack_payload(text))
    except Exception as exc:  # a notification problem must never fail the pipeline
        log.warning("Slack notification via connection %r failed: %s", conn_id, exc)
        return False
    log.info("📣 Notification posted to Slack (connection %r)", conn_id)
    return True


def deliver(text: str, *, dag_id: str, run_id: str, key: str, level: int = logging.INFO) -> bool:
    """Log ``text`` and send it to every channel, unless ``key`` was sent for this run.

    Returns:
        Whether it was sent now (False: a duplicate for the same kind, task and try).
    """
    from ml.pipeline.summary import claim_notification

    for line in text.splitlines():
        log.log(level, line)
    try:
        first = claim_notification(dag_id, run_id, key)
    except Exception as exc:  # bookkeeping must not block the message
        log.warning("could not record notification %s: %s", key, exc)
        first = True
    if not first:
        log.info("(%s was already sent for this try: not sent again)", key)
        return False
    post_to_slack(text)
    return True


def _ti_fields(context: Mapping[str, Any]) -> dict[str, Any]:
    from ml.notifications import task_log_url

    ti = context.get("ti") or context.get("task_instance")
    dag_id = getattr(ti, "dag_id", None) or "training_pipeline"
    run_id = str(context.get("run_id") or getattr(ti, "run_id", ""))
    task_id = getattr(ti, "task_id", "unknown task")
    try_number = getattr(ti, "try_number", None)
    url = task_log_url(
        api_base_url(),
        dag_id=dag_id,
        run_id=run_id,
        task_id=task_id,
        try_number=try_number,
        map_index=getattr(ti, "map_index", -1) or -1,
    )
    return {
        "dag_id": dag_id,
        "run_id": run_id,
        "task_id": task_id,
        "try_number": try_number,
        "log_url": url,
        "error": context.get("exception"),
    }


def notify_failure(context: Mapping[str, Any]) -> None:
    """``on_failure_callback``: name the DAG, the task, the error and its log."""
    from ml.notifications import failure_message

    f = _ti_fields(context)
    key = f"failure:{f['task_id']}:{f['try_number']}"
    deliver(failure_message(**f), dag_id=f["dag_id"], run_id=f["run_id"], key=key, level=40)


def notify_retry(context: Mapping[str, Any]) -> None:
    """``on_retry_callback`` of long tasks: say it failed and will resume on a retry."""
    from ml.notifications import retry_message

    f = _ti_fields(context)
    key = f"retry:{f['task_id']}:{f['try_number']}"
    deliver(retry_message(**f), dag_id=f["dag_id"], run_id=f["run_id"], key=key, level=30)
