"""`make run`: run the whole ``training_pipeline`` DAG once with this project's own Airflow.

1. Environment: ``AIRFLOW_HOME=<base>/airflow_home`` with its SQLite database, DAGs from
   ``dags/`` (see ``scripts/airflow_env.py``); ``airflow db migrate`` runs only when the
   database is missing or was migrated by another Airflow version.
2. Features: generated into ``data/features/v1`` when missing.
3. ``airflow dags test training_pipeline [-c CONF]``: one real DAG run, every task in order,
   recorded in the metadata database like a scheduled run.
4. A summary: test metrics, the version registered and its path, and where the time went
   (training vs orchestration). Exit status 1 when the DAG run failed, naming the task and
   its log file.

Usage::

    make run
    make run ARGS='--conf {"epochs":2,"min_auc":0.7}'
    make run ARGS='--set epochs=2 --set auto_promote=true'
    .venv/bin/python scripts/run_pipeline.py --verbose

The full Airflow output goes to ``<AIRFLOW_HOME>/logs/make_run/<stamp>/dags_test.log``
and each task's lines to ``<task_id>.log`` beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from airflow_env import (
    REPO,
    AirflowEnvError,
    _sqlite_path,
    airflow_env,
    airflow_executable,
    ensure_db,
)

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from ml import paths

DAG_ID = "training_pipeline"
TASK_ORDER = (
    "validate_features",
    "train_model",
    "evaluate_model",
    "register_model",
    "notify_completion",
)
#: Loggers whose lines are the pipeline's own story (shown without --verbose).
_OURS = re.compile(r"\[(training_pipeline_tasks|ml(\.[\w.]+)?|task)\]")
_STRUCTLOG = re.compile(
    r"^\S+Z \[(?P<level>\w+)\s*\] (?P<msg>.*?)(?:\s+\[(?P<logger>[\w.]+)\](?P<rest>.*))?$"
)
_START = re.compile(r"\[DAG TEST\] starting task_id=(\w+)")
_EXC_LINE = re.compile(r"^(?P<type>[A-Za-z_][\w.]*(?:Error|Exception|Exit)): (?P<msg>.+)$")


#: ``airflow <args>`` exactly as the console script runs it, except that the process
#: ends with ``os._exit`` once Airflow's atexit hooks have run: tearing down an
#: interpreter that holds torch, Airflow and the in-process API server takes ~15 s on this
#: machine, after the DAG run is already recorded.
_AIRFLOW_CLI = """
import atexit, os, sys
sys.argv[0] = "airflow"
from airflow.__main__ import main
code = 0
try:
    main()
except SystemExit as exc:
    code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    if not isinstance(exc.code, int) and exc.code is not None:
        print(exc.code, file=sys.stderr)
except BaseException:
    import traceback
    traceback.print_exc()
    code = 1
atexit._run_exitfuncs()
sys.stdout.flush()
sys.stderr.flush()
os._exit(code)
"""


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


# --- the metadata database -----------------------------------------------------------


def _connect(env: Mapping[str, str]) -> sqlite3.Connection | None:
    db = _sqlite_path(env)
    if db is None or not db.is_file():
        return None
    return sqlite3.connect(f"file:{db}?mode=ro", uri=True)


def _last_run_id(env: Mapping[str, str]) -> int:
    con = _connect(env)
    if con is None:
        return 0
    with con:
        row = con.execute("SELECT MAX(id) FROM dag_run WHERE dag_id = ?", (DAG_ID,)).fetchone()
    con.close()
    return int(row[0] or 0)


def _seconds(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def read_run(env: Mapping[str, str], after_id: int) -> dict[str, Any] | None:
    """The DAG run created by this invocation: state, task states/durations, XComs."""
    con = _connect(env)
    if con is None:
        return None
    try:
        row = con.execute(
            "SELECT id, run_id, state FROM dag_run WHERE dag_id = ? AND id > ? "
            "ORDER BY id DESC LIMIT 1",
            (DAG_ID, after_id),
        ).fetchone()
        if row is None:
            return None
        _, run_id, state = row
        tis = {
            task_id: {"state": st, "seconds": _seconds(s, e), "try_number": tn}
            for task_id, st, s, e, tn in con.execute(
                "SELECT task_id, state, start_date, end_date, try_number FROM task_instance "
                "WHERE dag_id = ? AND run_id = ?",
                (DAG_ID, run_id),
            )
        }
        xcom: dict[str, Any] = {}
        for key, value in con.execute(
            "SELECT key, value FROM xcom WHERE dag_id = ? AND run_id = ?", (DAG_ID, run_id)
        ):
            try:
                xcom[key] = json.loads(value) if isinstance(value, (str, bytes)) else value
            except ValueError:
                xcom[key] = value
    finally:
        con.close()
    return {"run_id": run_id, "state": state, "tasks": tis, "xcom": xcom}


# --- output --------------------------------------------------------------------------


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


def _story(line: str, task_id: str, verbose: bool) -> str | None:
    """The line to show on the terminal, or None to keep it in the log file only."""
    if verbose:
        return line
    m = _STRUCTLOG.match(line)
    if m is None:
        # Of a traceback, only its last line (the exception); the log files keep the rest.
        return f"[{task_id}] {line}" if _EXC_LINE.match(line) else None
    logger = m.group("logger") or ""
    level = m.group("level")
    if logger == "training_pipeline_tasks" or logger.startswith("ml"):
        return f"[{task_id}] {m.group('msg')}"
    if level in ("error", "critical") and "Task failed" not in m.group("msg"):
        return f"[{task_id}] {m.group('msg')}"
    return None


def run_dags_test(
    env: Mapping[str, str], conf: dict[str, Any], log_dir: Path, verbose: bool
) -> tuple[int, list[str]]:
    """Run ``airflow dags test`` streaming its story to stdout; return (rc, all lines)."""
    airflow_executable(env)  # a clear error when Airflow is not installed
    cmd = [sys.executable, "-c", _AIRFLOW_CLI, "dags", "test", DAG_ID]
    if conf:
        cmd += ["-c", json.dumps(conf)]
    lines: list[str] = []
    task_id = "_dag"
    log_dir.mkdir(parents=True, exist_ok=True)
    with (log_dir / "dags_test.log").open("w") as full:
        proc = subprocess.Popen(
            cmd,
            env=dict(env),
            cwd=str(Path(env["AIRFLOW_HOME"])),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
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
        rc = proc.wait()
    for name, group in split_task_logs(lines).items():
        if name != "_dag":
            (log_dir / f"{name}.log").write_text("\n".join(group) + "\n")
    return rc, lines


def _fmt_s(seconds: float | None) -> str:
    return "?" if seconds is None else f"{seconds:.1f} s"


def summarize(
    run: dict[str, Any] | None,
    *,
    total_s: float,
    generate_s: float,
    log_dir: Path,
    lines: list[str],
    migrate_s: float = 0.0,
) -> tuple[int, list[str]]:
    """The closing summary lines and the exit status."""
    out: list[str] = [""]
    if run is None:
        reason = next(
            (m.group(0) for m in map(_EXC_LINE.match, reversed(lines)) if m), "see the log"
        )
        out += [
            f"❌ No DAG run was created: {reason}",
            f"   Full output: {log_dir / 'dags_test.log'}",
        ]
        return 1, out
    tasks = run["tasks"]
    xcom = run["xcom"]
    train_s = (tasks.get("train_model") or {}).get("seconds")
    overhead = total_s - (train_s or 0.0) - generate_s
    if run["state"] != "success":
        failed = [t for t in TASK_ORDER if (tasks.get(t) or {}).get("state") == "failed"]
        first = failed[0] if failed else None
        out.append(f"❌ DAG run {run['run_id']} {run['state'].upper()}")
        if first:
            log_file = log_dir / f"{first}.log"
            msg = _failure_reason(log_file)
            out.append(f"   Failed task: {first}" + (f": {msg}" if msg else ""))
            out.append(f"   Task log: {log_file}")
        not_run = [t for t in TASK_ORDER if (tasks.get(t) or {}).get("state") != "success"]
        out.append(f"   Did not complete: {', '.join(not_run)}")
        out.append(f"   Full output: {log_dir / 'dags_test.log'}")
        out.append(f"   Time: {_fmt_s(total_s)} total")
        return 1, out
    metrics = xcom.get("metrics") or {}
    out.append(f"✅ DAG run {run['run_id']}: success")
    for key in ("test_auc", "test_accuracy", "test_logloss"):
        if isinstance(metrics.get(key), (int, float)):
            out.append(f"   {key}: {metrics[key]:.4f}")
    champion = metrics.get("champion")
    if champion:
        out.append(f"   vs production {champion['version']}: test_auc {champion['test_auc']:.4f}")
    out.append(f"   Registered: {xcom.get('model_version')}  →  {xcom.get('registered_path')}")
    out.append(
        f"   Time: {_fmt_s(total_s)} total = training {_fmt_s(train_s)} (train_model)"
        + (f" + data generation {_fmt_s(generate_s)}" if generate_s else "")
        + f" + orchestration {_fmt_s(overhead)}"
        + (f" (of which first-use database migration {_fmt_s(migrate_s)})" if migrate_s else "")
    )
    out.append(f"   Logs: {log_dir}")
    return 0, out


def summary_data(
    run: dict[str, Any] | None, *, total_s: float, generate_s: float, migrate_s: float
) -> dict[str, Any]:
    """The numbers of the summary as JSON (``--summary-json``; used by the benchmark)."""
    if run is None:
        return {"state": None, "total_s": total_s}
    tasks = run["tasks"]
    train_s = (tasks.get("train_model") or {}).get("seconds")
    return {
        "run_id": run["run_id"],
        "state": run["state"],
        "total_s": total_s,
        "train_s": train_s,
        "generate_s": generate_s,
        "migrate_s": migrate_s,
        "overhead_s": total_s - (train_s or 0.0) - generate_s,
        "task_seconds": {t: v.get("seconds") for t, v in tasks.items()},
        "model_version": run["xcom"].get("model_version"),
        "registered_path": run["xcom"].get("registered_path"),
        "metrics": run["xcom"].get("metrics"),
    }


def _failure_reason(log_file: Path) -> str | None:
    """The last exception line of a task's log (``SomeError: message`` -> message)."""
    if not log_file.is_file():
        return None
    for line in reversed(log_file.read_text().splitlines()):
        m = _EXC_LINE.match(line)
        if m:
            return m.group("msg").strip()
    return None


def _features_ready(features: Path) -> bool:
    return all((features / split / "data.parquet").is_file() for split in ("train", "val", "test"))


def ensure_config() -> None:
    """Copy the shipped default config into a new base directory that has none.

    The DAG's ``config_path`` param resolves against the base directory; a fresh
    ``CTR_PIPELINE_HOME`` starts with this checkout's ``config/model_config.yaml``.
    """
    target = paths.resolve(paths.DEFAULT_CONFIG)
    shipped = REPO / paths.DEFAULT_CONFIG
    if target.exists() or not shipped.is_file():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    shutil.copyfile(shipped, tmp)
    os.replace(tmp, target)
    print(f"📝 No config at {target}: copied the default from {shipped}", flush=True)


def ensure_features(rows: int) -> float:
    """Generate the default features when missing; return the seconds spent."""
    features = paths.resolve(paths.FEATURES_DIR)
    if _features_ready(features):
        return 0.0
    from ml.data.generate import describe, generate_features

    print(f"📦 No features at {features}: generating {rows:,} rows...", flush=True)
    start = time.perf_counter()
    report = generate_features(features, rows=rows, overwrite=True)
    for line in describe(report):
        print(line, flush=True)
    return time.perf_counter() - start


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
        "--rows", type=int, default=100_000, help="rows to generate when features are missing"
    )
    parser.add_argument("--verbose", "-v", action="store_true", help="show Airflow's own output")
    parser.add_argument("--summary-json", type=Path, help="also write the summary as JSON here")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    try:
        conf = parse_conf(args.conf) if args.conf else {}
        conf.update(parse_set(args.set))
        env = airflow_env(args.home)
        os.environ.update(
            {k: env[k] for k in (paths.ENV_VAR, "AIRFLOW_HOME", "PYTHONPATH") if k in env}
        )
        base = paths.base_dir()
        print(f"🏠 Project base: {base}   AIRFLOW_HOME: {env['AIRFLOW_HOME']}", flush=True)
        migrate_start = time.perf_counter()
        migrated = ensure_db(env)
        migrate_s = time.perf_counter() - migrate_start
        if migrated:
            print(
                f"🗄️  Airflow metadata database migrated (first use, {migrate_s:.1f} s)", flush=True
            )
        ensure_config()
        generate_s = ensure_features(args.rows)
    except (RunError, AirflowEnvError, paths.BaseDirError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    if conf:
        print(f"⚙️  conf: {json.dumps(conf)}", flush=True)
    log_dir = Path(env["AIRFLOW_HOME"]) / "logs" / "make_run" / time.strftime("%Y%m%d_%H%M%S")
    before = _last_run_id(env)
    _, lines = run_dags_test(env, conf, log_dir, args.verbose)
    run = read_run(env, before)
    total = time.perf_counter() - start
    status, summary = summarize(
        run,
        total_s=total,
        generate_s=generate_s,
        log_dir=log_dir,
        lines=lines,
        migrate_s=migrate_s if migrated else 0.0,
    )
    print("\n".join(summary), flush=True)
    if args.summary_json:
        data = summary_data(run, total_s=total, generate_s=generate_s, migrate_s=migrate_s)
        args.summary_json.write_text(json.dumps({"status": status, **data}, indent=2))
    return status


if __name__ == "__main__":
    sys.exit(main())
