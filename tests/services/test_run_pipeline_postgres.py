"""``make run`` against a PostgreSQL metadata database (``--profile postgres-celery``).

``make run`` learns the run's state only from Airflow's own command line (the exit
status of ``airflow dags test``, ``dags list-runs`` and ``tasks states-for-dag-run`` as
JSON) and from the pipeline's run summary, never from Airflow's tables, so it works on
any metadata database. Its own database (migrated on first use here), dropped after.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from testkit import services as kit

pytestmark = [pytest.mark.services, pytest.mark.slow, pytest.mark.timeout(900)]


def test_make_run_on_a_postgresql_metadata_database(tmp_path: Path) -> None:
    kit.require_backing_services(("PostgreSQL", "127.0.0.1", 5432))
    kit.prepare_home(tmp_path)
    env = kit.postgres_env(tmp_path, kit.new_token())
    summary = tmp_path / "summary.json"
    cmd = [sys.executable, "-m", "scripts.run_pipeline", "--home", str(tmp_path)]
    cmd += ["--profile", "postgres-celery", "--summary-json", str(summary)]
    cmd += ["--conf", json.dumps(kit.GOOD_CONF)]
    try:
        proc = subprocess.run(
            cmd,
            cwd=str(kit.REPO),
            env={**os.environ, **env, "PYTHONPATH": str(kit.REPO)},
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        out = proc.stdout
        assert proc.returncode == 0, out[-4000:] + proc.stderr[-4000:]
        assert "Airflow metadata database migrated (first use" in out
        assert "✅ DAG run manual__" in out and ": success" in out
        assert "[train_model] ✅ Training complete" in out
        data = json.loads(summary.read_text())
        assert data["state"] == "success"
        assert sorted(data["task_seconds"]) == sorted(kit.TASKS)
        assert data["train_s"] > 0 and data["migrate_s"] > 0
        # Nothing went to a SQLite file: the run lives in PostgreSQL.
        assert not (tmp_path / "airflow_home" / "airflow.db").exists()
    finally:
        if os.environ.get("CTR_KEEP_TEST_DB") != "1":
            kit.drop_postgres_resources(env)
