"""The environment for this project's own Airflow (used by `make run`, `make airflow`, tests).

Everything Airflow needs to find this project is set explicitly, so nothing depends on
the caller's working directory or on a global ``~/airflow``:

- ``CTR_PIPELINE_HOME``: the base directory holding ``data/``, ``experiments/``, ``models/``
  (default: ``$CTR_PIPELINE_HOME`` or the checkout).
- ``AIRFLOW_HOME=<base>/airflow_home``: ``airflow.cfg``, the SQLite database, logs.
- ``AIRFLOW__CORE__DAGS_FOLDER=<checkout>/dags``, ``AIRFLOW__CORE__LOAD_EXAMPLES=False``.
- ``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=sqlite:///<AIRFLOW_HOME>/airflow.db`` (unless the
  caller passes another one in ``extra``, e.g. PostgreSQL).
- ``PYTHONPATH`` with the checkout (for ``ml``) and ``dags/`` (for the task modules), and
  ``PATH`` with this virtualenv's ``bin`` first (so ``airflow`` is this project's).

Use from Python::

    from scripts.airflow_env import airflow_env, ensure_db
    env = airflow_env()                  # os.environ + the settings above
    ensure_db(env)                       # `airflow db migrate`, only when needed
    subprocess.run(["airflow", "dags", "list"], env=env)

or from a shell::

    source <(.venv/bin/python scripts/airflow_env.py --shell)
    airflow dags list
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import sqlite3
import subprocess
import sys
import time
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from ml import paths  # noqa: E402  (needs REPO on sys.path when run as a script)

AIRFLOW_HOME_DIRNAME = "airflow_home"
DAGS_DIR = REPO / "dags"
#: Written next to the database after a successful `airflow db migrate`.
MIGRATE_STAMP = ".db-migrated.json"


class AirflowEnvError(RuntimeError):
    """The Airflow environment cannot be prepared (names what failed and the log)."""


def venv_bin() -> Path:
    """The ``bin`` directory of the Python running this (holds the ``airflow`` script)."""
    return Path(sys.executable).parent


def airflow_settings(home: str | os.PathLike[str] | None = None) -> dict[str, str]:
    """Only this project's settings (what ``--shell`` exports).

    Args:
        home: The project base directory; default ``ml.paths.base_dir()``.

    Returns:
        Variable name -> value.
    """
    base = Path(home).expanduser().resolve() if home is not None else paths.base_dir()
    airflow_home = base / AIRFLOW_HOME_DIRNAME
    pythonpath = [str(REPO), str(DAGS_DIR)]
    existing = os.environ.get("PYTHONPATH", "")
    pythonpath += [p for p in existing.split(os.pathsep) if p and p not in pythonpath]
    path = [str(venv_bin())]
    path += [p for p in os.environ.get("PATH", "").split(os.pathsep) if p and p not in path]
    return {
        paths.ENV_VAR: str(base),
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_DIR),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow_home / 'airflow.db'}",
        "PYTHONPATH": os.pathsep.join(pythonpath),
        "PATH": os.pathsep.join(path),
    }


def airflow_env(
    home: str | os.PathLike[str] | None = None, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The full environment for running Airflow against this project.

    Args:
        home: The project base directory (``CTR_PIPELINE_HOME``); default
            ``ml.paths.base_dir()``. ``AIRFLOW_HOME`` is ``<home>/airflow_home``.
        extra: Variables that override the defaults (e.g. a PostgreSQL
            ``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN`` or ``AIRFLOW__CORE__EXECUTOR``).

    Returns:
        ``os.environ`` updated with the project's settings and then ``extra``; pass it
        as ``env=`` to ``subprocess``.
    """
    env = dict(os.environ)
    env.update(airflow_settings(home))
    if extra:
        env.update({k: str(v) for k, v in extra.items()})
    return env


def airflow_executable(env: Mapping[str, str] | None = None) -> str:
    """Path of this virtualenv's ``airflow`` command."""
    candidate = venv_bin() / "airflow"
    if candidate.is_file():
        return str(candidate)
    raise AirflowEnvError(
        f"no `airflow` command next to {sys.executable}; install the project with "
        "`make venv` (apache-airflow is in requirements.lock)"
    )


def _sqlite_path(env: Mapping[str, str]) -> Path | None:
    conn = env.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "")
    prefix = "sqlite:///"
    return Path(conn[len(prefix) :].split("?")[0]) if conn.startswith(prefix) else None


def _db_revision(db: Path) -> str | None:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
            row = con.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.Error:
        return None
    return str(row[0]) if row else None


def _stamp_key(env: Mapping[str, str]) -> dict[str, str]:
    conn = env.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "")
    return {
        "airflow_version": metadata.version("apache-airflow"),
        "conn": hashlib.sha256(conn.encode()).hexdigest()[:16],
    }


def db_needs_migrate(env: Mapping[str, str]) -> bool:
    """Cheap check (no Airflow import): has this database been migrated by this Airflow?

    True when the stamp written by :func:`ensure_db` is missing or was written by another
    Airflow version or for another database, or (SQLite) when the database file or its
    ``alembic_version`` row is missing or differs from the stamp.
    """
    stamp_path = Path(env["AIRFLOW_HOME"]) / MIGRATE_STAMP
    try:
        stamp = json.loads(stamp_path.read_text())
    except (OSError, ValueError):
        return True
    if any(stamp.get(k) != v for k, v in _stamp_key(env).items()):
        return True
    db = _sqlite_path(env)
    if db is not None:
        return not db.is_file() or _db_revision(db) != stamp.get("revision")
    return False


def ensure_db(env: Mapping[str, str], *, quiet: bool = True) -> bool:
    """Run ``airflow db migrate`` when :func:`db_needs_migrate` says so.

    Args:
        env: The environment from :func:`airflow_env`.
        quiet: Capture the command's output (it is saved to
            ``<AIRFLOW_HOME>/logs/db-migrate.log``) instead of streaming it.

    Returns:
        Whether a migration ran.

    Raises:
        AirflowEnvError: The migration failed (the message names the log file).
    """
    if not db_needs_migrate(env):
        return False
    airflow_home = Path(env["AIRFLOW_HOME"])
    (airflow_home / "logs").mkdir(parents=True, exist_ok=True)
    log_path = airflow_home / "logs" / "db-migrate.log"
    start = time.perf_counter()
    proc = subprocess.run(
        [airflow_executable(env), "db", "migrate"],
        env=dict(env),
        cwd=str(airflow_home),
        stdout=subprocess.PIPE if quiet else None,
        stderr=subprocess.STDOUT if quiet else None,
        text=True,
        check=False,
    )
    if quiet:
        log_path.write_text(proc.stdout or "")
    if proc.returncode != 0:
        raise AirflowEnvError(
            f"`airflow db migrate` failed (exit {proc.returncode}) for AIRFLOW_HOME="
            f"{airflow_home}; see {log_path if quiet else 'the output above'}"
        )
    stamp = dict(_stamp_key(env))
    db = _sqlite_path(env)
    stamp["revision"] = (_db_revision(db) if db is not None else None) or ""
    stamp["seconds"] = f"{time.perf_counter() - start:.1f}"
    tmp = airflow_home / (MIGRATE_STAMP + ".tmp")
    tmp.write_text(json.dumps(stamp, indent=2))
    tmp.replace(airflow_home / MIGRATE_STAMP)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Print the environment for this project's Airflow.",
        epilog="Example: source <(.venv/bin/python scripts/airflow_env.py --shell)",
    )
    parser.add_argument("--home", help="project base directory (default: CTR_PIPELINE_HOME)")
    fmt = parser.add_mutually_exclusive_group()
    fmt.add_argument("--shell", action="store_true", help="`export` lines for a POSIX shell")
    fmt.add_argument("--json", action="store_true", help="a JSON object")
    parser.add_argument(
        "--migrate", action="store_true", help="also run `airflow db migrate` if needed"
    )
    args = parser.parse_args(argv)
    settings = airflow_settings(args.home)
    if args.migrate:
        ran = ensure_db(airflow_env(args.home))
        print(f"# airflow db migrate: {'done' if ran else 'already up to date'}", file=sys.stderr)
    if args.json:
        print(json.dumps(settings, indent=2))
    else:
        for key, value in settings.items():
            print(f"export {key}={shlex.quote(value)}" if args.shell else f"{key}={value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
