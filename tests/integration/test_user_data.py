"""A user's own data under Airflow: imported data trained with only `config_path`, the
feature DAG never touching files it did not write, and a user's own feature DAG announcing
the Asset that schedules training (issue 9)."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

CHECKOUT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow

USER_DAG = """
from airflow.sdk import Asset, dag, task

CLICKS = Asset(name="ctr_features", uri={uri!r})


@dag(schedule=None, catchup=False)
def my_clicks_export():
    @task(outlets=[CLICKS])
    def export_clicks() -> None:
        print("exported")

    export_clicks()


my_clicks_export()
"""


def _digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _csv(path: Path, rows: int, seed: int) -> None:
    """Clicks a user might export: a header, a timestamp, ids and a price, some missing."""
    rng = np.random.default_rng(seed)
    lines = ["ts,clicked,user,item,device,price"]
    for i in range(rows):
        user, item = int(rng.integers(0, 300)), int(rng.integers(0, 200))
        device = ("ios", "android", "web")[int(rng.integers(0, 3))]
        price = "" if i % 17 == 0 else f"{rng.gamma(2.0, 10.0):.2f}"
        logit = 0.8 * (device == "ios") + 0.02 * (user % 7) - 1.2 + 0.5 * (item % 3 == 0)
        clicked = int(rng.random() < 1 / (1 + np.exp(-logit)))
        lines.append(f"{1_700_000_000 + i},{clicked},u{user},{item},{device},{price}")
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def user_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from scripts.airflow_env import airflow_env, ensure_db

    home = tmp_path_factory.mktemp("user_home")
    shutil.copytree(CHECKOUT / "config", home / "config")
    _csv(home / "clicks.csv", 6000, seed=3)
    env = airflow_env(home)
    env.pop("CTR_TRAINING_SCHEDULE", None)
    ensure_db(env)
    yield {"home": home, "env": env}


def _run(
    cmd: list[str], env: dict[str, str], timeout: int = 600
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cmd, env=env, cwd="/", capture_output=True, text=True, timeout=timeout, check=False
    )


def test_make_run_on_imported_data_needs_only_config_path(user_home: dict[str, Any]) -> None:
    home, env = user_home["home"], user_home["env"]
    imported = _run(
        [
            sys.executable, "-m", "ml.cli", "data", "import", str(home / "clicks.csv"),
            "--time-column", "ts", "--out", "data/features/mine",
            "--write-config", "config/mine.yaml",
        ],
        env,
    )  # fmt: skip
    assert imported.returncode == 0, imported.stderr
    # A short training for the test; everything else is the written config.
    config = home / "config" / "mine.yaml"
    text = config.read_text()
    assert "data/features/mine" in text
    config.write_text(text.replace("epochs: 100", "epochs: 3"))
    before = _digests(home / "data" / "features" / "mine")
    conf = {"config_path": "config/mine.yaml", "baseline_tolerance": None, "min_auc": 0.5}
    made = _run(
        [
            sys.executable,
            "-m",
            "scripts.run_pipeline",
            "--home",
            str(home),
            "--conf",
            json.dumps(conf),
        ],
        env,
    )
    out = made.stdout
    assert made.returncode == 0, out[-4000:] + made.stderr[-2000:]
    assert "[validate_features] ✅ train data: data/features/mine/train/data.parquet" in out
    assert "Registered: v1" in out
    # Nothing generated or copied: no default features, the user's files unchanged.
    assert not (home / "data" / "features" / "v1").exists()
    assert _digests(home / "data" / "features" / "mine") == before


def test_feature_pipeline_refuses_a_directory_of_user_files(user_home: dict[str, Any]) -> None:
    home, env = user_home["home"], user_home["env"]
    target = home / "data" / "features" / "v1"
    (target / "train").mkdir(parents=True)
    shutil.copy(home / "clicks.csv", target / "train" / "clicks.csv")
    (target / "NOTES.md").write_text("our own export\n")
    before = _digests(target)
    airflow = str(Path(sys.executable).parent / "airflow")
    proc = _run([airflow, "dags", "test", "feature_engineering_pipeline"], env)
    text = proc.stdout + proc.stderr
    assert "holds data that was not written by ctr-pipeline data generate" in text
    assert "Feature Pipeline FAILED at generate_features" in text
    assert _digests(target) == before
    shutil.rmtree(target)


def test_a_users_own_feature_dag_announces_the_training_asset(tmp_path: Path) -> None:
    from scripts.airflow_env import airflow_env, ensure_db

    # A metadata database of its own: an Asset's name and URI are registered together.
    home = tmp_path / "home"
    shutil.copytree(CHECKOUT / "config", home / "config")
    uri = (home / "data" / "features" / "mine").as_uri()
    dags = tmp_path / "dags"
    shutil.copytree(CHECKOUT / "dags", dags)
    (dags / "my_clicks_export.py").write_text(USER_DAG.format(uri=uri))
    env = airflow_env(
        home,
        {
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "CTR_FEATURES_ASSET_URI": uri,
            "CTR_TRAINING_SCHEDULE": "asset",
        },
    )
    ensure_db(env)
    airflow = str(Path(sys.executable).parent / "airflow")
    assert _run([airflow, "dags", "reserialize"], env).returncode == 0
    proc = _run([airflow, "dags", "test", "my_clicks_export"], env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    with sqlite3.connect(Path(env["AIRFLOW_HOME"]) / "airflow.db") as con:
        events = con.execute(
            "SELECT count(*) FROM asset_event e JOIN asset a ON a.id = e.asset_id "
            "WHERE a.uri = ? AND a.name = 'ctr_features'",
            (uri,),
        ).fetchone()[0]
        scheduled = con.execute(
            "SELECT count(*) FROM dag_schedule_asset_reference r JOIN asset a ON a.id = r.asset_id "
            "WHERE r.dag_id = 'training_pipeline' AND a.uri = ?",
            (uri,),
        ).fetchone()[0]
    assert events == 1  # the user's task announced the Asset ...
    assert scheduled == 1  # ... that training_pipeline is scheduled on
