"""Experiment tracking from the run directories themselves (no tracking server).

Every training run directory (``ml.training.run_dir``) already records its metrics,
config, provenance and per-epoch history; this module lists them, shows one, and says
which registry version (if any) each became.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ml import paths
from ml.errors import CardError, CtrPipelineError
from ml.fsutil import display_path, read_json_object
from ml.training import run_dir as rd


def default_runs_dir() -> Path:
    """The default config's ``output.runs_dir`` (``experiments/runs`` without a config)."""
    from ml.config import load_config

    try:
        return paths.resolve(load_config(paths.DEFAULT_CONFIG).output.runs_dir)
    except CtrPipelineError:
        return paths.resolve(paths.RUNS_DIR)


def _read(path: Path) -> dict[str, Any]:
    try:
        return read_json_object(path) if path.is_file() else {}
    except CtrPipelineError:
        return {}


def run_record(run: Path, registered: dict[str, list[str]] | None = None) -> dict[str, Any]:
    """One run's list row: state, metrics, timings, producing DAG run, registrations."""
    metrics, info = _read(run / rd.METRICS_JSON), _read(run / rd.RUN_JSON)
    if rd.is_complete(run):
        state = "complete"
    elif (run / rd.CHECKPOINT_LAST).is_file():
        state = "interrupted"
    else:
        state = "incomplete"
    record: dict[str, Any] = {"name": run.name, "path": display_path(run), "state": state}
    for key in ("model", "test_auc", "test_logloss", "val_auc", "best_epoch", "epochs_run"):
        record[key] = metrics.get(key)
    record["train_time_s"] = metrics.get("train_time_s")
    for key in ("started_at", "finished_at", "dag_id", "run_id", "device"):
        record[key] = info.get(key)
    record["registered"] = (registered or {}).get(os.path.realpath(run), [])
    return record


def registered_runs(registry: Any) -> dict[str, list[str]]:
    """Real run-directory path -> ``["name vN", ...]`` for every staging version."""
    from ml.registry.layout import STAGING

    out: dict[str, list[str]] = {}
    try:
        models = registry.list_models(STAGING)
    except CtrPipelineError:
        return out
    for name, versions in models.items():
        for version in versions:
            try:
                meta = registry.show(name, version, STAGING)["metadata"]
            except CtrPipelineError:
                continue
            src = (meta.get("source") or {}).get("run_dir")
            if src:
                out.setdefault(str(src), []).append(f"{name} {version}")
    return out


def list_runs(
    runs_dir: str | os.PathLike[str] | None = None, *, registry: Any = None
) -> list[dict[str, Any]]:
    """Every run directory under ``runs_dir``, oldest first (by name: its start time)."""
    root = paths.resolve(runs_dir) if runs_dir is not None else default_runs_dir()
    if not root.is_dir():
        return []
    registered = registered_runs(registry) if registry is not None else {}
    runs = sorted(
        (p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")),
        key=lambda p: p.name,
    )
    return [run_record(p, registered) for p in runs]


def resolve_run(ref: str, runs_dir: str | os.PathLike[str] | None = None) -> Path:
    """A run by directory name (under ``runs_dir``), path, or ``latest`` (newest complete).

    Raises:
        CardError: no such run directory.
    """
    root = paths.resolve(runs_dir) if runs_dir is not None else default_runs_dir()
    if ref == "latest":
        complete = [r for r in list_runs(root) if r["state"] == "complete"]
        if not complete:
            raise CardError(f"no complete training run under {display_path(root)}")
        return paths.resolve(complete[-1]["path"])
    for candidate in (root / ref, paths.resolve(ref)):
        if candidate.is_dir():
            return candidate
    raise CardError(
        f"no training run {ref!r} under {display_path(root)} (and no such directory); "
        "see `ctr-pipeline runs list`"
    )


def show_run(run: Path, *, registry: Any = None) -> dict[str, Any]:
    """Everything one run recorded: metrics (with history), run.json, config, files."""
    registered = registered_runs(registry) if registry is not None else {}
    config = run / rd.CONFIG_YAML
    return {
        **run_record(run, registered),
        "metrics": _read(run / rd.METRICS_JSON),
        "run_info": _read(run / rd.RUN_JSON),
        "config": config.read_text(encoding="utf-8") if config.is_file() else None,
        "files": sorted(p.name for p in run.iterdir() if p.is_file()),
    }
