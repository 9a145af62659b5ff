"""scripts/services_config.py: profile files and ports."""

from __future__ import annotations

import socket
import textwrap
from pathlib import Path

import pytest

from scripts.services_config import (
    ServicesError,
    check_port_free,
    load_env_file,
    profile_path,
)


def test_load_env_file_expands_defaults_and_earlier_keys(tmp_path: Path) -> None:
    env_file = tmp_path / "x.env"
    env_file.write_text(
        textwrap.dedent(
            """\
            # comment
            export DB=${DB_NAME:-ctr_db}
            URL=postgresql://h/${DB}
            QUOTED="a b"
            HOME_DIR=$AIRFLOW_HOME/x
            """
        )
    )
    out = load_env_file(env_file, {"AIRFLOW_HOME": "/ah"})
    assert out == {
        "DB": "ctr_db",
        "URL": "postgresql://h/ctr_db",
        "QUOTED": "a b",
        "HOME_DIR": "/ah/x",
    }
    out = load_env_file(env_file, {"AIRFLOW_HOME": "/ah", "DB_NAME": "mine"})
    assert out["URL"] == "postgresql://h/mine"


def test_load_env_file_malformed_line_names_file_and_line(tmp_path: Path) -> None:
    env_file = tmp_path / "bad.env"
    env_file.write_text("A=1\nthis is not an assignment\n")
    with pytest.raises(ServicesError, match=r"bad\.env:2: expected KEY=VALUE"):
        load_env_file(env_file, {})


def test_load_env_file_undefined_variable_says_how_to_fix(tmp_path: Path) -> None:
    env_file = tmp_path / "u.env"
    env_file.write_text("A=${NOPE}/x\n")
    with pytest.raises(ServicesError, match=r"\$\{NOPE\} is not set; export NOPE"):
        load_env_file(env_file, {})


def test_profile_unknown_name_lists_choices() -> None:
    with pytest.raises(ServicesError, match="sqlite-local, postgres-celery"):
        profile_path("mysql-magic")


def test_profile_path_accepts_an_env_file(tmp_path: Path) -> None:
    assert profile_path("sqlite-local").name == "sqlite-local.env"
    custom = tmp_path / "mine.env"
    assert profile_path(str(custom)) == custom


def test_check_port_free_names_taken_port_and_setting() -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        with pytest.raises(ServicesError, match=rf"port {port} \(API server\).*--port"):
            check_port_free("127.0.0.1", port, "API server", "--port")
