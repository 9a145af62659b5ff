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
import contextlib
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from ml import paths  # noqa: E402  (needs REPO on sys.path when run as a script)

AIRFLOW_HOME_DIRNAME = "airflow_home"
DAGS_DIR = REPO / "dags"
#: Written beside the database once ``airflow db check-migrations`` passed for it.
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


def sqlite_path(env: Mapping[str, str]) -> Path | None:
    """The database file of a ``sqlite:///`` connection in ``env``, else None."""
    conn = env.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "")
    prefix = "sqlite:///"
    return Path(conn[len(prefix) :].split("?")[0]) if conn.startswith(prefix) else None


def seed_default_config(home: str | os.PathLike[str] | None = None) -> Path | None:
    """Copy the shipped default config into a base directory that has none.

    The DAG's ``config_path`` param resolves against the base directory, so a new
    ``CTR_PIPELINE_HOME`` starts with this checkout's ``config/model_config.yaml``. Both
    ``make run`` and ``make airflow`` call this.

    Args:
        home: The project base directory; default ``ml.paths.base_dir()``.

    Returns:
        The config's path when it was copied now, else None (present already, or this
        checkout is the base directory).
    """
    base = Path(home).expanduser().resolve() if home is not None else paths.base_dir()
    target = base / paths.DEFAULT_CONFIG
    shipped = REPO / paths.DEFAULT_CONFIG
    if target.exists() or not shipped.is_file():
        return None
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    shutil.copyfile(shipped, tmp)
    os.replace(tmp, target)
    return target


#: Rows of synthetic data a new base directory gets (``make run``'s ``--rows`` default).
SEED_ROWS = 100_000


def seed_default_features(
    home: str | os.PathLike[str] | None = None, rows: int = SEED_ROWS
) -> list[str]:
    """Generate the default synthetic features into a base directory that has none.

    The same "generate if missing" rule as ``make run`` and ``ctr-pipeline run``
    (:func:`ml.data.generate.ensure.ensure_default_features`): only when the config's
    features directory is the default one and it is missing; a user's data is never
    touched. ``make airflow`` calls it so that the first triggered run finds its data.

    Returns:
        Lines to print when it generated something, else an empty list.
    """
    base = Path(home).expanduser().resolve() if home is not None else paths.base_dir()
    previous = os.environ.get(paths.ENV_VAR)
    os.environ[paths.ENV_VAR] = str(base)  # ml.paths reads it on every call
    try:
        from ml.config import load_config
        from ml.data.generate.ensure import ensure_default_features
        from ml.errors import CtrPipelineError

        try:
            features = load_config(paths.resolve(paths.DEFAULT_CONFIG)).data.features_dir
        except (CtrPipelineError, OSError, ValueError):
            return []  # no usable config: the DAG's validate task says what is wrong
        result = ensure_default_features(features, rows=rows)
        return result.lines() if result.generated else []
    finally:
        if previous is None:
            os.environ.pop(paths.ENV_VAR, None)
        else:
            os.environ[paths.ENV_VAR] = previous


def run_airflow_cli(
    env: Mapping[str, str],
    request: Mapping[str, Any],
    *,
    stdout: Any = None,
    stderr: Any = None,
    text: bool = True,
) -> subprocess.Popen[str]:
    """Start ``python -m scripts.airflow_cli`` (several Airflow commands, one process).

    The caller waits for it (and reads ``stdout`` when it passes ``subprocess.PIPE``).
    """
    airflow_executable(env)  # a clear error when Airflow is not installed
    proc = subprocess.Popen(
        [sys.executable, "-m", "scripts.airflow_cli"],
        env={**env, "PYTHONPATH": _with_repo(env.get("PYTHONPATH", ""))},
        cwd=env["AIRFLOW_HOME"],
        stdin=subprocess.PIPE,
        stdout=stdout,
        stderr=stderr,
        text=text,
        bufsize=1 if text else -1,
    )
    assert proc.stdin is not None
    proc.stdin.write(json.dumps(request) if text else json.dumps(request).encode())
    proc.stdin.close()
    proc.stdin = None  # sent: communicate() and wait() must not touch it again
    return proc


def _with_repo(pythonpath: str) -> str:
    parts = [p for p in pythonpath.split(os.pathsep) if p]
    return os.pathsep.join([str(REPO), *[p for p in parts if p != str(REPO)]])


def _stamp_key(env: Mapping[str, str]) -> dict[str, str]:
    conn = env.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "")
    key = {
        "airflow_version": metadata.version("apache-airflow"),
        "conn": hashlib.sha256(conn.encode()).hexdigest()[:16],
    }
    db = sqlite_path(env)
    if db is not None:
        try:
            st = db.stat()
            key["db_file"] = f"{st.st_dev}:{st.st_ino}"
        except OSError:
            key["db_file"] = "missing"
    return key


def db_checked(env: Mapping[str, str]) -> bool:
    """Did ``airflow db check-migrations`` pass for this database and this Airflow?

    A stamp file beside the database answers without importing Airflow or reading the
    database: it is written after the check (or the migration) succeeded and names the
    Airflow version, the connection (a digest) and, for SQLite, the database file itself
    (device and inode, so a deleted or replaced file is noticed).
    """
    try:
        stamp = json.loads((Path(env["AIRFLOW_HOME"]) / MIGRATE_STAMP).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(stamp, dict) and all(stamp.get(k) == v for k, v in _stamp_key(env).items())


def mark_db_checked(env: Mapping[str, str], seconds: float = 0.0) -> None:
    """Record that the database is migrated for this Airflow (see :func:`db_checked`)."""
    path = Path(env["AIRFLOW_HOME"]) / MIGRATE_STAMP
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps({**_stamp_key(env), "seconds": round(seconds, 1)}, indent=2))
    os.replace(tmp, path)


def forget_db_check(env: Mapping[str, str]) -> None:
    """Drop the stamp (e.g. the database was just created): the next use checks again."""
    with contextlib.suppress(FileNotFoundError):
        (Path(env["AIRFLOW_HOME"]) / MIGRATE_STAMP).unlink()


def ensure_db(
    env: Mapping[str, str], *, quiet: bool = True, commands: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """Migrate the metadata database when ``airflow db check-migrations`` says it must.

    Airflow's own check decides, once per database and Airflow version (then
    :func:`db_checked` skips it, and this whole call when there are no ``commands``);
    nothing reads Airflow's tables. It costs one Airflow start-up (~3 s), in which
    ``commands`` (``airflow_cli`` entries, e.g. user creation) run too.

    Args:
        env: The environment from :func:`airflow_env`.
        quiet: Save the output to ``<AIRFLOW_HOME>/logs/db-migrate.log`` instead of
            streaming it.
        commands: More Airflow CLI commands to run in the same process.

    Returns:
        The ``airflow_cli`` report: ``migrated``, ``migrate_seconds``, ``commands``.

    Raises:
        AirflowEnvError: The migration or a command failed (the message names the log).
    """
    checked = db_checked(env)
    if checked and not commands:
        return {"migrated": False, "migrate_seconds": 0.0, "commands": []}
    airflow_home = Path(env["AIRFLOW_HOME"])
    (airflow_home / "logs").mkdir(parents=True, exist_ok=True)
    log_path = airflow_home / "logs" / "db-migrate.log"
    report_path = airflow_home / "logs" / f".db-migrate-{os.getpid()}.json"
    request = {"migrate": not checked, "report": str(report_path), "commands": commands or []}
    with log_path.open("w") if quiet else contextlib.nullcontext() as log:
        proc = run_airflow_cli(
            env, request, stdout=log, stderr=subprocess.STDOUT if quiet else None
        )
        rc = proc.wait()
    try:
        report: dict[str, Any] = json.loads(report_path.read_text())
        report_path.unlink()
    except (OSError, ValueError):
        report = {}
    if rc != 0 or "error" in report or not report:
        what = report.get("error") or _failed_command(commands or [], report, rc)
        raise AirflowEnvError(
            f"{what} for AIRFLOW_HOME={airflow_home}; see "
            f"{log_path if quiet else 'the output above'}"
        )
    if not checked:
        mark_db_checked(env, float(report.get("migrate_seconds") or 0.0))
    return report


def _failed_command(commands: list[dict[str, Any]], report: dict[str, Any], rc: int) -> str:
    """Names the first command of ``commands`` that ``report`` says failed (passwords
    redacted), else the exit status alone."""
    for command, result in zip(commands, report.get("commands") or [], strict=False):
        if result.get("exit_status"):
            argv = ["--password=***" if a.startswith("--password=") else a for a in command["argv"]]
            argv = [
                "***" if prev in ("-p", "--password") else a
                for prev, a in zip(["", *argv], argv, strict=False)
            ]
            return f"`airflow {' '.join(argv)}` failed (exit {result['exit_status']})"
    return f"an Airflow command failed (exit {rc})"


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
        ran = ensure_db(airflow_env(args.home))["migrated"]
        print(f"# airflow db migrate: {'done' if ran else 'already up to date'}", file=sys.stderr)
    if args.json:
        print(json.dumps(settings, indent=2))
    else:
        for key, value in settings.items():
            print(f"export {key}={shlex.quote(value)}" if args.shell else f"{key}={value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
