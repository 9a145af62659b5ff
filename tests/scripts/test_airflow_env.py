"""scripts/airflow_env.py: the project's Airflow environment, config seeding, --shell."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ml import paths
from scripts import airflow_env


def test_airflow_env_points_everything_at_the_home(tmp_path: Path) -> None:
    env = airflow_env.airflow_env(tmp_path, {"AIRFLOW__CORE__EXECUTOR": "LocalExecutor"})
    assert env["CTR_PIPELINE_HOME"] == str(tmp_path)
    assert env["AIRFLOW_HOME"] == str(tmp_path / "airflow_home")
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == str(airflow_env.DAGS_DIR)
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == (
        f"sqlite:///{tmp_path / 'airflow_home' / 'airflow.db'}"
    )
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert env["PYTHONPATH"].split(":")[:2] == [str(airflow_env.REPO), str(airflow_env.DAGS_DIR)]
    assert airflow_env.sqlite_path(env) == tmp_path / "airflow_home" / "airflow.db"
    assert (
        airflow_env.sqlite_path({"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql://x"}) is None
    )


def test_shell_output_exports_the_settings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert airflow_env.main(["--home", str(tmp_path), "--shell"]) == 0
    out = capsys.readouterr().out
    assert f"export AIRFLOW_HOME={tmp_path / 'airflow_home'}" in out
    assert "export AIRFLOW__CORE__LOAD_EXAMPLES=False" in out


def test_shell_by_path_works_from_any_directory(tmp_path: Path) -> None:
    # The form the docs use: `source <(.venv/bin/python scripts/airflow_env.py --shell)`.
    proc = subprocess.run(
        [sys.executable, str(airflow_env.REPO / "scripts" / "airflow_env.py"), "--shell",
         "--home", str(tmp_path)],
        cwd="/",
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert f"export CTR_PIPELINE_HOME={tmp_path}" in proc.stdout.splitlines()


def test_json_output_is_the_settings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert airflow_env.main(["--home", str(tmp_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == airflow_env.airflow_settings(tmp_path)


def test_seed_default_config_copies_once_into_a_new_home(tmp_path: Path) -> None:
    target = tmp_path / paths.DEFAULT_CONFIG
    assert airflow_env.seed_default_config(tmp_path) == target
    assert target.read_bytes() == (airflow_env.REPO / paths.DEFAULT_CONFIG).read_bytes()
    target.write_text("# edited by the user\n")
    assert airflow_env.seed_default_config(tmp_path) is None  # never overwrites
    assert target.read_text() == "# edited by the user\n"
    # The checkout itself is a base directory with its config: nothing to copy.
    assert airflow_env.seed_default_config(airflow_env.REPO) is None


def test_seed_default_features_generates_once_into_a_new_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 28.6: `make airflow --home NEW` seeded the config but no data."""
    monkeypatch.setenv(paths.ENV_VAR, str(airflow_env.REPO))  # the caller's own home
    airflow_env.seed_default_config(tmp_path)
    lines = airflow_env.seed_default_features(tmp_path, rows=2000)
    features = tmp_path / "data" / "features" / "v1"
    assert lines and lines[0].startswith("📦 No features at ")
    assert all((features / split / "data.parquet").is_file() for split in ("train", "val", "test"))
    assert airflow_env.seed_default_features(tmp_path, rows=2000) == []  # present: left alone
    assert os.environ[paths.ENV_VAR] == str(airflow_env.REPO)  # restored


def test_seed_default_features_never_touches_a_users_features(tmp_path: Path) -> None:
    config = tmp_path / paths.DEFAULT_CONFIG
    airflow_env.seed_default_config(tmp_path)
    text = config.read_text()
    config.write_text(text.replace("data/features/v1", "data/mine"))
    assert airflow_env.seed_default_features(tmp_path, rows=2000) == []
    assert not (tmp_path / "data").exists()


def test_seed_default_features_leaves_features_in_a_bucket_alone(tmp_path: Path) -> None:
    config = tmp_path / paths.DEFAULT_CONFIG
    airflow_env.seed_default_config(tmp_path)
    config.write_text(config.read_text().replace("data/features/v1", "s3://bucket/features/v1"))
    assert airflow_env.seed_default_features(tmp_path, rows=2000) == []  # no network either
    assert not (tmp_path / "data").exists()


def test_db_check_stamp_notices_another_airflow_database_or_file(tmp_path: Path) -> None:
    env = airflow_env.airflow_env(tmp_path)
    home = Path(env["AIRFLOW_HOME"])
    home.mkdir()
    db = home / "airflow.db"
    db.write_bytes(b"sqlite")
    assert not airflow_env.db_checked(env)  # never checked
    airflow_env.mark_db_checked(env, 2.5)
    assert airflow_env.db_checked(env)
    stamp = json.loads((home / airflow_env.MIGRATE_STAMP).read_text())
    assert stamp["seconds"] == 2.5
    assert not set(stamp) & {"revision", "version_num"}  # nothing read from the database
    # Migrated by another Airflow version.
    (home / airflow_env.MIGRATE_STAMP).write_text(json.dumps({**stamp, "airflow_version": "2.9"}))
    assert not airflow_env.db_checked(env)
    airflow_env.mark_db_checked(env)
    # Another database file put in its place, or the file deleted.
    other = home / "other.db"
    other.write_bytes(b"sqlite")
    other.replace(db)
    assert not airflow_env.db_checked(env)
    airflow_env.mark_db_checked(env)
    db.unlink()
    assert not airflow_env.db_checked(env)
    # Another connection.
    airflow_env.mark_db_checked(env)
    other_conn = {**env, "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql://h/db"}
    assert not airflow_env.db_checked(other_conn)
    airflow_env.forget_db_check(env)
    assert not (home / airflow_env.MIGRATE_STAMP).exists()


def test_ensure_db_skips_airflow_entirely_once_checked(tmp_path: Path) -> None:
    env = airflow_env.airflow_env(tmp_path)
    Path(env["AIRFLOW_HOME"]).mkdir()
    airflow_env.mark_db_checked(env)
    assert airflow_env.ensure_db(env) == {"migrated": False, "migrate_seconds": 0.0, "commands": []}
    assert not (Path(env["AIRFLOW_HOME"]) / "logs" / "db-migrate.log").exists()


def test_a_failed_command_is_named_without_its_password() -> None:
    commands = [
        {"argv": ["users", "create", "-u", "admin", "--password=s3cret"], "capture": True},
        {"argv": ["users", "reset-password", "-u", "viewer", "-p", "s3cret"], "capture": True},
    ]
    first_failed = {"commands": [{"exit_status": 2}, {"exit_status": 2}]}
    what = airflow_env._failed_command(commands, first_failed, 2)
    assert what == "`airflow users create -u admin --password=***` failed (exit 2)"
    second_failed = {"commands": [{"exit_status": 0}, {"exit_status": 1}]}
    what = airflow_env._failed_command(commands, second_failed, 1)
    assert what == "`airflow users reset-password -u viewer -p ***` failed (exit 1)"
    assert "s3cret" not in what
    # Nothing in the report (the process died before writing it): the exit status alone.
    assert airflow_env._failed_command(commands, {}, -9) == "an Airflow command failed (exit -9)"
