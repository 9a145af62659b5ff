"""``make run`` against a PostgreSQL metadata database (``--profile postgres-celery``).

``make run`` learns the run's state only from Airflow's own command line (the exit
status of ``airflow dags test``, ``dags list-runs`` and ``tasks states-for-dag-run`` as
JSON) and from the pipeline's run summary, never from Airflow's tables, so it works on
any metadata database. Here on a fresh database of its own, migrated on first use; it runs
in a background thread (see conftest) beside the other service tests.
"""

from __future__ import annotations

from typing import Any

import pytest

from testkit import services as kit

pytestmark = [pytest.mark.services, pytest.mark.slow, pytest.mark.timeout(900)]


def test_make_run_on_a_postgresql_metadata_database(pg_make_run: Any) -> None:
    made = pg_make_run.result(timeout=800)
    proc, data = made["proc"], made["data"]
    out = proc.stdout
    assert proc.returncode == 0, out[-4000:] + proc.stderr[-4000:]
    assert "Airflow metadata database migrated (first use" in out
    assert "✅ DAG run manual__" in out and ": success" in out
    assert "[train_model] ✅ Training complete" in out
    assert data["state"] == "success"
    assert sorted(data["task_seconds"]) == sorted(kit.TASKS + kit.TUNING_TASKS)
    assert data["train_s"] > 0 and data["migrate_s"] > 0
    # Nothing went to a SQLite file: the run lives in PostgreSQL.
    assert not (made["home"] / "airflow_home" / "airflow.db").exists()
    print(f"make run on PostgreSQL: {made['seconds']:.1f} s (first use)")
