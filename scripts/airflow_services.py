"""``make airflow``: start (``up``), stop (``down``) and inspect (``status``) the services.

Usage::

    python -m scripts.airflow_services up [--profile sqlite-local] [--port 8080] [--home DIR]
                                          [--detach]
    python -m scripts.airflow_services status [--home DIR]
    python -m scripts.airflow_services down [--home DIR]

``up`` seeds the default config and synthetic features into a new base directory (as
``make run`` does), creates and migrates the
metadata database (and, for ``postgres-celery``, Optuna's database and the FAB users),
starts the services, waits until Airflow reports each one healthy, prints where to log in
and then supervises them: a service that exits is restarted with backoff
(``services_supervisor``). Ctrl-C or SIGTERM stops everything, even when ``up`` was
started with SIGINT ignored (``nohup``, ``cmd &`` in a script). ``--detach`` runs the
same supervisor in the background and returns once the services are healthy.

The machinery is importable for tests and scripts: ``AirflowServices`` and friends.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import psutil

from scripts.airflow_env import airflow_env
from scripts.services_config import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    DEFAULT_PROFILE,
    PROFILES,
    REPO_ROOT,
    ServicesError,
    load_env_file,
    profile_path,
)
from scripts.services_db import TUNING_STORAGE_VAR, hide_password
from scripts.services_processes import (
    PID_FILE_NAME,
    TAG_VAR,
    owned_processes,
    read_pid_file,
    recorded_processes,
    stop_processes,
)
from scripts.services_stack import AirflowServices

__all__ = [
    "PID_FILE_NAME",
    "PROFILES",
    "TAG_VAR",
    "AirflowServices",
    "ServicesError",
    "load_env_file",
    "main",
    "owned_processes",
    "profile_path",
    "stop_processes",
]

HOME_HELP = "project base directory (CTR_PIPELINE_HOME); AIRFLOW_HOME is <home>/airflow_home"
READY_LINE = "Press Ctrl-C to stop every service."
DETACHED_LOG = "up.log"


def banner(svc: AirflowServices) -> str:
    """What ``make airflow`` prints once the services are healthy."""
    auth = svc.auth
    lines = [
        "",
        f"Airflow is up ({svc.profile}): {', '.join(s.name for s in svc.services)}",
        f"  UI and REST API: {svc.base_url}",
        f"  DAG:             {svc.base_url}/dags/training_pipeline",
    ]
    if auth.all_admins:
        lines.append("  Login:           none (SIMPLE_AUTH_MANAGER_ALL_ADMINS=True: all admin)")
    for user, role in auth.users().items():
        if user in svc.new_passwords:
            secret = f"password {svc.new_passwords[user]}  (shown once; stored 0600 in "
            secret += f"{auth.passwords_file})"
        elif auth.kind == "simple" and auth.password(user):
            secret = f"password {auth.password(user)}  (stored in {auth.passwords_file})"
        else:
            secret = f"password in {auth.passwords_file}"
        if not auth.all_admins:
            lines.append(f"  Login:           user {user} ({role}), {secret}")
    if svc.env.get(TUNING_STORAGE_VAR):
        lines.append(f"  Tuning storage:  {hide_password(svc.env[TUNING_STORAGE_VAR])}")
    lines += [
        f"  AIRFLOW_HOME:    {svc.airflow_home}",
        f"  Service logs:    {svc.log_dir} (restarts: supervisor.log)",
        "",
    ]
    return "\n".join(lines)


class _Stop(Exception):
    """Ctrl-C or SIGTERM: stop every service."""


def _on_signal(signum: int, _frame: Any) -> None:
    # Once: a second Ctrl-C while stopping must not interrupt the stopping.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise _Stop(signal.Signals(signum).name)


def cmd_up(args: argparse.Namespace) -> int:
    if args.detach:
        return _up_detached(args)
    # Python leaves SIGINT ignored when it starts with it ignored (nohup, `cmd &` in a
    # script), so Ctrl-C would do nothing: install the handler explicitly. Before the
    # services start, so they begin with the default disposition rather than SIG_IGN.
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    svc = AirflowServices(
        profile=args.profile,
        home=args.home,
        port=args.port,
        host=args.host,
        celery_workers=args.worker_queues or None,
        worker_env=[{"CTR_PIPELINE_HOME": str(h.resolve())} for h in args.worker_home] or None,
        triggerer=not args.no_triggerer,
        echo=True,
    )
    try:
        print(f"Preparing the metadata database ({svc.profile}) ...", flush=True)
        report = svc.prepare()
        if svc.seeded_config is not None:
            print(
                f"📝 No config in {svc.env['CTR_PIPELINE_HOME']}: copied the default to "
                f"{svc.seeded_config}",
                flush=True,
            )
        for line in svc.seeded_data:
            print(line, flush=True)
        if report.get("migrated"):
            print(f"🗄️  Migrated ({report['migrate_seconds']:.1f} s)", flush=True)
        print("Starting " + ", ".join(s.name for s in svc.service_specs()) + " ...", flush=True)
        svc.start()
        svc.wait_healthy(timeout=args.timeout)
        print(banner(svc), flush=True)
        print(READY_LINE, flush=True)
        while True:
            svc.supervise()
            time.sleep(1.0)
    except (_Stop, KeyboardInterrupt):
        print("\nStopping ...", flush=True)
        return _report_stop(svc.stop())
    except ServicesError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        _report_stop(svc.stop())
        return 1
    except BaseException:
        # Anything unexpected (a failed restart, a bug): never leave the services behind.
        print("\nerror: stopping every service after an unexpected error", file=sys.stderr)
        _report_stop(svc.stop())
        raise


def _up_detached(args: argparse.Namespace) -> int:
    """Run ``up`` in the background (its own session) and return once it is healthy."""
    home = Path(airflow_env(args.home)["AIRFLOW_HOME"])
    log_dir = home / "logs" / "services"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / DETACHED_LOG
    argv = [a for a in args.argv if a != "--detach"]
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # may hold passwords
    with os.fdopen(fd, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "scripts.airflow_services", *argv],
            cwd=str(REPO_ROOT),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    deadline = time.monotonic() + args.timeout + 120
    shown = 0
    while True:
        text = log_path.read_text(errors="replace")
        print(text[shown:], end="", flush=True)
        shown = len(text)
        if READY_LINE in text:
            print(
                f"\nDetached: supervisor pid {proc.pid} keeps them running (log {log_path}).\n"
                f"Stop with: python -m scripts.airflow_services down"
                + (f" --home {args.home}" if args.home else "")
            )
            return 0
        if proc.poll() is not None:
            return proc.returncode or 1
        if time.monotonic() > deadline:
            proc.terminate()
            print(f"error: not healthy in time; see {log_path}", file=sys.stderr)
            return 1
        time.sleep(0.5)


def _report_stop(left: list[psutil.Process]) -> int:
    if left:
        print("error: still running: " + ", ".join(str(p.pid) for p in left), file=sys.stderr)
        return 1
    print("All services stopped.", flush=True)
    return 0


def _home_and_pid_file(args: argparse.Namespace) -> tuple[Path, dict[str, Any] | None]:
    home = Path(airflow_env(args.home)["AIRFLOW_HOME"])
    return home, read_pid_file(home / PID_FILE_NAME)


def cmd_down(args: argparse.Namespace) -> int:
    home, data = _home_and_pid_file(args)
    if not data:
        print(f"No services recorded in {home / PID_FILE_NAME}; nothing to stop.")
        return 0
    pids = [p["pid"] for p in data.get("processes", [])]
    supervisor = data.get("supervisor_pid")
    if supervisor and supervisor != os.getpid() and psutil.pid_exists(supervisor):
        # A supervising `up` owns them: let it shut down in order, then sweep.
        with contextlib.suppress(OSError):
            os.kill(supervisor, signal.SIGTERM)
        with contextlib.suppress(psutil.Error):
            psutil.Process(supervisor).wait(timeout=60)
    left = stop_processes(data["tag"], pids, since=data.get("started_at", 0.0))
    if not left:
        with contextlib.suppress(FileNotFoundError):
            (home / PID_FILE_NAME).unlink()
    return _report_stop(left)


def cmd_status(args: argparse.Namespace) -> int:
    home, data = _home_and_pid_file(args)
    if not data:
        print(f"Not running (no {home / PID_FILE_NAME}).")
        return 1
    live = {p.pid for p in recorded_processes(data)}
    for proc in data.get("processes", []):
        state = "running" if proc["pid"] in live else "stopped"
        restarts = f"  restarts {proc['restarts']}" if proc.get("restarts") else ""
        print(f"  {proc['name']:<16} pid {proc['pid']:<8} {state}{restarts}   log {proc['log']}")
    print(f"  {len(live)} processes of this deployment alive (tag {data['tag']})")
    try:
        with urllib.request.urlopen(f"{data['url']}/api/v2/monitor/health", timeout=5) as r:
            health = json.loads(r.read())
        print(
            f"  {data['url']}: "
            + ", ".join(f"{k}={(v or {}).get('status')}" for k, v in health.items())
        )
    except (urllib.error.URLError, OSError, ValueError) as exc:
        print(f"  {data['url']}: API server not answering ({exc})")
        return 1
    return 0 if live else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.airflow_services",
        description="Start, stop and inspect this project's Airflow services.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start and supervise the services (Ctrl-C stops them)")
    up.add_argument(
        "--profile",
        default=DEFAULT_PROFILE,
        help=f"{' | '.join(PROFILES)} | path of an env file (default %(default)s)",
    )
    up.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("CTR_AIRFLOW_PORT", DEFAULT_PORT)),
        help="API server / UI port (default %(default)s, env CTR_AIRFLOW_PORT)",
    )
    up.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help="API server bind address (default %(default)s; 0.0.0.0 exposes it)",
    )
    up.add_argument("--home", type=Path, default=None, help=HOME_HELP)
    up.add_argument(
        "--worker-queues",
        action="append",
        default=[],
        metavar="Q1,Q2",
        help="postgres-celery: start one celery worker per option on these queues",
    )
    up.add_argument(
        "--worker-home",
        action="append",
        type=Path,
        default=[],
        metavar="DIR",
        help="postgres-celery: the CTR_PIPELINE_HOME of the Nth worker (the Nth option), as "
        "on another host; give the workers a config with bucket URLs (docs/deployment.md)",
    )
    up.add_argument("--no-triggerer", action="store_true", help="do not start the triggerer")
    up.add_argument(
        "--detach",
        action="store_true",
        help="supervise in the background; return once healthy (stop with down)",
    )
    up.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the services")
    up.set_defaults(func=cmd_up)
    for name, func, help_ in (
        ("down", cmd_down, "stop the services recorded in the pid file"),
        ("status", cmd_status, "show the recorded services and health"),
    ):
        p = sub.add_parser(name, help=help_)
        p.add_argument("--home", type=Path, default=None, help=HOME_HELP)
        p.set_defaults(func=func)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    try:
        return int(args.func(args))
    except ServicesError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
