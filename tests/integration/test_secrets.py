"""No secret reaches an artifact: one full `make run` with Slack and SMTP connections whose
webhook token and password are distinctive test strings, then every file of the project
home (run directory, registry version and its card, run summary, task and service logs,
the metadata database with its XComs), the run's output and every notification sent are
searched for them (docs/security.md).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from testkit.airflow import WebhookRecorder, small_config
from testkit.serving import free_port

CHECKOUT = Path(__file__).resolve().parents[2]
SLACK_TOKEN = "slackTOKEN-3f9a1c7e5b2d"
SMTP_PASSWORD = "smtpPASSWORD-8d4e6b0a2c1f"
SECRETS = (SLACK_TOKEN, SMTP_PASSWORD)
CONF = {
    "config_path": "config/small.yaml",
    "epochs": 1,
    "min_auc": 0.0,
    "min_accuracy": 0.0,
    "baseline_tolerance": None,
    "auto_promote": True,
}

pytestmark = pytest.mark.slow


class _Inbox:
    """aiosmtpd handler and authenticator: keeps messages and the logins it checked."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.logins: list[bool] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(bytes(envelope.content))
        return "250 OK"

    def __call__(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
        ok = isinstance(data, LoginPassword) and data.password == SMTP_PASSWORD.encode()
        self.logins.append(ok)
        return AuthResult(success=ok)


@pytest.fixture(scope="module")
def secret_run(tmp_path_factory: pytest.TempPathFactory, tiny_features_dir: Path) -> Iterator[Any]:
    from scripts.airflow_env import airflow_env

    home = tmp_path_factory.mktemp("secrets_home")
    shutil.copytree(CHECKOUT / "config", home / "config")
    (home / "config" / "small.yaml").write_text(small_config(epochs=1))
    shutil.copytree(tiny_features_dir, home / "data" / "features" / "v1")
    webhook = WebhookRecorder()
    inbox = _Inbox()
    smtp = Controller(
        inbox,
        hostname="127.0.0.1",
        port=free_port(),
        authenticator=inbox,
        auth_require_tls=False,
    )
    smtp.start()
    base = webhook.url.split("/services/")[0]
    smtp_conn = {
        "conn_type": "smtp",
        "host": "127.0.0.1",
        "port": smtp.port,
        "login": "airflow",
        "password": SMTP_PASSWORD,
        "extra": {
            "disable_ssl": True,
            "disable_tls": True,
            "from_email": "airflow@example.com",
            "to": "ml-team@example.com",
            "timeout": 5,
            "retry_limit": 0,
        },
    }
    env = airflow_env(
        home,
        {
            "AIRFLOW_CONN_SLACK_WEBHOOK": json.dumps(
                {
                    "conn_type": "slackwebhook",
                    "password": f"{base}/services/T000/B000/{SLACK_TOKEN}",
                }
            ),
            "AIRFLOW_CONN_SMTP_DEFAULT": json.dumps(smtp_conn),
            "AIRFLOW__API__BASE_URL": "http://airflow.test:8080",
        },
    )
    env.pop("CTR_TRAINING_SCHEDULE", None)
    env.pop("CTR_NOTIFY_EMAIL_TO", None)
    cmd = [sys.executable, "-m", "scripts.run_pipeline", "--home", str(home), "--conf"]
    proc = subprocess.run(
        [*cmd, json.dumps(CONF)],
        env=env,
        cwd="/",
        capture_output=True,
        text=True,
        timeout=480,
        check=False,
    )
    try:
        yield {"home": home, "proc": proc, "webhook": webhook, "inbox": inbox}
    finally:
        smtp.stop()
        webhook.close()


def _leaks(data: bytes) -> list[str]:
    return [s for s in SECRETS if s.encode() in data]


def test_a_full_run_with_secret_connections_leaks_them_nowhere(secret_run: Any) -> None:
    proc, home = secret_run["proc"], secret_run["home"]
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    # The secrets were used: Slack got the messages at the token's URL, email logged in.
    webhook, inbox = secret_run["webhook"], secret_run["inbox"]
    assert webhook.payloads and all(SLACK_TOKEN in p["path"] for p in webhook.payloads)
    assert inbox.messages and inbox.logins and all(inbox.logins)
    searched: list[str] = []
    found: dict[str, list[str]] = {}
    for root, _dirs, files in os.walk(home):
        for name in files:
            path = Path(root) / name
            if path.is_symlink() or not path.is_file():
                continue
            searched.append(str(path.relative_to(home)))
            hits = _leaks(path.read_bytes())
            if hits:
                found[str(path.relative_to(home))] = hits
    for label, text in (("make run stdout", proc.stdout), ("make run stderr", proc.stderr)):
        if _leaks(text.encode()):
            found[label] = _leaks(text.encode())
    for i, payload in enumerate(webhook.payloads):
        body = {k: v for k, v in payload.items() if k != "path"}  # the URL is the channel
        if _leaks(json.dumps(body).encode()):
            found[f"Slack message {i}"] = _leaks(json.dumps(body).encode())
    for i, message in enumerate(inbox.messages):
        if _leaks(message):
            found[f"email {i}"] = _leaks(message)
    assert found == {}
    # What was searched: the run, the registry and its card, the summary, logs, XComs.
    for must in (
        "experiments/runs/",
        "experiments/summaries/training_pipeline/",
        "models/staging/ctr_model/v1/MANIFEST.json",
        "models/staging/ctr_model/v1/model_card.md",
        "airflow_home/airflow.db",  # XComs, task instances
        "train_model.log",
        "notify_completion.log",
    ):
        assert any(must in p for p in searched), (must, searched)
