"""A project home with tiny data, its own AIRFLOW_HOME, and a local Slack webhook server.

Airflow runs only in subprocesses here (``scripts/run_pipeline.py``, the ``airflow`` CLI,
or a small driver calling ``dag.test``), with the environment ``scripts/airflow_env.py``
builds for the temporary home, so nothing leaks into other tests or ``~/airflow``.
"""

from __future__ import annotations

import http.server
import json
import shutil
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHECKOUT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(CHECKOUT / "scripts"))

SMALL_CONFIG = """
experiment_name: ctr_model
seed: 3
features:
  label: click
  categorical: [user_id, item_id, advertiser_id, item_category, site_category,
                user_segment, device_type, ad_position, hour_of_day, day_of_week]
  numeric: [user_age, item_price, user_hist_ctr, ad_quality, session_depth]
model: {name: dcnv2, embedding_dim: 4, hidden_units: [16], cross_layers: 1, dropout: 0.0}
training: {batch_size: 512, epochs: 1, patience: 5, device: cpu, num_threads: 1}
"""


class WebhookRecorder:
    """A local stand-in for Slack's webhook endpoint: records every JSON body posted."""

    def __init__(self) -> None:
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
        return json.dumps({"conn_type": "slackwebhook", "password": self.url})

    def texts(self) -> list[str]:
        return [str(p.get("text", "")) for p in self.payloads]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


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
    from airflow_env import airflow_env

    home = tmp_path_factory.mktemp("pipeline_home")
    shutil.copytree(CHECKOUT / "config", home / "config")
    (home / "config" / "small.yaml").write_text(SMALL_CONFIG)
    shutil.copytree(tiny_features_dir, home / "data" / "features" / "v1")
    webhook = WebhookRecorder()
    env = airflow_env(home, {"AIRFLOW_CONN_SLACK_WEBHOOK": webhook.connection_env()})
    env.pop("CTR_TRAINING_SCHEDULE", None)
    yield PipelineHome(home, env, webhook)
    webhook.close()
