"""Fixtures for the DAG tests.

Airflow reads ``AIRFLOW_HOME`` once, when first imported, and writes ``airflow.cfg``
there: every test here points it (and the project base) at temp directories, and the
DAG-parsing checks run in subprocesses with the environment ``scripts/airflow_env.py``
builds, so nothing leaks into ``~/airflow`` or into other tests.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

CHECKOUT = Path(__file__).resolve().parents[2]
DAGS = CHECKOUT / "dags"
sys.path.insert(0, str(CHECKOUT / "scripts"))
sys.path.insert(0, str(DAGS))


@pytest.fixture(autouse=True)
def _airflow_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path_factory.getbasetemp() / "airflow_home_unit"
    home.mkdir(exist_ok=True)
    monkeypatch.setenv("AIRFLOW_HOME", str(home))
    monkeypatch.setenv("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    monkeypatch.setenv("AIRFLOW__CORE__DAGS_FOLDER", str(DAGS))
    monkeypatch.delenv("AIRFLOW_CONN_SLACK_WEBHOOK", raising=False)


def _run_probe(code: str, home: Path, extra: dict[str, str] | None = None) -> Any:
    """Run ``code`` in a fresh interpreter with the project's Airflow env; return its JSON.

    The code must print one JSON document as its last stdout line.
    """
    from airflow_env import airflow_env

    env = airflow_env(home, extra)
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=str(home),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if proc.returncode != 0:
        raise AssertionError(f"probe failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def run_probe() -> Any:
    """``run_probe(code, home, extra=None)``: see :func:`_run_probe`."""
    return _run_probe


class _Recorder:
    """A local stand-in for Slack's webhook endpoint: records every JSON body posted."""

    def __init__(self) -> None:
        import http.server
        import threading

        self.payloads: list[dict[str, Any]] = []
        recorder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                recorder.payloads.append({"path": self.path, **json.loads(body)})
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/services/T000/B000/XXX"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def connection_env(self) -> str:
        """``AIRFLOW_CONN_SLACK_WEBHOOK`` value: a slackwebhook connection to this server."""
        return json.dumps({"conn_type": "slackwebhook", "password": self.url})

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook() -> Any:
    rec = _Recorder()
    yield rec
    rec.close()
