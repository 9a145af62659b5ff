"""``make run`` against a PostgreSQL metadata database (``--profile postgres-celery``).

``make run`` learns the run's state only from Airflow's own command line (the exit
status of ``airflow dags test``, ``dags list-runs`` and ``tasks states-for-dag-run`` as
JSON) and from the pipeline's run summary, never from Airflow's tables, so it works on
any metadata database. It ran once on the shared PostgreSQL stack's fresh database,
before the services started (see conftest), migrating it on first use.
"""

from __future__ import annotations

import pytest

from testkit import services as kit

pytestmark = [pytest.mark.services, pytest.mark.slow, pytest.mark.timeout(900)]


def test_make_run_on_a_postgresql_metadata_database(pg_stack: kit.Stack) -> None:
    proc, data = pg_stack.info["make_run"]
    out = proc.stdout
    assert proc.returncode == 0, out[-4000:] + proc.stderr[-4000:]
    assert "Airflow metadata database migrated (first use" in out
    assert "✅ DAG run manual__" in out and ": success" in out
    assert "[train_model] ✅ Training complete" in out
    assert data["state"] == "success"
    assert sorted(data["task_seconds"]) == sorted(kit.TASKS)
    assert data["train_s"] > 0 and data["migrate_s"] > 0
    # Nothing went to a SQLite file: the run lives in PostgreSQL, where the services see it.
    assert not (pg_stack.home / "airflow_home" / "airflow.db").exists()
    rest = pg_stack.rest
    assert rest is not None
    assert rest.run(kit.DAG_ID, data["run_id"])["state"] == "success"
    print(f"make run on PostgreSQL: {pg_stack.info['make_run_s']:.1f} s (first use)")
