"""scripts/airflow_services.py: the command line, without starting Airflow."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scripts import airflow_services
from scripts.airflow_services import AirflowServices


def test_cli_down_and_status_without_pid_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert airflow_services.main(["down", "--home", str(tmp_path)]) == 0
    assert "nothing to stop" in capsys.readouterr().out
    assert airflow_services.main(["status", "--home", str(tmp_path)]) == 1


def test_banner_shows_a_new_password_once_then_only_where_it_is(tmp_path: Path) -> None:
    svc = AirflowServices(profile="postgres-celery", home=tmp_path, port=18080)
    svc.new_passwords = {"admin": "Secret-1", "viewer": "Secret-2"}
    text = airflow_services.banner(svc)
    assert "user admin (Admin), password Secret-1  (shown once; stored 0600 in" in text
    assert "user viewer (Viewer), password Secret-2" in text
    assert "Tuning storage:  postgresql+psycopg2://postgres@127.0.0.1:5432/ctr_pipeline_optuna" in (
        text
    )
    svc.new_passwords = {}
    text = airflow_services.banner(svc)
    assert "Secret-1" not in text
    assert f"user admin (Admin), password in {tmp_path}/airflow_home/ctr-airflow-users.json" in (
        text
    )


@pytest.fixture
def restore_signals() -> Iterator[None]:
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def test_up_stops_on_ctrl_c_even_when_started_with_sigint_ignored(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    restore_signals: None,
) -> None:
    calls: list[str] = []

    def supervise(self: Any) -> None:
        calls.append("supervise")
        if calls.count("supervise") == 2:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C in the terminal

    def stop(self: Any, grace: float = 20.0) -> list[Any]:
        calls.append("stop")
        return []

    for name, fake in {
        "prepare": lambda self: {"migrated": False},
        "start": lambda self: calls.append("start"),
        "wait_healthy": lambda self, timeout=0: {},
        "supervise": supervise,
        "stop": stop,
    }.items():
        monkeypatch.setattr(AirflowServices, name, fake)
    monkeypatch.setattr(airflow_services.time, "sleep", lambda s: None)
    # As under `nohup` or `cmd &` in a script: Python keeps SIGINT ignored.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    assert airflow_services.main(["up", "--home", str(tmp_path), "--port", "18081"]) == 0
    assert calls == ["start", "supervise", "supervise", "stop"]
    out = capsys.readouterr().out
    assert "Press Ctrl-C to stop every service." in out
    assert out.rstrip().endswith("All services stopped.")


def test_up_stops_the_services_when_something_unexpected_breaks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, restore_signals: None
) -> None:
    stopped: list[bool] = []

    def supervise(self: Any) -> None:
        raise OSError("cannot fork")

    for name, fake in {
        "prepare": lambda self: {"migrated": False},
        "start": lambda self: None,
        "wait_healthy": lambda self, timeout=0: {},
        "supervise": supervise,
        "stop": lambda self, grace=20.0: stopped.append(True) or [],
    }.items():
        monkeypatch.setattr(AirflowServices, name, fake)
    with pytest.raises(OSError, match="cannot fork"):
        airflow_services.main(["up", "--home", str(tmp_path), "--port", "18082"])
    assert stopped == [True]
