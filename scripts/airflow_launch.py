"""Run one Airflow service with its log server bound to ``$CTR_LOG_SERVER_HOST``.

``make airflow`` starts every service as ``python -m scripts.airflow_launch <airflow
args>``: exactly ``python -m airflow <args>``, except that the task log server (started by
the scheduler under the LocalExecutor, or by a Celery worker) and the triggerer's log
server bind to ``$CTR_LOG_SERVER_HOST`` instead of every interface. Airflow 3.3 has no
setting for that address (``airflow.utils.serve_logs.core`` binds ``""``: all of them);
its ports are ``[logging] worker_log_server_port`` / ``trigger_log_server_port``.

The dev profile (``deploy/sqlite-local.env``) sets ``CTR_LOG_SERVER_HOST=127.0.0.1``: on
one host the API server reads the log files directly or through the loopback, so nothing
outside needs the log servers. Unset (or ``0.0.0.0``), Airflow's own behaviour is kept,
as a Celery deployment with workers on other hosts needs.

With a loopback address, :func:`log_server_env` also makes the services record their host
as ``localhost`` (``[core] hostname_callable``), because the API server fetches a running
task's log from ``http://<that host name>:<port>``, which must reach the loopback.
"""

from __future__ import annotations

import ipaddress
import os
import sys
from collections.abc import Mapping

HOST_VAR = "CTR_LOG_SERVER_HOST"
HOSTNAME_CALLABLE = "AIRFLOW__CORE__HOSTNAME_CALLABLE"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def loopback_hostname() -> str:
    """``[core] hostname_callable`` for a deployment whose log servers bind the loopback."""
    return "localhost"


def log_server_env(env: Mapping[str, str]) -> dict[str, str]:
    """Settings to add to ``env`` so that log links reach a loopback-bound log server."""
    host = env.get(HOST_VAR, "").strip()
    if is_loopback(host) and not env.get(HOSTNAME_CALLABLE):
        return {HOSTNAME_CALLABLE: f"{__name__}.loopback_hostname"}
    return {}


def serve_logs(port: int | None = None) -> None:
    """Airflow's ``serve_logs`` bound to ``$CTR_LOG_SERVER_HOST`` (a module-level function,
    so a ``spawn``-started log server process finds it too)."""
    import uvicorn
    from airflow.configuration import conf

    if sys.platform != "darwin":
        from setproctitle import setproctitle

        setproctitle("airflow serve-logs")
    port = port or conf.getint("logging", "WORKER_LOG_SERVER_PORT")
    uvicorn.run(
        "airflow.utils.serve_logs.log_server:get_app",
        host=os.environ.get(HOST_VAR, "").strip(),
        port=port,
        log_level=conf.get("logging", "uvicorn_logging_level", fallback="info").lower(),
        log_config=None,
        access_log=False,
    )


def install() -> bool:
    """Put :func:`serve_logs` where Airflow's services import it from; False when
    ``$CTR_LOG_SERVER_HOST`` is unset or a wildcard (Airflow's own is kept)."""
    if os.environ.get(HOST_VAR, "").strip() in ("", "0.0.0.0", "::"):
        return False
    import airflow.utils.serve_logs as package
    import airflow.utils.serve_logs.core as core

    package.serve_logs = serve_logs
    core.serve_logs = serve_logs
    return True


def main() -> None:
    install()
    from airflow.__main__ import main as airflow_main

    sys.argv[0] = "airflow"
    airflow_main()  # type: ignore[no-untyped-call]


if __name__ == "__main__":
    main()
