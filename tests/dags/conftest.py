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

from testkit.airflow import WebhookRecorder, parse_dags

CHECKOUT = Path(__file__).resolve().parents[2]
DAGS = CHECKOUT / "dags"
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
    from scripts.airflow_env import airflow_env

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


@pytest.fixture(scope="session")
def parsed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The DAG folder parsed once with the default environment."""
    return parse_dags(_run_probe, DAGS, tmp_path_factory.mktemp("dagbag"))


@pytest.fixture
def webhook() -> Any:
    rec = WebhookRecorder()
    yield rec
    rec.close()
