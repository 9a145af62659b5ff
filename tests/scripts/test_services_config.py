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
    winning_setting,
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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("profile", ["sqlite-local", "postgres-celery"])
def test_winning_setting_names_the_variable_the_profile_reads(profile: str) -> None:
    """Issue 28.5: the advice named a variable the profile file overrides."""
    key = "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"
    assert winning_setting(profile_path(profile), key).startswith("CTR_WORKER_LOG_PORT ")
    trigger = winning_setting(profile_path(profile), "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT")
    assert trigger.startswith("CTR_TRIGGER_LOG_PORT ")


def test_winning_setting_for_a_literal_or_absent_key(tmp_path: Path) -> None:
    env_file = tmp_path / "mine.env"
    env_file.write_text("# ports\nAIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=8793\n")
    key = "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"
    assert winning_setting(env_file, key) == (
        f"{key} in {env_file}:2 (the profile overrides the environment)"
    )
    other = "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT"
    assert winning_setting(env_file, other) == other  # not in the file: the environment wins
    assert winning_setting(profile_path("sqlite-local"), key, {key: "1"}) == key


def test_following_the_port_conflict_advice_fixes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from scripts.services_stack import AirflowServices

    monkeypatch.setenv("CTR_TRIGGER_LOG_PORT", str(_free_port()))
    with socket.socket() as held:
        held.bind(("0.0.0.0", 0))
        held.listen()
        taken = held.getsockname()[1]
        monkeypatch.setenv("CTR_WORKER_LOG_PORT", str(taken))
        # The variable the old message named: the profile overrides it, nothing changes.
        monkeypatch.setenv("AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT", str(_free_port()))
        svc = AirflowServices(home=tmp_path, port=_free_port())
        with pytest.raises(ServicesError, match=rf"port {taken} \(task log server\)") as info:
            svc.check_ports()
        assert "choose another port with CTR_WORKER_LOG_PORT" in str(info.value)
        monkeypatch.setenv("CTR_WORKER_LOG_PORT", str(_free_port()))  # the advice, followed
        AirflowServices(home=tmp_path, port=_free_port()).check_ports()
