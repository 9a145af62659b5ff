"""What ``make run`` prints after ``airflow dags test``, from Airflow's own interfaces.

- The exit status of ``airflow dags test`` (1 when the DAG run failed).
- ``airflow dags list-runs -o json``: the run this invocation made (its logical date is
  the one ``make run`` passed), its ``run_id`` and state.
- ``airflow tasks states-for-dag-run -o json``: each task's state and duration.
- The run summary the pipeline writes (``ml.pipeline.summary``): metrics, champion,
  gates, version, paths, ``unchanged_since``, the failure. No Airflow command returns
  XComs, and nothing here reads Airflow's tables.

Without a summary (a pipeline that does not write one yet) the tasks' states and times
are shown, and a failure's message comes from the failed task's log.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

DAG_ID = "training_pipeline"
TASK_ORDER = (
    "validate_features",
    "train_model",
    "evaluate_model",
    "register_model",
    "notify_completion",
)
STRUCTLOG = re.compile(
    r"^\S+Z \[(?P<level>\w+)\s*\] (?P<msg>.*?)(?:\s+\[(?P<logger>[\w.]+)\](?P<rest>.*))?$"
)
EXC_LINE = re.compile(r"^(?P<type>[A-Za-z_][\w.]*(?:Error|Exception|Exit)): (?P<msg>.+)$")
_STATE_RANK = {"failed": 0, "upstream_failed": 1, "up_for_retry": 2, "running": 3, "success": 9}


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _seconds(start: Any, end: Any) -> float | None:
    s, e = _parse_time(start), _parse_time(end)
    return (e - s).total_seconds() if s and e else None


def find_run(runs: Any, logical_date: str) -> dict[str, Any] | None:
    """The row of ``dags list-runs -o json`` whose logical date is ``logical_date``."""
    want = _parse_time(logical_date)
    for row in runs if isinstance(runs, list) else []:
        if isinstance(row, dict) and _parse_time(row.get("logical_date")) == want:
            return row
    return None


def task_states(rows: Any) -> dict[str, dict[str, Any]]:
    """``tasks states-for-dag-run -o json`` -> task_id -> {state, seconds}.

    Mapped tasks appear once per map index: the worst state and the longest time count.
    """
    tasks: dict[str, dict[str, Any]] = {}
    for row in rows if isinstance(rows, list) else []:
        if not isinstance(row, dict) or "task_id" not in row:
            continue
        info = {"state": row.get("state"), "seconds": _seconds(row["start_date"], row["end_date"])}
        seen = tasks.get(row["task_id"])
        if seen is None:
            tasks[row["task_id"]] = info
            continue
        if _STATE_RANK.get(str(info["state"]), 5) < _STATE_RANK.get(str(seen["state"]), 5):
            seen["state"] = info["state"]
        seen["seconds"] = max(seen["seconds"] or 0.0, info["seconds"] or 0.0) or None
    return tasks


def ordered(tasks: Mapping[str, Any]) -> list[str]:
    """The DAG's five tasks in their order, then any others in Airflow's order."""
    return [t for t in TASK_ORDER if t in tasks] + [t for t in tasks if t not in TASK_ORDER]


def fmt_s(seconds: float | None) -> str:
    return "?" if seconds is None else f"{seconds:.1f} s"


def failure_reason(log_file: Path) -> str | None:
    """The last exception of a task's log with its whole message (continuation lines too).

    ``SomeError: 3 problem(s):`` followed by ``  - ...`` lines gives all of them.
    """
    if not log_file.is_file():
        return None
    lines = log_file.read_text(errors="replace").splitlines()
    for i in range(len(lines) - 1, -1, -1):
        m = EXC_LINE.match(lines[i])
        if m is None:
            continue
        message = [m.group("msg").strip()]
        for line in lines[i + 1 :]:
            if not line.strip() or STRUCTLOG.match(line) or line.startswith("Traceback"):
                break
            message.append(line.rstrip())
        return "\n".join(message)
    return None


def no_run_reason(lines: list[str]) -> str:
    """Why ``dags test`` made no run: the last exception line of its output."""
    match = next((m for m in map(EXC_LINE.match, reversed(lines)) if m), None)
    return match.group(0) if match else "see the log"


def format_gates(gates: Any) -> str | None:
    """The summary's ``gates`` in one line: ``min_auc ✅, max_auc_drop ❌ (...)``."""
    items: list[tuple[str, Any, str]] = []
    if isinstance(gates, dict):
        for name, value in gates.items():
            if isinstance(value, dict):
                passed = value.get("passed", value.get("ok"))
                items.append((str(name), passed, str(value.get("message") or "")))
            else:
                items.append((str(name), value, ""))
    elif isinstance(gates, list):
        for gate in gates:
            if isinstance(gate, dict):
                name = str(gate.get("name") or gate.get("gate") or "?")
                items.append((name, gate.get("passed", gate.get("ok")), ""))
            else:
                items.append((str(gate), None, ""))
    if not items:
        return None
    marks = {True: " ✅", False: " ❌"}
    return ", ".join(
        f"{name}{marks.get(passed, '') if isinstance(passed, bool) else ''}"
        + (f" ({note})" if note and passed is False else "")
        for name, passed, note in items
    )


def _success_lines(run: Mapping[str, Any], summary: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    metrics = summary.get("metrics") or {}
    for key in ("test_auc", "test_accuracy", "test_logloss"):
        if isinstance(metrics.get(key), (int, float)):
            out.append(f"   {key}: {metrics[key]:.4f}")
    champion = summary.get("champion") or metrics.get("champion")
    if isinstance(champion, dict) and champion.get("version"):
        auc = champion.get("test_auc")
        auc_text = f"test_auc {auc:.4f}" if isinstance(auc, (int, float)) else "scored"
        out.append(f"   vs production {champion['version']}: {auc_text}")
    gates = format_gates(summary.get("gates"))
    if gates:
        out.append(f"   Gates: {gates}")
    same = summary.get("unchanged_since")
    if same:
        version = same.get("version") if isinstance(same, dict) else same
        out.append(
            f"   Nothing changed since {version} (same data, config and code): training and "
            "registration skipped (param force_retrain=true retrains)"
        )
    if summary.get("model_version"):
        out.append(
            f"   Registered: {summary['model_version']}  →  {summary.get('registered_path')}"
        )
    if summary.get("card_path"):
        out.append(f"   Model card: {summary['card_path']}")
    if summary.get("promoted"):
        out.append(f"   Promoted to production: {summary.get('model_version')}")
    return out


def _task_line(tasks: Mapping[str, Mapping[str, Any]]) -> str:
    parts = []
    for task_id in ordered(tasks):
        info = tasks[task_id]
        state = info.get("state")
        parts.append(
            f"{task_id} {fmt_s(info.get('seconds'))}"
            + ("" if state == "success" else f" ({state})")
        )
    return "   Tasks: " + ", ".join(parts)


def summarize(
    run: Mapping[str, Any] | None,
    *,
    total_s: float,
    generate_s: float,
    log_dir: Path,
    lines: list[str],
    migrate_s: float = 0.0,
) -> tuple[int, list[str]]:
    """The closing summary lines and the exit status.

    Args:
        run: ``{"run_id", "state", "tasks": {task_id: {state, seconds}}, "summary"}`` (the
            run summary or None), or None when ``dags test`` made no run.
        total_s, generate_s, migrate_s: Wall seconds of the whole ``make run``, of data
            generation and of a first-use database migration.
        log_dir: Where the full output and the per-task logs are.
        lines: The output of ``airflow dags test`` (for a run that was never made).
    """
    out: list[str] = [""]
    if run is None:
        out += [
            f"❌ No DAG run was created: {no_run_reason(lines)}",
            f"   Full output: {log_dir / 'dags_test.log'}",
        ]
        return 1, out
    tasks: Mapping[str, Mapping[str, Any]] = run.get("tasks") or {}
    summary: Mapping[str, Any] = run.get("summary") or {}
    train_s = (tasks.get("train_model") or {}).get("seconds")
    if run["state"] != "success":
        return 1, out + _failure_lines(run, tasks, summary, log_dir, total_s)
    out.append(f"✅ DAG run {run['run_id']}: success")
    out += _success_lines(run, summary)
    if not summary:
        out.append(_task_line(tasks))
    overhead = total_s - (train_s or 0.0) - generate_s
    out.append(
        f"   Time: {fmt_s(total_s)} total = training {fmt_s(train_s)} (train_model)"
        + (f" + data generation {fmt_s(generate_s)}" if generate_s else "")
        + f" + orchestration {fmt_s(overhead)}"
        + (f" (of which first-use database migration {fmt_s(migrate_s)})" if migrate_s else "")
    )
    out.append(f"   Logs: {log_dir}")
    return 0, out


def _failure_lines(
    run: Mapping[str, Any],
    tasks: Mapping[str, Mapping[str, Any]],
    summary: Mapping[str, Any],
    log_dir: Path,
    total_s: float,
) -> list[str]:
    out = [f"❌ DAG run {run['run_id']} {str(run['state']).upper()}"]
    failed = [t for t in ordered(tasks) if (tasks.get(t) or {}).get("state") == "failed"]
    first = failed[0] if failed else None
    failure = summary.get("failure") if isinstance(summary.get("failure"), dict) else None
    if first or failure:
        task = first or str((failure or {}).get("step"))
        log_file = log_dir / f"{task}.log"
        message = (failure or {}).get("message") or failure_reason(log_file)
        if message:
            # The whole message: a validation error lists every problem on its own line.
            head, *rest = str(message).splitlines() or [""]
            out.append(f"   Failed task: {task}: {head}")
            out += [f"      {line}" for line in rest]
        else:
            out.append(f"   Failed task: {task}")
        out.append(f"   Task log: {log_file}")
    # Only tasks meant to run: "skipped" is Airflow's word for a task the run chose not to
    # run (the tuning group when tuning_trials=0, a short-circuit), never for a failure's
    # downstream (that is "upstream_failed").
    not_run = [
        t for t in ordered(tasks) if (tasks.get(t) or {}).get("state") not in ("success", "skipped")
    ]
    if not_run:
        out.append(f"   Did not complete: {', '.join(not_run)}")
    out.append(f"   Full output: {log_dir / 'dags_test.log'}")
    out.append(f"   Time: {fmt_s(total_s)} total")
    return out


def summary_data(
    run: Mapping[str, Any] | None, *, total_s: float, generate_s: float, migrate_s: float
) -> dict[str, Any]:
    """The numbers of the summary as JSON (``--summary-json``; used by the benchmark)."""
    if run is None:
        return {"state": None, "total_s": total_s}
    tasks = run.get("tasks") or {}
    summary = run.get("summary") or {}
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
        "model_version": summary.get("model_version"),
        "registered_path": summary.get("registered_path"),
        "metrics": summary.get("metrics"),
        "summary": summary or None,
    }
