"""scripts/airflow_cli.py: several Airflow CLI commands in one interpreter."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from scripts import airflow_cli, airflow_env


def test_json_in_output_skips_log_lines_before_the_document() -> None:
    text = (
        "2026-11-29T18:34:17Z [warning  ] Could not import graphviz.\n"
        '[{"run_id": "r1", "state": "success"}]\n'
    )
    assert airflow_cli.json_in_output(text) == [{"run_id": "r1", "state": "success"}]
    assert airflow_cli.json_in_output("no json here\n[not json") is None


@pytest.mark.slow
def test_commands_run_in_one_process_and_report_each_status(tmp_path: Path) -> None:
    env = airflow_env.airflow_env(tmp_path)
    Path(env["AIRFLOW_HOME"]).mkdir(parents=True)
    report = tmp_path / "report.json"
    request = {
        "report": str(report),
        "commands": [
            {"argv": ["version"], "capture": True},
            {"argv": ["no-such-command"], "capture": True},
            {"argv": ["config", "get-value", "core", "load_examples"], "capture": True},
        ],
    }
    proc = airflow_env.run_airflow_cli(
        env, request, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 2, out  # the status of the first command that failed
    data = json.loads(report.read_text())
    assert [c["exit_status"] for c in data["commands"]] == [0, 2, 0]
    import airflow

    assert data["commands"][0]["output"].strip().endswith(airflow.__version__)
    assert data["commands"][2]["output"].strip().splitlines()[-1] == "False"
    assert data["migrated"] is False  # not asked to
