"""dags/notifications.py: email through the SMTP provider to a real local SMTP server."""

from __future__ import annotations

import email
import email.policy
import json
import logging
from collections.abc import Iterator
from email.message import Message
from typing import Any

import notifications  # type: ignore[import-not-found]
import pytest
import training_pipeline_tasks as glue  # type: ignore[import-not-found]
from aiosmtpd.controller import Controller
from airflow.sdk.exceptions import AirflowFailException

from ml.notifications import success_message
from testkit.serving import free_port

TO = ["ml-team@example.com", "oncall@example.com"]


class Inbox:
    """aiosmtpd handler: keeps every message it is sent."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(
            (
                list(envelope.rcpt_tos),
                email.message_from_bytes(envelope.content, policy=email.policy.default),
            )
        )
        return "250 OK"


@pytest.fixture
def inbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Inbox]:
    handler = Inbox()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    conn = {
        "conn_type": "smtp",
        "host": "127.0.0.1",
        "port": port,
        "extra": {
            "disable_ssl": True,
            "disable_tls": True,
            "from_email": "airflow@example.com",
            "to": ", ".join(TO),
            "timeout": 5,
            "retry_limit": 0,
        },
    }
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", json.dumps(conn))
    monkeypatch.delenv("CTR_NOTIFY_EMAIL_TO", raising=False)
    yield handler
    controller.stop()


def _body(msg: Message) -> str:
    part = next(p for p in msg.walk() if p.get_content_type() == "text/html")
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode()


def test_success_message_is_emailed_with_subject_recipients_and_summary(inbox: Inbox) -> None:
    text = success_message(
        model_name="ctr_model",
        version="v3",
        path="models/staging/ctr_model/v3",
        metrics={"test_auc": 0.7891, "test_accuracy": 0.75},
        dag_id="training_pipeline",
        run_id="manual__1",
    )
    glue.notify(text)
    ((rcpt, msg),) = inbox.messages
    assert rcpt == TO
    assert msg["Subject"] == "[ctr-pipeline] Training Pipeline Complete! – ctr_model v3 (staging)"
    assert msg["From"] == "airflow@example.com" and msg["To"] == ", ".join(TO)
    body = _body(msg)
    assert "🎉 Training Pipeline Complete!" in body and "test_auc: 0.7891" in body
    assert "DAG run: training_pipeline / manual__1" in body


def test_failure_is_emailed_naming_the_task_and_error(inbox: Inbox) -> None:
    class TI:
        dag_id = "training_pipeline"
        task_id = "evaluate_model"
        run_id = "manual__x"
        try_number = 2
        log_url = "http://localhost:8080/dags/training_pipeline/runs/manual__x"

    glue.notify_failure(
        {"ti": TI(), "run_id": "manual__x", "exception": AirflowFailException("gate <failed>")}
    )
    ((rcpt, msg),) = inbox.messages
    assert rcpt == TO
    assert msg["Subject"] == (
        "[ctr-pipeline] Training Pipeline FAILED at evaluate_model (attempt 2) – "
        "training_pipeline / manual__x"
    )
    body = _body(msg)
    assert "AirflowFailException: gate &lt;failed&gt;" in body and TI.log_url in body


def test_recipients_from_the_environment_win(inbox: Inbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CTR_NOTIFY_EMAIL_TO", "a@example.com;b@example.com")
    assert glue.send_email("hello", "subject line") is True
    ((rcpt, msg),) = inbox.messages
    assert rcpt == ["a@example.com", "b@example.com"] and msg["Subject"] == "subject line"


def test_without_connection_or_recipients_email_is_log_only(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_SMTP_DEFAULT", raising=False)
    with caplog.at_level(logging.INFO, logger="training_pipeline_tasks"):
        assert glue.send_email("x") is False
    assert "No Airflow connection 'smtp_default': email notifications are log-only" in caplog.text
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", json.dumps({"conn_type": "smtp"}))
    with caplog.at_level(logging.INFO, logger="training_pipeline_tasks"):
        assert notifications.send_email("x") is False
    assert "names no recipients" in caplog.text


def test_email_never_raises_when_the_server_is_down(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    conn = {
        "conn_type": "smtp",
        "host": "127.0.0.1",
        "port": free_port(),
        "extra": {"disable_ssl": True, "to": "a@example.com", "timeout": 2, "retry_limit": 0},
    }
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", json.dumps(conn))
    with caplog.at_level(logging.WARNING, logger="training_pipeline_tasks"):
        assert glue.send_email("x") is False
    assert "Email notification via connection 'smtp_default' failed" in caplog.text
