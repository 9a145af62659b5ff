"""The run summary: one small JSON file per pipeline run that every step updates.

``make run`` prints it, notifications quote it, and a person can read it without
Airflow. It is keyed by the pipeline run (``dag_id`` and ``run_id``), lives under the
base directory at ``experiments/summaries/<dag_id>/<run slug>.json`` and is rewritten
atomically after each step, so a reader sees the state after the last finished step.

Keys (each step adds its own; absent until the step ran)::

    dag_id, run_id, logical_date     which pipeline run
    state        running | success | failed | skipped
    updated_at   UTC, ISO 8601
    steps        {step: {"state", "seconds", ...}} in the order they ran
    features_path, run_dir, metrics, gates, champion, baseline,
    model_version, registered_path, promoted, unchanged_since,
    model_choice {"chosen", "metric", "budget_s", "seconds", "reason", "candidates":
                  [{"family", "val_auc", "val_logloss", "epochs", "seconds", "skipped", ...}]}
                 when model.name auto chose the family (ml.training.auto)
    failure      {"step", "message"} when a step failed
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

from ml import paths
from ml.fsutil import atomic_write_json, read_json_object, utc_now

SUMMARIES_DIR = "experiments/summaries"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def summary_path(dag_id: str, run_id: str) -> Path:
    """``<base>/experiments/summaries/<dag_id>/<run slug>.json`` for one pipeline run."""
    slug = _UNSAFE.sub("_", run_id).strip("._")[:80] or "run"
    digest = hashlib.sha256(run_id.encode()).hexdigest()[:8]
    return paths.resolve(SUMMARIES_DIR) / _UNSAFE.sub("_", dag_id) / f"{slug}-{digest}.json"


def read_summary(dag_id: str, run_id: str) -> dict[str, Any] | None:
    """The summary of one run, or None when no step has written it yet."""
    path = summary_path(dag_id, run_id)
    if not path.is_file():
        return None
    return read_json_object(path, what="run summary")


def update_summary(dag_id: str, run_id: str, **fields: Any) -> dict[str, Any]:
    """Merge ``fields`` into the run's summary (``steps`` entries merge per step).

    Returns:
        The summary as written.
    """
    path = summary_path(dag_id, run_id)
    current = read_summary(dag_id, run_id) or {"dag_id": dag_id, "run_id": run_id, "steps": {}}
    steps = fields.pop("steps", None)
    current.update(fields)
    if steps:
        merged = dict(current.get("steps") or {})
        for name, info in steps.items():
            merged[name] = {**(merged.get(name) or {}), **info}
        current["steps"] = merged
    current["updated_at"] = utc_now()
    atomic_write_json(path, current)
    return current


def claim_notification(dag_id: str, run_id: str, key: str) -> bool:
    """True the first time ``key`` (e.g. ``success:notify_completion:1``) is claimed for
    this run, False after: one message per kind, task and try, however often a callback
    runs."""
    summary = read_summary(dag_id, run_id) or {}
    sent = list(summary.get("notifications") or [])
    if key in sent:
        return False
    update_summary(dag_id, run_id, notifications=[*sent, key])
    return True
