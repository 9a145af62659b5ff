"""dags/pipeline_notifications.py: delivery once per try, titles, links, never failing."""

from __future__ import annotations

import email
import email.policy
import json
import logging
from collections.abc import Iterator
from email.message import Message
from pathlib import Path
from typing import Any

import pipeline_notifications as notes  # type: ignore[import-not-found]
import pytest
from aiosmtpd.controller import Controller
from airflow.sdk.exceptions import AirflowFailException

from ml.notifications import success_message
from testkit.serving import free_port


class TI:
    dag_id = "training_pipeline"
    task_id = "evaluate_model"
    run_id = "manual__x"
    try_number = 1
    map_index = -1


def test_post_to_slack_posts_to_the_webhook_connection(
    webhook: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_SLACK_WEBHOOK", webhook.connection_env())
    assert notes.post_to_slack("🎉 Training Pipeline Complete!") is True
    assert webhook.payloads == [
        {"path": "/services/T000/B000/XXX", "text": "🎉 Training Pipeline Complete!"}
    ]


def test_post_to_slack_without_connection_is_log_only(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="training_pipeline_tasks"):
        assert notes.post_to_slack("x") is False
    assert "notifications are log-only" in caplog.text


def test_post_to_slack_never_raises_when_the_webhook_is_down(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_SLACK_WEBHOOK",
        '{"conn_type": "slackwebhook", "password": "http://127.0.0.1:9/hook"}',
    )
    monkeypatch.setattr(
        "airflow.providers.slack.hooks.slack_webhook.SlackWebhookHook.send_dict",
        lambda self, body: (_ for _ in ()).throw(ConnectionRefusedError("refused")),
    )
    with caplog.at_level(logging.WARNING, logger="training_pipeline_tasks"):
        assert notes.post_to_slack("x") is False
    assert "Slack notification via connection 'slack_webhook' failed" in caplog.text


def test_failure_names_task_error_and_links_the_configured_ui(
    webhook: Any, monkeypatch: pytest.MonkeyPatch, project_home: Path
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_SLACK_WEBHOOK", webhook.connection_env())
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "http://airflow.example:9090/")
    ctx = {"ti": TI(), "run_id": "manual__x", "exception": AirflowFailException("gate failed")}
    notes.notify_failure(ctx)
    notes.notify_failure(ctx)  # the same try again: not posted twice
    (payload,) = webhook.payloads
    text = payload["text"]
    assert text.startswith("❌ Training Pipeline FAILED at evaluate_model (attempt 1)")
    assert "AirflowFailException: gate failed" in text
    assert (
        "Log: http://airflow.example:9090/dags/training_pipeline/runs/manual__x/tasks/"
        "evaluate_model?try_number=1" in text
    )


def test_failure_without_a_configured_ui_has_no_link_and_names_the_dag(
    webhook: Any, monkeypatch: pytest.MonkeyPatch, project_home: Path
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_SLACK_WEBHOOK", webhook.connection_env())
    monkeypatch.delenv("AIRFLOW__API__BASE_URL", raising=False)

    class FeatureTI(TI):
        dag_id = "feature_engineering_pipeline"
        task_id = "save_features"

    notes.notify_failure({"ti": FeatureTI(), "run_id": "manual__f", "exception": "boom"})
    (payload,) = webhook.payloads
    assert payload["text"].startswith("❌ Feature Pipeline FAILED at save_features")
    assert "localhost:8080" not in payload["text"] and "Log:" not in payload["text"]


def test_retry_of_a_long_task_is_announced_once_per_try(
    webhook: Any, monkeypatch: pytest.MonkeyPatch, project_home: Path
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_SLACK_WEBHOOK", webhook.connection_env())

    class TrainTI(TI):
        task_id = "train_model"

    ctx = {"ti": TrainTI(), "run_id": "manual__r", "exception": OSError("worker lost")}
    notes.notify_retry(ctx)
    notes.notify_retry(ctx)
    TrainTI.try_number = 2
    notes.notify_retry(ctx)
    texts = webhook.texts()
    assert len(texts) == 2
    assert texts[0].startswith("🔁 Training Pipeline: train_model failed on try 1")
    assert "resumes from its last checkpoint" in texts[0] and "worker lost" in texts[0]
    assert "failed on try 2" in texts[1]


# --- email through the SMTP provider, to a real local SMTP server (aiosmtpd) -----------

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


def test_success_message_is_emailed_with_subject_recipients_and_summary(
    inbox: Inbox, project_home: Path
) -> None:
    text = success_message(
        model_name="ctr_model",
        version="v3",
        path="models/staging/ctr_model/v3",
        metrics={"test_auc": 0.7891, "test_accuracy": 0.75},
        dag_id="training_pipeline",
        run_id="manual__1",
    )
    assert notes.deliver(text, dag_id="training_pipeline", run_id="manual__1", key="success:t:1")
    assert not notes.deliver(
        text, dag_id="training_pipeline", run_id="manual__1", key="success:t:1"
    )
    ((rcpt, msg),) = inbox.messages
    assert rcpt == TO
    assert msg["Subject"] == "[ctr-pipeline] Training Pipeline Complete! – ctr_model v3 (staging)"
    assert msg["From"] == "airflow@example.com" and msg["To"] == ", ".join(TO)
    body = _body(msg)
    assert "🎉 Training Pipeline Complete!" in body and "test_auc: 0.7891" in body
    assert "DAG run: training_pipeline / manual__1" in body


def test_failure_is_emailed_naming_the_task_and_error(
    inbox: Inbox, project_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "http://localhost:8080")

    class TI:
        dag_id = "training_pipeline"
        task_id = "evaluate_model"
        run_id = "manual__x"
        try_number = 2
        map_index = -1
        log_url = "http://localhost:8080/dags/training_pipeline/runs/manual__x/tasks/evaluate_model"

    notes.notify_failure(
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
    assert notes.send_email("hello", "subject line") is True
    ((rcpt, msg),) = inbox.messages
    assert rcpt == ["a@example.com", "b@example.com"] and msg["Subject"] == "subject line"


def test_without_connection_or_recipients_email_is_log_only(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_SMTP_DEFAULT", raising=False)
    with caplog.at_level(logging.INFO, logger="training_pipeline_tasks"):
        assert notes.send_email("x") is False
    assert "No Airflow connection 'smtp_default': email notifications are log-only" in caplog.text
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", json.dumps({"conn_type": "smtp"}))
    with caplog.at_level(logging.INFO, logger="training_pipeline_tasks"):
        assert notes.send_email("x") is False
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
        assert notes.send_email("x") is False
    assert "Email notification via connection 'smtp_default' failed" in caplog.text


def test_deploy_decision_report_reaches_slack_and_email_with_figures_and_verdict(
    webhook: Any, inbox: Inbox, monkeypatch: pytest.MonkeyPatch, project_home: Path
) -> None:
    """deploy_model's decide: the A/B report through deploy_model_tasks.deliver."""
    import deploy_model_tasks  # type: ignore[import-not-found]

    from ml.pipeline import deploy
    from ml.pipeline.deploy import DeploySettings
    from testkit.serving import write_served_logs

    monkeypatch.setenv("AIRFLOW_CONN_SLACK_WEBHOOK", webhook.connection_env())
    logs = project_home / "serving"
    write_served_logs(
        logs,
        n=2000,
        versions={"control": "v1", "candidate": "v2"},
        shares={"control": 0.5, "candidate": 0.5},
        noise={"control": 1.5, "candidate": 0.2},
    )
    s = DeploySettings(log_dir=str(logs), min_impressions=300, run="deploy_model manual__7")
    links = deploy.links("ctr_model", "v2", "https://airflow.example")
    out = deploy.decide(s, "v2", 0.0, links)

    class RunTI:
        task_id, try_number = "decide", 1

    class Run:
        dag_id = "deploy_model"

    context = {"ti": RunTI(), "dag_run": Run(), "run_id": "manual__7"}
    deploy_model_tasks.deliver(out["text"], context, "decide")
    deploy_model_tasks.deliver(out["text"], context, "decide")  # the same try: once
    (payload,) = webhook.payloads
    text = payload["text"]
    assert text.startswith("⚖️ Canary decision: candidate BETTER on auc")
    assert "Model: ctr_model v2 (canary at 10% of users)" in text
    assert "Next: waiting for approval in Airflow (Browse → Required Actions" in text
    report = out["report"]
    for name, versions in (("control", "v1"), ("candidate", "v2")):
        v = report["variants"][name]
        row = next(ln for ln in text.splitlines() if ln.strip().startswith(name))
        assert versions in row and f"{v['rows']:,}" in row and f"{v['clicks']:,}" in row
        assert f"{v['ctr']['value']:.4f}" in row and f"{v['logloss']['value']:.4f}" in row
        assert f"{v['auc']['value']:.4f}" in row
    assert "verdict: the candidate is BETTER on auc" in text
    assert "candidate - control: log loss" in text
    assert "model card of v2: https://airflow.example/plugin/models/models-ui/view/" in text
    assert "DAG run: deploy_model / manual__7" in text
    ((_, msg),) = inbox.messages
    assert msg["Subject"] == (
        "[ctr-pipeline] Canary decision: candidate BETTER on auc – ctr_model v2 "
        "(canary at 10% of users)"
    )
    assert "verdict: the candidate is BETTER on auc" in _body(msg)
