"""A project home with tiny data, its own AIRFLOW_HOME, and a local Slack webhook server.

Airflow runs only in subprocesses here (``python -m scripts.run_pipeline``, the ``airflow`` CLI,
or a small driver calling ``dag.test``), with the environment ``scripts/airflow_env.py``
builds for the temporary home, so nothing leaks into other tests or ``~/airflow``.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from testkit.airflow import WebhookRecorder, small_config

CHECKOUT = Path(__file__).resolve().parents[2]


@dataclass
class PipelineHome:
    home: Path
    env: dict[str, str]
    webhook: WebhookRecorder
    state: dict[str, Any] = field(default_factory=dict)


@pytest.fixture(scope="module")
def pipeline(
    tmp_path_factory: pytest.TempPathFactory, tiny_features_dir: Path
) -> Iterator[PipelineHome]:
    from scripts.airflow_env import airflow_env

    home = tmp_path_factory.mktemp("pipeline_home")
    shutil.copytree(CHECKOUT / "config", home / "config")
    (home / "config" / "small.yaml").write_text(small_config(epochs=1))
    shutil.copytree(tiny_features_dir, home / "data" / "features" / "v1")
    webhook = WebhookRecorder()
    env = airflow_env(
        home,
        {
            "AIRFLOW_CONN_SLACK_WEBHOOK": webhook.connection_env(),
            # Where failure messages link to (no server runs here: only the text is checked).
            "AIRFLOW__API__BASE_URL": "http://airflow.test:8080",
        },
    )
    env.pop("CTR_TRAINING_SCHEDULE", None)
    yield PipelineHome(home, env, webhook)
    webhook.close()
