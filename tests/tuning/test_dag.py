"""The training DAG with tuning under ``airflow dags test``: mapped workers, best trial.

One DAG run with ``tuning_trials=3, tuning_parallel=2`` on tiny data in a temporary
project home with its own AIRFLOW_HOME (SQLite), in a subprocess, as
tests/integration does it. ``dags test`` runs the two mapped workers one after the
other: the first runs the trials, the second finds the study done.
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from testkit.tuning import tuning_config

CHECKOUT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(CHECKOUT / "scripts"))

pytestmark = pytest.mark.slow

DRIVER = r"""
import json, os, sys
from airflow.dag_processing.dagbag import DagBag
dag = DagBag(dag_folder=sys.argv[1]).dags["training_pipeline"]
dr = dag.test(logical_date=None, run_conf=json.loads(sys.argv[2]))
print(json.dumps({"run_id": dr.run_id, "state": getattr(dr.state, "value", dr.state)}))
sys.stdout.flush()
os._exit(0)
"""
CONF = {
    "config_path": "config/tune.yaml",
    "tuning_trials": 3,
    "tuning_parallel": 2,
    "min_auc": 0.0,
    "min_accuracy": 0.0,
    "baseline_tolerance": None,
}


@pytest.fixture(scope="module")
def tuned_run(tmp_path_factory: pytest.TempPathFactory, tiny_features_dir: Path) -> dict[str, Any]:
    from airflow_env import airflow_env, ensure_db

    home = tmp_path_factory.mktemp("tuning_dag_home")
    shutil.copytree(CHECKOUT / "config", home / "config")
    (home / "config" / "tune.yaml").write_text(tuning_config(epochs=1))
    shutil.copytree(tiny_features_dir, home / "data" / "features" / "v1")
    env = airflow_env(home)
    for name in ("CTR_TRAINING_SCHEDULE", "CTR_TUNING_STORAGE", "AIRFLOW_CONN_SLACK_WEBHOOK"):
        env.pop(name, None)
    ensure_db(env)
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER, str(CHECKOUT / "dags"), json.dumps(CONF)],
        env=env,
        cwd="/",
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-5000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    db = Path(env["AIRFLOW_HOME"]) / "airflow.db"
    with sqlite3.connect(db) as con:
        tis = {
            (task, index): state
            for task, index, state in con.execute(
                "SELECT task_id, map_index, state FROM task_instance WHERE run_id = ?",
                (result["run_id"],),
            )
        }
        xcoms = {
            (task, key): json.loads(value)
            for task, key, value in con.execute(
                "SELECT task_id, key, value FROM xcom WHERE run_id = ? AND map_index = -1",
                (result["run_id"],),
            )
        }
    return {**result, "home": home, "tis": tis, "xcoms": xcoms, "log": proc.stdout}


def test_dag_with_tuning_runs_two_mapped_workers_and_registers_the_best_trial(
    tuned_run: dict[str, Any],
) -> None:
    assert tuned_run["state"] == "success", tuned_run["log"][-4000:]
    tis = tuned_run["tis"]
    assert tis[("tuning.create_study", -1)] == "success"
    assert tis[("tuning.tune_worker", 0)] == tis[("tuning.tune_worker", 1)] == "success"
    assert all(state == "success" for state in tis.values()), tis
    xcoms, home = tuned_run["xcoms"], tuned_run["home"]
    study = xcoms[("tuning.create_study", "study")]
    run_dir = xcoms[("train_model", "run_dir")]
    assert run_dir.startswith("experiments/runs/ctr_model_")
    assert xcoms[("evaluate_model", "metrics")]["test_auc"] > 0
    assert xcoms[("register_model", "model_version")] == "v1"
    info = json.loads((home / run_dir / "run.json").read_text())
    tuning = json.loads((home / "experiments" / "tuning" / study / "tuning.json").read_text())
    assert info["tuning"]["trial"] == tuning["best"]["number"]
    assert sum(t["state"] in ("COMPLETE", "PRUNED") for t in tuning["trials"]) == 3
    log = tuned_run["log"]
    assert "🧪 trial   0  COMPLETE" in log
    # dags test runs the mapped workers one after the other (in either order): the
    # second finds the study done.
    assert re.search(r"Tuning worker [01] stops after 0 trial\(s\): the study holds 3 fin", log)
    assert f"🔎 Tuned: best trial {tuning['best']['number']} of study {study}" in log
