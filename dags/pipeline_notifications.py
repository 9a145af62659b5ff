"""Where the DAGs' notifications go: the task log always, Slack and email when configured.

- Slack: a ``slackwebhook`` connection, ``slack_webhook`` (``$CTR_SLACK_CONN_ID``).
- Email: an ``smtp`` connection, ``smtp_default`` (``$CTR_SMTP_CONN_ID``), sent through
  the SMTP provider's ``SmtpHook``. Recipients: ``$CTR_NOTIFY_EMAIL_TO`` or the
  connection's extra ``to`` (comma-separated; none: log-only); sender: the extra
  ``from_email`` or ``$CTR_NOTIFY_EMAIL_FROM``. The hook's own extras apply
  (``disable_ssl``, ``disable_tls``, ``timeout``, ``retry_limit``).

A missing connection makes that channel log-only; a failing channel logs a warning: a
notification never fails the pipeline. The text comes from ``ml.notifications``; this
module only delivers it, once per kind,
task and try (``ml.pipeline.summary.claim_notification``), and never fails a task. Task
log links are built from ``$AIRFLOW__API__BASE_URL`` (set by ``make airflow`` for its API
server); without it, as under ``make run``, messages carry no link rather than a wrong
``localhost:8080`` one.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping
from typing import Any

log = logging.getLogger("training_pipeline_tasks")
SLACK_CONN_ENV = "CTR_SLACK_CONN_ID"


def api_base_url() -> str | None:
    """The Airflow UI's base URL when one is configured, else None."""
    return os.environ.get("AIRFLOW__API__BASE_URL", "").strip() or None


def _connection(conn_id: str, kind: str, hint: str) -> Any:
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        log.info(
            "No Airflow connection %r: %s notifications are log-only (add %s)",
            conn_id,
            kind,
            hint,
        )
        return None


def post_to_slack(text: str, conn_id: str | None = None) -> bool:
    """Post ``text`` to the Slack webhook connection; never raises (False if not posted)."""
    from ml.notifications import slack_payload

    conn_id = conn_id or os.environ.get(SLACK_CONN_ENV, "slack_webhook")
    if _connection(conn_id, "Slack", f"a 'slackwebhook' connection named {conn_id!r}") is None:
        return False
    try:
        from airflow.providers.slack.hooks.slack_webhook import SlackWebhookHook

        SlackWebhookHook(slack_webhook_conn_id=conn_id, timeout=10).send_dict(slack_payload(text))
    except Exception as exc:  # a notification problem must never fail the pipeline
        log.warning("Slack notification via connection %r failed: %s", conn_id, exc)
        return False
    log.info("📣 Notification posted to Slack (connection %r)", conn_id)
    return True


def recipients(conn: Any) -> list[str]:
    """``$CTR_NOTIFY_EMAIL_TO``, else the connection's extra ``to`` (list or text)."""
    raw: Any = os.environ.get("CTR_NOTIFY_EMAIL_TO") or (conn.extra_dejson or {}).get("to")
    if isinstance(raw, str):
        raw = raw.replace(";", ",").split(",")
    return [str(r).strip() for r in raw or () if str(r).strip()]


def send_email(text: str, subject: str | None = None, conn_id: str | None = None) -> bool:
    """Email ``text`` through the SMTP connection; never raises (False if not sent)."""
    from ml.notifications import email_html, email_subject

    conn_id = conn_id or os.environ.get("CTR_SMTP_CONN_ID", "smtp_default")
    conn = _connection(conn_id, "email", f"an 'smtp' connection named {conn_id!r}")
    if conn is None:
        return False
    to = recipients(conn)
    if not to:
        log.info(
            "SMTP connection %r names no recipients: email notifications are log-only (set "
            "its extra 'to' or $CTR_NOTIFY_EMAIL_TO)",
            conn_id,
        )
        return False
    sender = (conn.extra_dejson or {}).get("from_email") or os.environ.get(
        "CTR_NOTIFY_EMAIL_FROM", f"ctr-pipeline@{socket.gethostname()}"
    )
    try:
        from airflow.providers.smtp.hooks.smtp import SmtpHook

        with SmtpHook(smtp_conn_id=conn_id) as hook:
            hook.send_email_smtp(
                to=to,
                subject=subject or email_subject(text),
                html_content=email_html(text),
                from_email=sender,
            )
    except Exception as exc:  # a notification problem must never fail the pipeline
        log.warning("Email notification via connection %r failed: %s", conn_id, exc)
        return False
    log.info("📧 Notification emailed to %s (connection %r)", ", ".join(to), conn_id)
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
    send_email(text)
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
