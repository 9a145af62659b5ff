"""Helpers shared by the registry's crash/concurrency tests and ``benchmarks/bench_registry``.

Not part of the public API: fake training runs, a consistency check, and the
kill-at-a-random-point trial.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import random
import signal
import time
from pathlib import Path
from typing import Any

from ml.registry.errors import NoPreviousVersionError
from ml.registry.model_registry import MANIFEST, PRODUCTION, STAGES, ModelRegistry


def make_run_dir(path: Path, model_bytes: bytes, *, complete: bool = True) -> Path:
    """A directory shaped like a finished training run (what ``register`` reads)."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "model_best.pt").write_bytes(model_bytes)
    (path / "config.yaml").write_text("experiment_name: ctr_model\nseed: 42\n")
    (path / "metrics.json").write_text(
        json.dumps({"test_auc": 0.75, "test_logloss": 0.45, "history": [{"epoch": 1}]})
    )
    (path / "run.json").write_text(
        json.dumps({"data_fingerprint": {"digest": "d" * 64, "files": {}, "schema": {}}})
    )
    if complete:
        (path / "COMPLETE").write_text("ok\n")
    return path


def check_consistent(registry: ModelRegistry, name: str) -> list[str]:
    """Problems a reader could observe; empty when the registry is consistent.

    Every visible version verifies against its manifest, version numbers are distinct,
    ``current`` (if any) points at a visible production version, the history parses.
    """
    problems: list[str] = []
    for stage in STAGES:
        versions = registry.list_models(stage).get(name, [])
        if len(set(versions)) != len(versions):
            problems.append(f"{stage}: duplicate versions {versions}")
        for version in versions:
            report = registry.verify(name, version, stage)
            problems += [f"{stage} {version}: {p}" for p in report.problems]
    current = registry.current_version(name)
    if current is not None and current not in registry.list_models(PRODUCTION).get(name, []):
        problems.append(f"current -> {current}, which is not a visible production version")
    try:
        registry.history(name)
    except Exception as exc:  # any failure to read is a finding
        problems.append(f"history unreadable: {exc!r}")
    return problems


def leftovers(registry: ModelRegistry, name: str) -> list[str]:
    """Temporary or incomplete entries a crashed writer left (what gc should remove)."""
    found = []
    for stage in STAGES:
        d = registry.base_dir / stage / name
        if not d.is_dir():
            continue
        for entry in os.scandir(d):
            if entry.name.startswith((".tmp-", ".current-")) or (
                entry.name.startswith("v") and not (Path(entry.path) / MANIFEST).is_file()
            ):
                found.append(entry.path)
    return found


def _churn(base_dir: str, name: str, run_dirs: list[str], seed: int) -> None:
    """Register and promote forever (until killed)."""
    rng = random.Random(seed)
    reg = ModelRegistry(base_dir, lock_timeout=30)
    while True:
        if rng.random() < 0.5:
            reg.register(rng.choice(run_dirs), name, force=True)
        else:
            versions = reg.list_models("staging").get(name, [])
            if versions:
                reg.promote_to_production(name, rng.choice(versions[-5:]))
            if rng.random() < 0.2 and reg.current_version(name):
                with contextlib.suppress(NoPreviousVersionError):
                    reg.rollback(name)


def kill_trials(
    base_dir: Path, name: str, run_dirs: list[Path], trials: int, max_delay: float, seed: int = 0
) -> dict[str, Any]:
    """SIGKILL a register/promote/rollback loop at random moments, checking after each.

    Returns counts and every inconsistency found (``problems`` must be empty).
    """
    ctx = multiprocessing.get_context("fork")
    rng = random.Random(seed)
    problems: list[str] = []
    reg = ModelRegistry(base_dir, lock_timeout=10)
    killed = 0
    for trial in range(trials):
        proc = ctx.Process(
            target=_churn, args=(str(base_dir), name, [str(p) for p in run_dirs], seed + trial)
        )
        proc.start()
        time.sleep(rng.uniform(0.0, max_delay))
        if proc.is_alive():
            assert proc.pid is not None
            os.kill(proc.pid, signal.SIGKILL)
            killed += 1
        proc.join()
        if proc.exitcode != -signal.SIGKILL:
            problems.append(f"trial {trial}: the writer exited by itself ({proc.exitcode})")
        problems += [f"trial {trial}: {p}" for p in check_consistent(reg, name)]
    leftover_before = len(leftovers(reg, name))
    gc_report = reg.gc(min_age=0)
    after = leftovers(reg, name)
    if after:
        problems.append(f"gc left {after}")
    result = reg.register(run_dirs[0], name, force=True)
    problems += [f"after gc: {p}" for p in check_consistent(reg, name)]
    return {
        "trials": trials,
        "killed": killed,
        "leftovers_before_gc": leftover_before,
        "gc_removed": len(gc_report.removed),
        "final_version": result.version,
        "problems": problems,
    }
