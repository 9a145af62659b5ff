"""dags/pipeline_notifications.py: delivery once per try, titles, links, never failing."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pipeline_notifications as notes  # type: ignore[import-not-found]
import pytest
from airflow.sdk.exceptions import AirflowFailException


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
