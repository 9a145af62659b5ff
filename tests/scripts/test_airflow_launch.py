"""scripts/airflow_launch.py: Airflow's services with their log servers on one address."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from scripts import airflow_launch
from scripts.airflow_env import REPO, airflow_env


def test_install_replaces_the_serve_logs_the_services_import(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import airflow.utils.serve_logs as package
    import airflow.utils.serve_logs.core as core
    import uvicorn

    monkeypatch.setattr(package, "serve_logs", package.serve_logs)  # restored afterwards
    monkeypatch.setattr(core, "serve_logs", core.serve_logs)
    monkeypatch.setenv(airflow_launch.HOST_VAR, "127.0.0.1")
    assert airflow_launch.install()
    from airflow.utils.serve_logs import serve_logs  # what the triggerer/scheduler import

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: calls.append(kw))
    serve_logs(port=18794)
    assert calls and calls[0]["host"] == "127.0.0.1" and calls[0]["port"] == 18794
    assert core.serve_logs is airflow_launch.serve_logs


@pytest.mark.parametrize("host", ["", "0.0.0.0"])
def test_install_keeps_airflows_binding_without_an_address(
    monkeypatch: pytest.MonkeyPatch, host: str
) -> None:
    monkeypatch.setenv(airflow_launch.HOST_VAR, host)
    assert not airflow_launch.install()


def test_log_server_env_points_log_links_at_the_loopback() -> None:
    hostname = {"AIRFLOW__CORE__HOSTNAME_CALLABLE": "scripts.airflow_launch.loopback_hostname"}
    assert airflow_launch.log_server_env({"CTR_LOG_SERVER_HOST": "127.0.0.1"}) == hostname
    assert airflow_launch.log_server_env({"CTR_LOG_SERVER_HOST": "::1"}) == hostname
    assert airflow_launch.log_server_env({"CTR_LOG_SERVER_HOST": "0.0.0.0"}) == {}
    assert airflow_launch.log_server_env({}) == {}
    mine = {"CTR_LOG_SERVER_HOST": "127.0.0.1", "AIRFLOW__CORE__HOSTNAME_CALLABLE": "my.fn"}
    assert airflow_launch.log_server_env(mine) == {}  # the operator's own wins
    assert airflow_launch.loopback_hostname() == "localhost"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_real_log_server_listens_on_the_loopback_only(tmp_path: Path) -> None:
    """Started as the triggerer starts it, the log server's socket is 127.0.0.1:<port>."""
    port = _free_port()
    env = airflow_env(tmp_path, {airflow_launch.HOST_VAR: "127.0.0.1"})
    Path(env["AIRFLOW_HOME"]).mkdir(parents=True)
    code = (
        "from scripts import airflow_launch; airflow_launch.install()\n"
        "from airflow.utils.serve_logs import serve_logs\n"
        f"serve_logs(port={port})\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        listening: list[Any] = []
        deadline = time.monotonic() + 60
        while not listening and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
            listening = [
                c
                for c in psutil.Process(proc.pid).net_connections()
                if c.status == psutil.CONN_LISTEN
            ]
        assert proc.poll() is None, "the log server exited"
        assert [(c.laddr.ip, c.laddr.port) for c in listening] == [("127.0.0.1", port)]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
