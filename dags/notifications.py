"""Notification channels of the DAGs: Slack (incoming webhook) and email (SMTP).

Each channel is an Airflow connection; a missing one makes that channel log-only, and a
channel that fails logs a warning: a notification never fails the pipeline. The text
itself comes from ``ml.notifications``.

- Slack: a ``slackwebhook`` connection, ``slack_webhook`` (``$CTR_SLACK_CONN_ID``).
- Email: an ``smtp`` connection, ``smtp_default`` (``$CTR_SMTP_CONN_ID``), sent through
  the SMTP provider's ``SmtpHook``. Recipients: ``$CTR_NOTIFY_EMAIL_TO`` or the
  connection's extra ``to`` (comma-separated; none: log-only); sender: the extra
  ``from_email`` or ``$CTR_NOTIFY_EMAIL_FROM``. The hook's own extras apply
  (``disable_ssl``, ``disable_tls``, ``timeout``, ``retry_limit``).

Imported lazily by ``training_pipeline_tasks`` (not a DAG file: see ``.airflowignore``).
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

# A child of the tasks module's logger, so its level settings apply here too.
log = logging.getLogger("training_pipeline_tasks.notifications")


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

    conn_id = conn_id or os.environ.get("CTR_SLACK_CONN_ID", "slack_webhook")
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


def send(text: str, subject: str | None = None) -> None:
    """Send ``text`` to every configured channel."""
    post_to_slack(text)
    send_email(text, subject)
