"""Run the Airflow services for this project: ``make airflow`` (``up``), ``down``, ``status``.

Two profiles, each an env file under ``deploy/``:

- ``sqlite-local`` (default): SQLite metadata database in ``AIRFLOW_HOME``, LocalExecutor.
  Starts the API server (REST API + UI), scheduler, dag-processor and triggerer.
- ``postgres-celery``: PostgreSQL metadata database (created if missing), CeleryExecutor
  with a Redis broker and a PostgreSQL result backend; adds one or more
  ``airflow celery worker`` processes.

Every process is started as the leader of its own session (and process group) and
tagged with an environment variable (``CTR_AIRFLOW_SERVICES_TAG``) that its children
inherit. The pid file ``$AIRFLOW_HOME/ctr-airflow-services.json`` records them, so
``down`` can stop a detached or orphaned set. Stopping signals each group, then every
process still in one of our sessions or carrying the tag (a task runs in a group of its
own, and the ``airflow api_server`` child can outlive its group), escalates to SIGKILL
after a grace period and checks with psutil that nothing of ours is left.

Usage::

    python scripts/airflow_services.py up [--profile sqlite-local] [--port 8080] [--detach]
    python scripts/airflow_services.py status
    python scripts/airflow_services.py down

The same machinery is importable (``AirflowServices``) for the service tests.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

REPO_ROOT = Path(__file__).resolve().parent.parent
DEPLOY_DIR = REPO_ROOT / "deploy"
PROFILES = ("sqlite-local", "postgres-celery")
DEFAULT_PROFILE = "sqlite-local"
DEFAULT_PORT = 8080
DEFAULT_HOST = "127.0.0.1"
TAG_VAR = "CTR_AIRFLOW_SERVICES_TAG"
PID_FILE_NAME = "ctr-airflow-services.json"
PASSWORDS_FILE_NAME = "simple_auth_manager_passwords.json.generated"

HOME_HELP = "project base directory (CTR_PIPELINE_HOME); AIRFLOW_HOME is <home>/airflow_home"
_VAR_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


class ServicesError(RuntimeError):
    """The services cannot be configured, started or stopped; the message says how to fix it."""


# --- environment ----------------------------------------------------------------------


def load_env_file(path: Path, base: Mapping[str, str]) -> dict[str, str]:
    """Parse a profile file of ``KEY=VALUE`` lines (the subset of shell syntax it uses).

    Blank lines and ``#`` comments are skipped; an optional leading ``export`` is allowed;
    ``${VAR}``, ``$VAR`` and ``${VAR:-default}`` expand against ``base`` and the keys
    defined earlier in the file, so the file also works with ``set -a; . file``.

    Args:
        path: The env file.
        base: Variables visible to expansions (usually the process environment).

    Returns:
        The variables the file defines, expanded.

    Raises:
        ServicesError: The file is missing, a line is malformed or references an undefined
            variable without a default.
    """
    if not path.is_file():
        raise ServicesError(
            f"profile file {path} does not exist; choose one of {', '.join(PROFILES)} "
            f"or pass the path of a KEY=VALUE env file"
        )
    scope = dict(base)
    out: dict[str, str] = {}
    for lineno, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").strip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise ServicesError(f"{path}:{lineno}: expected KEY=VALUE, got {raw!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]

        def expand(m: re.Match[str], *, _lineno: int = lineno) -> str:
            name = m.group(1) or m.group(3)
            if scope.get(name):
                return scope[name]
            if m.group(2) is not None:
                return m.group(2)
            raise ServicesError(
                f"{path}:{_lineno}: ${{{name}}} is not set; export {name} or give a default "
                f"with ${{{name}:-value}}"
            )

        value = _VAR_RE.sub(expand, value)
        scope[key] = value
        out[key] = value
    return out


_AIRFLOW_ENV_MODULE: Any = None


def _airflow_env_module() -> Any:
    """``scripts/airflow_env.py``, the one place that says where this project's Airflow lives."""
    global _AIRFLOW_ENV_MODULE
    if _AIRFLOW_ENV_MODULE is None:
        module_path = Path(__file__).resolve().parent / "airflow_env.py"
        spec = importlib.util.spec_from_file_location("ctr_airflow_env", module_path)
        if spec is None or spec.loader is None or not module_path.is_file():
            raise ServicesError(f"{module_path} is missing; it provides airflow_env()")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _AIRFLOW_ENV_MODULE = module
    return _AIRFLOW_ENV_MODULE


def _project_airflow_env(home: Path | None) -> dict[str, str]:
    """os.environ plus AIRFLOW_HOME, DAGS_FOLDER, CTR_PIPELINE_HOME, PYTHONPATH for ``home``."""
    env: dict[str, str] = _airflow_env_module().airflow_env(home=home)
    return env


def profile_path(profile: str) -> Path:
    """``deploy/<profile>.env`` for a profile name, or the path itself for a custom file."""
    if profile in PROFILES:
        return DEPLOY_DIR / f"{profile}.env"
    path = Path(profile).expanduser()
    if path.suffix == ".env" or path.is_file():
        return path.resolve()
    raise ServicesError(
        f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)} or pass an env file"
    )


def _free_port_check(host: str, port: int, what: str, setting: str) -> None:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host if host not in ("", "0.0.0.0") else "0.0.0.0", port))
        except OSError as exc:
            raise ServicesError(
                f"port {port} ({what}) is already in use on {host}: {exc.strerror}; stop what "
                f"holds it (`python scripts/airflow_services.py down` if it is an earlier run) "
                f"or choose another port with {setting}"
            ) from None


# --- processes ------------------------------------------------------------------------


@dataclass
class Service:
    """One long-running Airflow process we started."""

    name: str
    argv: list[str]
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None


@dataclass
class AirflowServices:
    """Start, watch and stop one project-local Airflow deployment.

    Args:
        profile: ``sqlite-local``, ``postgres-celery`` or the path of an env file.
        home: The project base directory (``CTR_PIPELINE_HOME``: data/, experiments/,
            models/); ``AIRFLOW_HOME`` is ``<home>/airflow_home``. Default: the checkout
            or ``$CTR_PIPELINE_HOME``.
        port: API server (REST API + UI) port.
        host: API server bind address.
        extra_env: Variables applied last (tests: log-server ports, intervals, ...).
        celery_workers: Queue lists, one ``airflow celery worker`` per entry
            (postgres-celery only). Default: one worker on the default queue plus the
            train queue when ``CTR_TRAIN_QUEUE`` is set.
        triggerer: Start the triggerer (only deferrable tasks need it).
    """

    profile: str = DEFAULT_PROFILE
    home: Path | None = None
    port: int = DEFAULT_PORT
    host: str = DEFAULT_HOST
    extra_env: Mapping[str, str] = field(default_factory=dict)
    celery_workers: list[str] | None = None
    triggerer: bool = True
    services: list[Service] = field(default_factory=list)
    started_at: float = 0.0
    tag: str = field(default_factory=lambda: f"ctr-{secrets.token_hex(8)}")

    def __post_init__(self) -> None:
        self.env = self._build_env()
        self.airflow_home = Path(self.env["AIRFLOW_HOME"])
        self.pid_file = self.airflow_home / PID_FILE_NAME
        self.log_dir = self.airflow_home / "logs" / "services"

    # -- configuration

    def _build_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(_project_airflow_env(self.home))
        env["AIRFLOW__API__PORT"] = str(self.port)
        env["AIRFLOW__API__HOST"] = self.host
        env.update(load_env_file(profile_path(self.profile), {**env, **self.extra_env}))
        env.update(self.extra_env)
        # Task processes call the execution API on the API server: moving the port without
        # this makes every task fail with "Connection refused".
        if "AIRFLOW__CORE__EXECUTION_API_SERVER_URL" not in self.extra_env:
            env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] = f"{self.base_url}/execution/"
        env[TAG_VAR] = self.tag
        env.setdefault("PYTHONUNBUFFERED", "1")
        return env

    @property
    def base_url(self) -> str:
        host = "localhost" if self.host in ("0.0.0.0", "", "::") else self.host
        return f"http://{host}:{self.port}"

    @property
    def is_celery(self) -> bool:
        return self.env.get("AIRFLOW__CORE__EXECUTOR", "").endswith("CeleryExecutor")

    @property
    def passwords_file(self) -> Path:
        configured = self.env.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE")
        return Path(configured) if configured else self.airflow_home / PASSWORDS_FILE_NAME

    def _airflow(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "airflow", *args]

    def _service_specs(self) -> list[Service]:
        specs = [
            Service(
                "api-server",
                self._airflow("api-server", "--port", str(self.port), "--host", self.host),
            ),
            Service("scheduler", self._airflow("scheduler")),
            Service("dag-processor", self._airflow("dag-processor")),
        ]
        if self.triggerer:
            specs.append(Service("triggerer", self._airflow("triggerer")))
        if self.is_celery:
            default_queue = self.env.get("AIRFLOW__OPERATORS__DEFAULT_QUEUE", "default")
            queues = self.celery_workers
            if queues is None:
                train_queue = self.env.get("CTR_TRAIN_QUEUE")
                queues = [",".join(q for q in (default_queue, train_queue) if q)]
            for i, qs in enumerate(queues, start=1):
                argv = self._airflow(
                    "celery",
                    "worker",
                    "--queues",
                    qs,
                    "--celery-hostname",
                    f"ctr-worker{i}-{self.tag}@%h",
                )
                # One log server per host: the first worker serves the task logs.
                if i > 1:
                    argv.append("--skip-serve-logs")
                specs.append(Service(f"celery-worker-{i}", argv))
        return specs

    # -- lifecycle

    def check_ports(self) -> None:
        """Fail early, naming the setting, when a port this deployment needs is taken."""
        _free_port_check(self.host, self.port, "API server", "--port")
        _free_port_check(
            "0.0.0.0",
            int(self.env.get("AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT", "8793")),
            "task log server",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT",
        )
        if self.triggerer:
            _free_port_check(
                "0.0.0.0",
                int(self.env.get("AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT", "8794")),
                "triggerer log server",
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT",
            )

    def prepare(self) -> None:
        """Create the metadata database when needed and migrate it (idempotent)."""
        self.airflow_home.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        conn = self.env.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "")
        if conn.startswith("postgresql"):
            ensure_postgres_database(conn)
        elif conn.startswith("sqlite"):
            # Skips the ~4 s migration when this Airflow already migrated this file.
            try:
                _airflow_env_module().ensure_db(self.env)
            except Exception as exc:
                raise ServicesError(str(exc)) from None
            return
        log_path = self.log_dir / "db-migrate.log"
        with log_path.open("ab") as log:
            result = subprocess.run(
                self._airflow("db", "migrate"),
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                check=False,
                timeout=600,
            )
        if result.returncode != 0:
            raise ServicesError(
                f"`airflow db migrate` failed (exit {result.returncode}); see {log_path}:\n"
                + _tail(log_path)
            )

    def start(self) -> None:
        """Start every service in its own process group and record it in the pid file."""
        existing = read_pid_file(self.pid_file)
        if existing and _recorded_alive(existing):
            raise ServicesError(
                f"services from {self.pid_file} are still running (tag {existing['tag']}); "
                f"stop them first: python scripts/airflow_services.py down "
                f"--home {self.env['CTR_PIPELINE_HOME']}"
            )
        self.check_ports()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.services = self._service_specs()
        self.started_at = time.time()
        try:
            for svc in self.services:
                svc.log_path = self.log_dir / f"{svc.name}.log"
                log = svc.log_path.open("ab")
                try:
                    svc.proc = subprocess.Popen(
                        svc.argv,
                        env=self.env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL,
                        start_new_session=True,
                    )
                finally:
                    log.close()
                self._write_pid_file()
        except BaseException:
            self.stop()
            raise

    def _write_pid_file(self) -> None:
        data = {
            "tag": self.tag,
            "profile": self.profile,
            "url": self.base_url,
            "supervisor_pid": os.getpid(),
            "started_at": self.started_at,
            "processes": [
                {"name": s.name, "pid": s.proc.pid, "argv": s.argv, "log": str(s.log_path)}
                for s in self.services
                if s.proc is not None
            ],
        }
        tmp = self.pid_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2))
        tmp.replace(self.pid_file)

    def health(self) -> dict[str, Any] | None:
        """``/api/v2/monitor/health`` as a dict, or None while the API server is not up."""
        try:
            with urllib.request.urlopen(
                f"{self.base_url}/api/v2/monitor/health", timeout=5
            ) as resp:
                data: dict[str, Any] = json.loads(resp.read())
                return data
        except (urllib.error.URLError, OSError, ValueError):
            return None

    def required_components(self) -> list[str]:
        parts = ["metadatabase", "scheduler", "dag_processor"]
        if self.triggerer:
            parts.append("triggerer")
        return parts

    def wait_healthy(self, timeout: float = 180.0) -> dict[str, Any]:
        """Wait until every component we started reports healthy.

        Raises:
            ServicesError: A service exited, or ``timeout`` passed; the message carries the
                tail of the failing service's log.
        """
        deadline = time.monotonic() + timeout
        last: dict[str, Any] | None = None
        while time.monotonic() < deadline:
            self.raise_if_dead()
            last = self.health()
            if (
                last
                and all(
                    (last.get(c) or {}).get("status") == "healthy"
                    for c in self.required_components()
                )
                and self._celery_workers_ready()
            ):
                return last
            time.sleep(1.0)
        raise ServicesError(
            f"services not healthy after {timeout:.0f} s (last health: {last}); logs in "
            f"{self.log_dir}"
        )

    def _celery_workers_ready(self) -> bool:
        for svc in self.services:
            if svc.name.startswith("celery-worker") and svc.log_path is not None:
                text = svc.log_path.read_text(errors="replace") if svc.log_path.exists() else ""
                if " ready." not in text:
                    return False
        return True

    def raise_if_dead(self) -> None:
        """Raise naming the first service whose process has exited."""
        for svc in self.services:
            if svc.proc is not None and svc.proc.poll() is not None:
                raise ServicesError(
                    f"{svc.name} exited with code {svc.proc.returncode}; see {svc.log_path}:\n"
                    + (_tail(svc.log_path) if svc.log_path else "")
                )

    def admin_password(self, user: str = "admin") -> str | None:
        """The generated SimpleAuthManager password for ``user`` (None with all-admins)."""
        try:
            passwords: dict[str, str] = json.loads(self.passwords_file.read_text())
        except (OSError, ValueError):
            return None
        return passwords.get(user)

    def stop(self, grace: float = 20.0) -> list[psutil.Process]:
        """Stop every process we started (and their children); return any left over."""
        pids = [s.proc.pid for s in self.services if s.proc is not None]
        leftover = stop_processes(self.tag, pids, since=self.started_at, grace=grace)
        for svc in self.services:
            if svc.proc is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    svc.proc.wait(timeout=1)
        if not leftover:
            with contextlib.suppress(FileNotFoundError):
                self.pid_file.unlink()
        return leftover


def _tail(path: Path | None, lines: int = 30) -> str:
    if path is None or not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _recorded_processes(data: Mapping[str, Any]) -> list[psutil.Process]:
    pids = [p["pid"] for p in data.get("processes", [])]
    return owned_processes(data.get("tag", ""), pids, data.get("started_at", 0.0))


def _recorded_alive(data: Mapping[str, Any]) -> bool:
    return bool(_recorded_processes(data))


def read_pid_file(path: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data


def owned_processes(
    tag: str, sessions: Iterable[int] = (), since: float = 0.0
) -> list[psutil.Process]:
    """Every live process of one deployment.

    A process is ours when its environment carries ``CTR_AIRFLOW_SERVICES_TAG=<tag>``, or
    when it runs in the session of one of our services (each service is started as a
    session leader) and was created after them. Both are needed: Airflow renames its
    processes with setproctitle, which overwrites ``/proc/<pid>/environ``, and a task
    supervisor moves its task into a new process group (but not a new session).
    """
    needle = f"{TAG_VAR}={tag}".encode() if tag else None
    sids = set(sessions)
    found = []
    me = os.getpid()
    for proc in psutil.process_iter(["pid"]):
        if proc.pid == me:
            continue
        try:
            ours = False
            if sids and os.getsid(proc.pid) in sids and proc.create_time() >= since - 1.0:
                ours = True
            elif needle is not None:
                # Reading /proc directly is much faster than psutil's environ() parsing.
                with open(f"/proc/{proc.pid}/environ", "rb") as fh:
                    ours = needle + b"\0" in fh.read() + b"\0"
            if ours and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except (OSError, psutil.Error):
            continue
    return found


def stop_processes(
    tag: str, pids: Iterable[int], since: float = 0.0, grace: float = 20.0
) -> list[psutil.Process]:
    """SIGTERM our process groups and every process we own, SIGKILL what remains.

    Args:
        tag: The deployment's ``CTR_AIRFLOW_SERVICES_TAG`` value.
        pids: The service processes (each leads its own session and group).
        since: When they were started (``time.time()``); guards against pid reuse.
        grace: Seconds between SIGTERM and SIGKILL.

    Returns:
        Processes still alive afterwards (empty on success).
    """
    pids = list(pids)

    def collect() -> dict[int, psutil.Process]:
        found = {p.pid: p for p in owned_processes(tag, pids, since)}
        for pid in pids:
            with contextlib.suppress(psutil.Error):
                proc = psutil.Process(pid)
                if proc.create_time() >= since - 1.0:
                    found[pid] = proc
                    for child in proc.children(recursive=True):
                        found[child.pid] = child
        return found

    def signal_all(procs: Iterable[psutil.Process], sig: signal.Signals) -> None:
        for pid in pids:
            with contextlib.suppress(OSError):
                os.killpg(pid, sig)
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                proc.send_signal(sig)

    targets = collect()
    signal_all(targets.values(), signal.SIGTERM)
    _, alive = psutil.wait_procs(list(targets.values()), timeout=grace)
    # Processes spawned during shutdown (a task supervisor, a pool child) are ours too.
    late = [p for pid, p in collect().items() if pid not in targets]
    if alive or late:
        signal_all([*alive, *late], signal.SIGKILL)
        psutil.wait_procs([*alive, *late], timeout=5)
    deadline = time.monotonic() + 5
    while True:
        left = owned_processes(tag, pids, since)
        if not left or time.monotonic() > deadline:
            return left
        for proc in left:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        time.sleep(0.2)


# --- PostgreSQL -----------------------------------------------------------------------


def _pg_connect_args(sqlalchemy_url: str) -> tuple[dict[str, Any], str]:
    from sqlalchemy.engine import make_url

    url = make_url(sqlalchemy_url.removeprefix("db+"))
    if not url.database:
        raise ServicesError(f"the PostgreSQL URL {url!r} names no database")
    args = {
        "host": url.host or "127.0.0.1",
        "port": url.port or 5432,
        "user": url.username or "postgres",
        "password": url.password,
        "dbname": "postgres",
    }
    return {k: v for k, v in args.items() if v is not None}, url.database


def ensure_postgres_database(sqlalchemy_url: str) -> bool:
    """Create the database named in ``sqlalchemy_url`` if it does not exist.

    Returns:
        True when it was created.
    """
    import psycopg2
    from psycopg2 import sql

    args, name = _pg_connect_args(sqlalchemy_url)
    try:
        conn = psycopg2.connect(**args)
    except psycopg2.OperationalError as exc:
        raise ServicesError(
            f"cannot connect to PostgreSQL at {args['host']}:{args['port']} as {args['user']}: "
            f"{exc}; start PostgreSQL or fix AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"
        ) from None
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cur.fetchone():
                return False
            cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            return True
    finally:
        conn.close()


def drop_postgres_database(sqlalchemy_url: str) -> None:
    """Drop the database named in ``sqlalchemy_url`` (closing its connections)."""
    import psycopg2
    from psycopg2 import sql

    args, name = _pg_connect_args(sqlalchemy_url)
    conn = psycopg2.connect(**args)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
    finally:
        conn.close()


# --- command line ---------------------------------------------------------------------


def _banner(svc: AirflowServices) -> str:
    password = svc.admin_password()
    if svc.env.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "").lower() == "true":
        login = "no login (SIMPLE_AUTH_MANAGER_ALL_ADMINS=True: everyone is admin)"
    elif password:
        login = f"user admin, password {password}  (stored in {svc.passwords_file})"
    else:
        login = f"users and passwords in {svc.passwords_file}"
    names = ", ".join(s.name for s in svc.services)
    return "\n".join(
        [
            "",
            f"Airflow is up ({svc.profile}): {names}",
            f"  UI and REST API: {svc.base_url}",
            f"  DAG:             {svc.base_url}/dags/training_pipeline",
            f"  Login:           {login}",
            f"  AIRFLOW_HOME:    {svc.airflow_home}",
            f"  Service logs:    {svc.log_dir}",
            "",
        ]
    )


def cmd_up(args: argparse.Namespace) -> int:
    svc = AirflowServices(
        profile=args.profile,
        home=args.home,
        port=args.port,
        host=args.host,
        celery_workers=args.worker_queues or None,
        triggerer=not args.no_triggerer,
    )
    print(f"Migrating the metadata database ({svc.profile}) ...", flush=True)
    svc.prepare()
    print("Starting " + ", ".join(s.name for s in svc._service_specs()) + " ...", flush=True)
    stopping = False

    def on_signal(signum: int, _frame: Any) -> None:
        nonlocal stopping
        if stopping:
            return
        stopping = True
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        svc.start()
        svc.wait_healthy(timeout=args.timeout)
        print(_banner(svc), flush=True)
        if args.detach:
            home = f" --home {args.home}" if args.home else ""
            print(f"Detached. Stop with: python scripts/airflow_services.py down{home}")
            return 0
        print("Press Ctrl-C to stop every service.", flush=True)
        while True:
            svc.raise_if_dead()
            time.sleep(2)
    except KeyboardInterrupt:
        print("\nStopping ...", flush=True)
        return _report_stop(svc.stop())
    except ServicesError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        _report_stop(svc.stop())
        return 1


def _report_stop(left: list[psutil.Process]) -> int:
    if left:
        print("error: still running: " + ", ".join(str(p.pid) for p in left), file=sys.stderr)
        return 1
    print("All services stopped.")
    return 0


def _home_and_pid_file(args: argparse.Namespace) -> tuple[Path, dict[str, Any] | None]:
    home = Path(_project_airflow_env(args.home)["AIRFLOW_HOME"])
    return home, read_pid_file(home / PID_FILE_NAME)


def cmd_down(args: argparse.Namespace) -> int:
    home, data = _home_and_pid_file(args)
    if not data:
        print(f"No services recorded in {home / PID_FILE_NAME}; nothing to stop.")
        return 0
    pids = [p["pid"] for p in data.get("processes", [])]
    supervisor = data.get("supervisor_pid")
    if supervisor and supervisor != os.getpid() and psutil.pid_exists(supervisor):
        # A foreground `up` owns them: let it shut down in order, then sweep.
        with contextlib.suppress(OSError):
            os.kill(supervisor, signal.SIGTERM)
        with contextlib.suppress(psutil.Error):
            psutil.Process(supervisor).wait(timeout=30)
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
    live = {p.pid for p in _recorded_processes(data)}
    for proc in data.get("processes", []):
        state = "running" if proc["pid"] in live else "stopped"
        print(f"  {proc['name']:<16} pid {proc['pid']:<8} {state}   log {proc['log']}")
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
        prog="airflow_services.py",
        description="Start, stop and inspect this project's Airflow services.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start the services (foreground; Ctrl-C stops them)")
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
    up.add_argument(
        "--home",
        type=Path,
        default=None,
        help=HOME_HELP,
    )
    up.add_argument(
        "--worker-queues",
        action="append",
        default=[],
        metavar="Q1,Q2",
        help="postgres-celery: start one celery worker per option on these queues",
    )
    up.add_argument("--no-triggerer", action="store_true", help="do not start the triggerer")
    up.add_argument(
        "--detach",
        action="store_true",
        help="return once healthy and leave the services running (stop with down)",
    )
    up.add_argument(
        "--timeout",
        type=float,
        default=300.0,
        help="seconds to wait for the services to be healthy",
    )
    up.set_defaults(func=cmd_up)
    for name, func, help_ in (
        ("down", cmd_down, "stop the services recorded in the pid file"),
        ("status", cmd_status, "show the recorded services and health"),
    ):
        p = sub.add_parser(name, help=help_)
        p.add_argument(
            "--home",
            type=Path,
            default=None,
            help=HOME_HELP,
        )
        p.set_defaults(func=func)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ServicesError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
