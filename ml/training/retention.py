"""Retention for training run directories: ``ctr-pipeline runs prune``.

Run directories only grow; this removes old ones by a policy, dry-run by default:

- the newest ``keep_last`` complete runs are always kept;
- of the others, only runs older than ``older_than_days`` (by their last change) go;
- a run a registered model version came from is kept (its lineage points there), unless
  ``include_registered``;
- an incomplete run younger than a day may still be training: it is kept.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ml import paths
from ml.registry.layout import STAGING
from ml.training import run_dir as rd

DAY_S = 86_400.0


@dataclass
class PruneReport:
    """What :func:`prune_runs` removed (or would), and what it kept and why."""

    removed: list[Path] = field(default_factory=list)
    kept: list[tuple[Path, str]] = field(default_factory=list)
    freed_bytes: int = 0
    dry_run: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "removed": [str(p) for p in self.removed],
            "kept": [{"run_dir": str(p), "why": why} for p, why in self.kept],
            "freed_bytes": self.freed_bytes,
            "dry_run": self.dry_run,
        }


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def _age_s(path: Path, now: float) -> float:
    newest = max([path.stat().st_mtime, *(p.stat().st_mtime for p in path.iterdir())])
    return now - newest


def registered_sources(models_dir: str | None = None) -> dict[Path, str]:
    """Local run directories that registered versions came from -> ``"name vN"``.

    Args:
        models_dir: the registry root, a path or a URL; default
            ``$CTR_PIPELINE_REGISTRY``, else ``models`` (:func:`ml.paths.registry_root`).
    """
    from ml.errors import CtrPipelineError
    from ml.registry.model_registry import ModelRegistry
    from ml.storage.url import is_url

    registry = ModelRegistry(models_dir or paths.registry_root())
    out: dict[Path, str] = {}
    for name, versions in registry.list_models(STAGING).items():
        for version in versions:
            try:
                source = registry.show(name, version, STAGING)["metadata"]["source"]
            except (CtrPipelineError, KeyError, TypeError):
                continue
            run_dir = source.get("run_dir")
            if run_dir and not is_url(run_dir):  # a run in a bucket is not pruned here
                out[Path(run_dir).resolve()] = f"{name} {version}"
    return out


def prune_runs(
    runs_dir: str,
    *,
    keep_last: int,
    older_than_days: float,
    protected: dict[Path, str] | None = None,
    include_registered: bool = False,
    registry: str | None = None,
    dry_run: bool = True,
    now: float | None = None,
) -> PruneReport:
    """Remove run directories under ``runs_dir`` by the module's policy.

    Args:
        runs_dir: directory of runs (relative: against the base directory).
        keep_last: the newest complete runs always kept.
        older_than_days: only runs not changed for this many days may go.
        protected: run directory -> why it must stay (default: registered versions' runs).
        include_registered: allow removing runs that registered versions came from.
        registry: the registry whose versions' runs are protected (a path or a URL;
            default ``$CTR_PIPELINE_REGISTRY``, else ``models``).
        dry_run: only report.
        now: the current time (tests).
    """
    root = paths.resolve(runs_dir)
    now = time.time() if now is None else now
    report = PruneReport(dry_run=dry_run)
    if not root.is_dir():
        return report
    if protected is None:
        protected = {} if include_registered else registered_sources(registry)
    runs = sorted((p for p in root.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)
    complete = [p for p in runs if rd.is_complete(p)]
    newest = set(complete[-keep_last:]) if keep_last > 0 else set()
    for run in runs:
        age = _age_s(run, now)
        why = None
        if run in newest:
            why = f"one of the newest {keep_last} complete runs"
        elif not include_registered and run.resolve() in protected:
            why = f"registered as {protected[run.resolve()]}"
        elif not rd.is_complete(run) and age < DAY_S:
            why = "incomplete and changed within a day (it may still be training)"
        elif age < older_than_days * DAY_S:
            why = f"changed {age / DAY_S:.1f} day(s) ago (< {older_than_days:g})"
        if why:
            report.kept.append((run, why))
            continue
        report.freed_bytes += _size(run)
        report.removed.append(run)
        if not dry_run:
            shutil.rmtree(run)
    return report
