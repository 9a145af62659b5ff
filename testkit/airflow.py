"""Airflow test support: a training config for tiny data and a Slack webhook stand-in."""

from __future__ import annotations

import http.server
import json
import threading
from typing import Any


def small_config(epochs: int = 1) -> str:
    """A training config for tiny data: the default columns, a small dcnv2, CPU, 1 thread."""
    return f"""
experiment_name: ctr_model
seed: 3
features:
  label: click
  categorical: [user_id, item_id, advertiser_id, item_category, site_category,
                user_segment, device_type, ad_position, hour_of_day, day_of_week]
  numeric: [user_age, item_price, user_hist_ctr, ad_quality, session_depth]
model: {{name: dcnv2, embedding_dim: 4, hidden_units: [16], cross_layers: 1, dropout: 0.0}}
training: {{batch_size: 512, epochs: {epochs}, patience: 5, device: cpu, num_threads: 1}}
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
        """``AIRFLOW_CONN_SLACK_WEBHOOK`` value: a slackwebhook connection to this server."""
        return json.dumps({"conn_type": "slackwebhook", "password": self.url})

    def texts(self) -> list[str]:
        return [str(p.get("text", "")) for p in self.payloads]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
