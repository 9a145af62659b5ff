"""``make run``: run the whole ``training_pipeline`` DAG once with this project's own Airflow.

1. Environment: ``AIRFLOW_HOME=<base>/airflow_home`` with its SQLite database, DAGs from
   ``dags/`` (``scripts.airflow_env``); ``--profile postgres-celery`` (or an env file)
   uses that deployment's metadata database instead, so the run shows in its UI.
2. Inputs: the default config is copied into a new base directory; the default synthetic
   features are generated when they are the configured ones and are missing. A user's
   own data (another ``features_path`` or config) is never generated over or touched.
3. One process (``scripts.airflow_cli``): ``airflow db check-migrations`` (once per
   database and Airflow version; migrating on first use), ``airflow dags test
   training_pipeline <now> [-c CONF]``, then
   ``airflow dags list-runs -o json`` and ``airflow tasks states-for-dag-run -o json``.
4. A summary (``scripts.run_report``) from those and from the run summary the pipeline
   writes: metrics, version, paths, the whole failure message, where the time went.
   Exit status 1 when the DAG run failed (naming the task and its log file), 2 on bad
   input.

Usage::

    make run
    make run ARGS='--conf {"epochs":2,"min_auc":0.7}'
    make run ARGS='--set epochs=2 --set auto_promote=true'
    .venv/bin/python -m scripts.run_pipeline --verbose

The full Airflow output goes to ``<AIRFLOW_HOME>/logs/make_run/<stamp>/dags_test.log``
and each task's lines to ``<task_id>.log`` beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ml import paths
from ml.errors import CtrPipelineError, UserError
from scripts.airflow_env import (
    AirflowEnvError,
    airflow_env,
    db_checked,
    forget_db_check,
    mark_db_checked,
    run_airflow_cli,
    seed_default_config,
)
from scripts.run_report import (
    DAG_ID,
    EXC_LINE,
    STRUCTLOG,
    find_run,
    summarize,
    summary_data,
    task_states,
)
from scripts.services_config import ServicesError

_START = re.compile(r"\[DAG TEST\] starting task_id=(\w+)")


class RunError(Exception):
    """A usage problem (bad --conf, missing base directory) reported without a traceback."""


def parse_conf(text: str) -> dict[str, Any]:
    """Parse ``--conf``: JSON, or the quote-stripped form a Makefile hands over.

    ``make run ARGS='--conf {"epochs":2}'`` reaches the script as ``{epochs:2}`` because
    the shell removes the quotes; that form is read as ``key:value`` pairs whose values
    are JSON scalars (numbers, true/false/null) or else strings.
    """
    try:
        value = json.loads(text)
    except ValueError:
        value = _parse_bare(text)
    if not isinstance(value, dict):
        raise RunError(f"--conf must be a JSON object such as '{{\"epochs\": 2}}', got {text!r}")
    return value


def _parse_bare(text: str) -> dict[str, Any]:
    body = text.strip()
    if not (body.startswith("{") and body.endswith("}")):
        raise RunError(
            f"--conf {text!r} is not JSON; pass a JSON object (quote it: "
            "ARGS='--conf '\\''{\"epochs\":2}'\\''') or use --set epochs=2"
        )
    out: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in body[1:-1].split(","))):
        key, sep, raw = part.partition(":")
        if not sep or not key.strip():
            raise RunError(f"--conf {text!r}: cannot read {part!r} as key:value")
        out[key.strip().strip("'\"")] = _scalar(raw.strip())
    return out


def _scalar(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw.strip("'\"")


def parse_set(items: list[str]) -> dict[str, Any]:
    """``--set key=value`` pairs (values parsed as JSON scalars when they are)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise RunError(f"--set {item!r}: use KEY=VALUE, e.g. --set epochs=2")
        out[key] = _scalar(raw)
    return out


# --- inputs ----------------------------------------------------------------------------


def configured_features(conf: Mapping[str, Any]) -> str | None:
    """The features directory the run will use: ``features_path``, else the config's."""
    if conf.get("features_path"):
        return str(conf["features_path"])
    from ml.config import load_config

    config_path = paths.resolve(str(conf.get("config_path") or paths.DEFAULT_CONFIG))
    try:
        return load_config(config_path).data.features_dir
    except (CtrPipelineError, OSError, ValueError):
        return None  # the DAG reports a bad config itself


def ensure_features(conf: Mapping[str, Any], rows: int) -> float:
    """Generate the default synthetic features when they are the ones used and missing
    (:func:`ml.data.generate.ensure.ensure_default_features`, the one rule for it).

    Anything else (another directory, or the default one holding files the generator did
    not complete) is left as it is: the DAG validates it.

    Returns:
        Seconds spent generating.
    """
    from ml.data.generate.ensure import ensure_default_features

    features = configured_features(conf)
    if features is None:
        return 0.0
    start = time.perf_counter()
    result = ensure_default_features(features, rows=rows)
    if not result.generated:
        return 0.0
    for line in result.lines():
        print(line, flush=True)
    return time.perf_counter() - start


def load_env(home: str | None, profile: str | None) -> dict[str, str]:
    """The Airflow environment: the project's, or a deployment profile's database."""
    if profile is None:
        return airflow_env(home)
    from scripts.services_db import ensure_postgres_database
    from scripts.services_stack import AirflowServices

    services = AirflowServices(profile=profile, home=Path(home) if home else None)
    if services.metadata_url.startswith("postgresql") and ensure_postgres_database(
        services.metadata_url
    ):
        forget_db_check(services.env)  # a new, empty database
    return services.env


# --- the run ---------------------------------------------------------------------------


def _story(line: str, task_id: str, verbose: bool) -> str | None:
    """The line to show on the terminal, or None to keep it in the log file only."""
    if verbose:
        return line
    m = STRUCTLOG.match(line)
    if m is None:
        # Of a traceback, only its last line (the exception); the log files keep the rest.
        return f"[{task_id}] {line}" if EXC_LINE.match(line) else None
    logger = m.group("logger") or ""
    level = m.group("level")
    if logger == "training_pipeline_tasks" or logger.startswith("ml"):
        return f"[{task_id}] {m.group('msg')}"
    if level in ("error", "critical") and "Task failed" not in m.group("msg"):
        return f"[{task_id}] {m.group('msg')}"
    return None


def split_task_logs(lines: list[str]) -> dict[str, list[str]]:
    """Group the ``airflow dags test`` output by task (from each ``starting task_id=``)."""
    groups: dict[str, list[str]] = {"_dag": []}
    current = "_dag"
    for line in lines:
        m = _START.search(line)
        if m:
            current = m.group(1)
            groups.setdefault(current, [])
        groups.setdefault(current, []).append(line)
    return groups


def airflow_request(
    conf: Mapping[str, Any], logical_date: str, report: Path, *, migrate: bool = True
) -> dict[str, Any]:
    """The ``airflow_cli`` request: migrate if needed, the run, then its state."""
    test = ["dags", "test", DAG_ID, logical_date]
    if conf:
        test += ["-c", json.dumps(conf)]
    return {
        "migrate": migrate,
        "report": str(report),
        "commands": [
            {"argv": test, "capture": False},
            {"argv": ["dags", "list-runs", DAG_ID, "-o", "json"], "capture": True},
            {
                "argv": ["tasks", "states-for-dag-run", DAG_ID, logical_date, "-o", "json"],
                "capture": True,
            },
        ],
    }


def run_dags_test(
    env: Mapping[str, str], conf: dict[str, Any], log_dir: Path, verbose: bool
) -> tuple[list[str], dict[str, Any], str]:
    """Run the DAG once, streaming its story; return (all lines, airflow_cli report, date)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    logical_date = datetime.now(timezone.utc).isoformat()
    report_path = log_dir / "airflow_cli.json"
    lines: list[str] = []
    task_id = "_dag"
    # `airflow db check-migrations` once per database and Airflow version (~1.5 s).
    check = not db_checked(env)
    with (log_dir / "dags_test.log").open("w") as full:
        proc = run_airflow_cli(
            env,
            airflow_request(conf, logical_date, report_path, migrate=check),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.rstrip("\n")
            full.write(raw)
            lines.append(line)
            m = _START.search(line)
            if m:
                task_id = m.group(1)
                print(f"▶ {task_id}", flush=True)
                continue
            shown = _story(line, task_id, verbose)
            if shown is not None:
                print(shown, flush=True)
        proc.wait()
    for name, group in split_task_logs(lines).items():
        if name != "_dag":
            (log_dir / f"{name}.log").write_text("\n".join(group) + "\n")
    try:
        report: dict[str, Any] = json.loads(report_path.read_text())
    except (OSError, ValueError):
        report = {}
    if check and report and "error" not in report:
        mark_db_checked(env, float(report.get("migrate_seconds") or 0.0))
    return lines, report, logical_date


def run_state(report: Mapping[str, Any], logical_date: str) -> dict[str, Any] | None:
    """The DAG run this invocation made, its tasks and its run summary (None: no run)."""
    commands = report.get("commands") or []
    runs = commands[1].get("json") if len(commands) > 1 else None
    row = find_run(runs, logical_date)
    if row is None:
        return None
    tasks = task_states(commands[2].get("json") if len(commands) > 2 else None)
    return {
        "run_id": row["run_id"],
        "state": row.get("state"),
        "tasks": tasks,
        "summary": read_run_summary(str(row["run_id"])),
    }


def read_run_summary(run_id: str) -> dict[str, Any] | None:
    """The pipeline's summary of ``run_id`` (None when it wrote none, or it is unreadable)."""
    from ml.pipeline.summary import read_summary, summary_path

    try:
        return read_summary(DAG_ID, run_id)
    except (CtrPipelineError, OSError, ValueError) as exc:
        print(f"⚠️  run summary {summary_path(DAG_ID, run_id)} unreadable: {exc}", flush=True)
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="make run", description="Run the training_pipeline DAG once (airflow dags test)."
    )
    parser.add_argument("--conf", "-c", default=None, help='DAG run conf, e.g. {"epochs":2}')
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="one conf value"
    )
    parser.add_argument(
        "--home", default=None, help="project base directory (default: CTR_PIPELINE_HOME)"
    )
    parser.add_argument(
        "--profile",
        default=None,
        help="use this deployment's metadata database (postgres-celery, or an env file); "
        "default: the project's own SQLite database",
    )
    parser.add_argument(
        "--rows", type=int, default=100_000, help="rows to generate when features are missing"
    )
    parser.add_argument("--verbose", "-v", action="store_true", help="show Airflow's own output")
    parser.add_argument("--summary-json", type=Path, help="also write the summary as JSON here")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    try:
        conf = parse_conf(args.conf) if args.conf else {}
        conf.update(parse_set(args.set))
        env = load_env(args.home, args.profile)
        os.environ.update(
            {k: env[k] for k in (paths.ENV_VAR, "AIRFLOW_HOME", "PYTHONPATH") if k in env}
        )
        print(f"🏠 Project base: {paths.base_dir()}   AIRFLOW_HOME: {env['AIRFLOW_HOME']}")
        if str(conf.get("config_path") or paths.DEFAULT_CONFIG) == paths.DEFAULT_CONFIG:
            seeded = seed_default_config()
            if seeded is not None:
                print(f"📝 No config at {seeded}: copied the default from this checkout")
        generate_s = ensure_features(conf, args.rows)
    except (RunError, AirflowEnvError, ServicesError, UserError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    if conf:
        print(f"⚙️  conf: {json.dumps(conf)}", flush=True)
    log_dir = Path(env["AIRFLOW_HOME"]) / "logs" / "make_run" / time.strftime("%Y%m%d_%H%M%S")
    lines, report, logical_date = run_dags_test(env, conf, log_dir, args.verbose)
    migrate_s = float(report.get("migrate_seconds") or 0.0) if report.get("migrated") else 0.0
    if migrate_s:
        print(f"🗄️  Airflow metadata database migrated (first use, {migrate_s:.1f} s)")
    run = run_state(report, logical_date)
    total = time.perf_counter() - start
    status, summary = summarize(
        run,
        total_s=total,
        generate_s=generate_s,
        log_dir=log_dir,
        lines=lines,
        migrate_s=migrate_s,
    )
    print("\n".join(summary), flush=True)
    if args.summary_json:
        data = summary_data(run, total_s=total, generate_s=generate_s, migrate_s=migrate_s)
        args.summary_json.write_text(json.dumps({"status": status, **data}, indent=2))
    return status


if __name__ == "__main__":
    sys.exit(main())
