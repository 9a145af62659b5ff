"""Airflow test support: a training config for tiny data and a Slack webhook stand-in."""

from __future__ import annotations

import http.server
import json
import threading
from pathlib import Path
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
training: {{learning_rate: 0.01, weight_decay: 0.0, monitor: val_auc, batch_size: 512,
           epochs: {epochs}, patience: 5, device: cpu, num_threads: 1}}
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


DAGBAG_PROBE = r"""
import json, time
from airflow.dag_processing.dagbag import DagBag
from airflow.sdk.exceptions import ParamValidationError
from airflow.serialization.serialized_objects import DagSerialization

bag = DagBag(dag_folder=%(dags)r)
out = {"import_errors": {k: str(v) for k, v in bag.import_errors.items()},
       "dag_ids": sorted(bag.dags),
       "parse_s": {s.file: s.duration.total_seconds() for s in bag.dagbag_stats}}
dags = {}
for dag_id, dag in bag.dags.items():
    info = {"tasks": {}, "params": {k: dag.params[k] for k in dag.params},
            "timetable": type(dag.timetable).__name__,
            "schedule": dag.schedule if isinstance(dag.schedule, (str, type(None))) else "assets",
            "catchup": dag.catchup, "max_active_runs": dag.max_active_runs,
            "assets": [a.uri for a in dag.schedule] if isinstance(dag.schedule, list) else [],
            "bad_params": {}}
    for t in dag.tasks:
        info["tasks"][t.task_id] = {
            "downstream": sorted(t.downstream_task_ids), "retries": t.retries,
            "retry_delay_s": t.retry_delay.total_seconds(),
            "timeout_s": t.execution_timeout.total_seconds() if t.execution_timeout else None,
            "has_failure_callback": bool(t.on_failure_callback),
            "trigger_rule": getattr(t.trigger_rule, "value", t.trigger_rule),
            "is_setup": t.is_setup, "is_teardown": t.is_teardown,
            "on_failure_fail_dagrun": getattr(t, "on_failure_fail_dagrun", False),
            "outlets": [getattr(o, "uri", None) for o in t.outlets]}
    # What create_dagrun does on every trigger (CLI, REST API, UI, dags test).
    sdag = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag))
    for conf in %(bad)s:
        try:
            sdag.params.deep_merge(conf).validate()
            info["bad_params"][json.dumps(conf)] = None
        except ParamValidationError as exc:
            info["bad_params"][json.dumps(conf)] = str(exc)
    dags[dag_id] = info
out["dags"] = dags
print(json.dumps(out, default=str))
"""

#: conf values every trigger path must reject before a run exists.
BAD_CONFS: list[dict[str, Any]] = [
    {"min_auc": 1.5},
    {"min_auc": -0.1},
    {"min_auc": "high"},
    {"min_accuracy": 2},
    {"max_auc_drop": -1},
    {"model_name": "bad name!"},
    {"model_name": ""},
    {"model_name": "-starts-with-dash"},
    {"auto_promote": "yes"},
    {"epochs": 0},
    {"epochs": 1.5},
    {"model_family": "xgboost"},
    {"config_path": ""},
    {"features_path": 3},
    {"max_psi": 0},
    {"drift_action": "ignore"},
    {"tuning_trials": -1},
    {"tuning_parallel": 0},
]


def parse_dags(
    run_probe: Any, dags: Path, home: Path, extra: dict[str, str] | None = None
) -> dict[str, Any]:
    """Load the DAG folder in a DagBag (in a subprocess via ``run_probe``) and describe
    every DAG: import errors, tasks, params, schedule, and which BAD_CONFS are rejected."""
    code = DAGBAG_PROBE % {"dags": str(dags), "bad": repr(BAD_CONFS)}
    result: dict[str, Any] = run_probe(code, home, extra)
    return result
