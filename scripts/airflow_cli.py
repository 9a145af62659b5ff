"""Run several ``airflow`` CLI commands in one interpreter, and leave it quickly.

Every ``airflow`` process pays Airflow's start-up (~3 s here), so ``make run`` asks one
process for everything it needs from Airflow's own command line: migrate the metadata
database if ``airflow db check-migrations`` says so, ``airflow dags test``, then
``airflow dags list-runs -o json`` and ``airflow tasks states-for-dag-run -o json`` for
the run it just made; ``make airflow`` creates its users the same way.

Leaving quickly: a process that ran a DAG holds ~950k objects the garbage collector
tracks (torch and sympy, Airflow's in-process execution API whose versioned FastAPI
routes alone are ~15k ``Dependant`` objects, pydantic schemas, SQLAlchemy). Interpreter
shutdown runs several full collections over all of them: ~4-5 s on this machine after
the run is already recorded (seen with py-spy: ``gc_collect_main`` under
``Py_FinalizeEx``). ``gc.freeze()`` (a public API) moves them to the permanent
generation that those collections skip; atexit hooks still run as usual. Teardown then
takes ~0.3 s.

Input: a JSON object on stdin (so passwords never appear in ``ps``)::

    {"migrate": true,            # check-migrations, and db migrate when needed
     "report": "/path/report.json",
     "commands": [{"argv": ["dags", "test", "training_pipeline"], "capture": false},
                  {"argv": ["dags", "list-runs", "training_pipeline", "-o", "json"],
                   "capture": true}]}

A command with ``capture`` has its stdout kept (and parsed as JSON when it holds a JSON
line) in the report instead of printed. The report::

    {"migrated": bool, "migrate_seconds": float,
     "commands": [{"exit_status": int, "seconds": float, "output": str, "json": ...}]}

Exit status: 0 when every command succeeded, else that of the first one that failed.
"""

from __future__ import annotations

import contextlib
import gc
import io
import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any


def _status(exc: SystemExit) -> int:
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=sys.stderr, flush=True)
    return 1


def json_in_output(text: str) -> Any:
    """The last line of ``text`` that parses as a JSON array or object, else None.

    ``airflow ... -o json`` can print log lines (warnings at import) before its document.
    """
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line[:1] in ("[", "{"):
            with contextlib.suppress(ValueError):
                return json.loads(line)
    return None


def run_command(
    parser: Any, argv: list[str], *, capture: bool, quiet: bool = False
) -> dict[str, Any]:
    """One ``airflow <argv>`` in this interpreter; returns its exit status and output."""
    out = io.StringIO()
    start = time.perf_counter()
    redirect = contextlib.redirect_stdout(out) if capture else contextlib.nullcontext()
    try:
        with redirect:
            args = parser.parse_args(argv)
            if hasattr(args, "output"):
                from airflow.cli.utils import redirect_stdout_log_handlers_to_stderr

                redirect_stdout_log_handlers_to_stderr()
            args.func(args)
        status = 0
    except SystemExit as exc:
        status = _status(exc)
    except Exception as exc:
        if quiet:
            print(f"{type(exc).__name__}: {exc}", file=out)
        else:
            traceback.print_exc()
        status = 1
    sys.stdout.flush()
    result: dict[str, Any] = {"exit_status": status, "seconds": time.perf_counter() - start}
    if capture:
        result["output"] = out.getvalue()
        result["json"] = json_in_output(result["output"])
    return result


def ensure_migrated(parser: Any) -> tuple[bool, float]:
    """``airflow db check-migrations``, then ``airflow db migrate`` when it fails.

    Returns:
        (whether a migration ran, its seconds).

    Raises:
        SystemExit: The migration failed (its output says why).
    """
    check = ["db", "check-migrations", "--migration-wait-timeout", "0"]
    if run_command(parser, check, capture=True, quiet=True)["exit_status"] == 0:
        return False, 0.0
    result = run_command(parser, ["db", "migrate"], capture=False)
    if result["exit_status"] != 0:
        raise SystemExit(result["exit_status"])
    return True, float(result["seconds"])


def _write_report(path: Path, report: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(report, indent=2, default=str))
    os.replace(tmp, path)


def main() -> int:
    request = json.loads(sys.stdin.read() or "{}")
    from airflow import configuration  # first, as airflow/__main__.py does
    from airflow.cli import cli_parser

    if request.get("commands") or request.get("migrate"):
        configuration.write_default_airflow_configuration_if_needed()
    parser = cli_parser.get_parser()
    report: dict[str, Any] = {"migrated": False, "migrate_seconds": 0.0, "commands": []}
    status = 0
    try:
        if request.get("migrate"):
            report["migrated"], report["migrate_seconds"] = ensure_migrated(parser)
        for command in request.get("commands", []):
            result = run_command(parser, list(command["argv"]), capture=bool(command["capture"]))
            report["commands"].append(result)
            status = status or result["exit_status"]
    except SystemExit as exc:
        status = _status(exc) or 1
        report["error"] = "airflow db migrate failed"
    if request.get("report"):
        _write_report(Path(request["report"]), report)
    sys.stdout.flush()
    sys.stderr.flush()
    gc.freeze()
    return status


if __name__ == "__main__":
    sys.exit(main())
