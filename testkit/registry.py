"""Helpers shared by the registry's tests and ``benchmarks/bench_registry``.

Not part of the public API: fake training runs (with a real, tiny checkpoint), the
consistency check every crash test ends with (:func:`check_consistent`), a registry
laid out at scale for the listing benchmarks, and the kill-at-a-random-moment trial.
The fault-injection harness (a fault before each file-system mutation) is in
:mod:`testkit.registry_faults`.
"""

from __future__ import annotations

import contextlib
import io
import json
import multiprocessing
import os
import random
import re
import signal
import time
from pathlib import Path
from typing import Any

from ml.errors import NoPreviousVersionError, RegistryError
from ml.registry._lock import probe_lock
from ml.registry.layout import (
    INDEX,
    INTENT,
    LOCK,
    MANIFEST,
    PRODUCTION,
    STAGES,
    STAGING,
    WRITERS,
    Layout,
)
from ml.registry.model_registry import ModelRegistry
from ml.training.run_dir import COMPLETE, CONFIG_YAML, METRICS_JSON, MODEL_BEST, RUN_JSON

DATA_DIGEST = "d" * 64
CONFIG_DIGEST = "c" * 64
CODE_DIGEST = "e" * 64


def checkpoint_bytes(payload: bytes) -> bytes:
    """A checkpoint ``load_checkpoint`` accepts whose weights are ``payload`` (distinct
    payloads give distinct files)."""
    import torch

    weights = torch.frombuffer(bytearray(payload), dtype=torch.uint8) if payload else torch.zeros(1)
    buf = io.BytesIO()
    torch.save(
        {
            "format_version": 1,
            "model_name": "logreg",
            "model_args": {},
            "state_dict": {"w": weights},
            "preprocessor": {},
        },
        buf,
    )
    return buf.getvalue()


def make_run_dir(
    path: Path,
    model_bytes: bytes,
    *,
    complete: bool = True,
    run_info: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
) -> Path:
    """A directory shaped like a finished training run (what ``register`` reads).

    ``model_best.pt`` is a small real checkpoint whose weights are ``model_bytes``;
    ``run.json`` records the lineage digests above unless ``run_info`` replaces it.
    """
    path.mkdir(parents=True, exist_ok=True)
    (path / MODEL_BEST).write_bytes(checkpoint_bytes(model_bytes))
    (path / CONFIG_YAML).write_text("experiment_name: ctr_model\nseed: 42\n")
    default_metrics = {"test_auc": 0.75, "test_logloss": 0.45, "history": [{"epoch": 1}]}
    (path / METRICS_JSON).write_text(json.dumps(metrics or default_metrics))
    info = run_info
    if info is None:
        info = {
            "data_fingerprint": {"digest": DATA_DIGEST, "files": {}, "schema": {}},
            "code_version": {"package": "0.1.0", "source_digest": CODE_DIGEST},
        }
    (path / RUN_JSON).write_text(json.dumps(info))
    if complete:
        (path / COMPLETE).write_text("ok\n")
    return path


def flip_byte(path: Path, offset: int = 10) -> None:
    """Change one bit of a file (what ``verify`` must catch)."""
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def age_versions(registry: ModelRegistry, name: str, days: float = 2) -> None:
    """Make every version and archived version of ``name`` look ``days`` old (for
    retention tests): the index's ``created_at``, manifests' mtimes, archive stamps."""
    old = time.time() - days * 86_400
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(old))
    index = Layout(registry.base_dir).meta_file(name, INDEX)
    iso = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(old))
    index.write_text(re.sub(r'"created_at":"[^"]*"', f'"created_at":"{iso}"', index.read_text()))
    for manifest in registry.base_dir.glob(f"*/{name}/v*/{MANIFEST}"):
        os.utime(manifest, (old, old))
    for archived in registry.base_dir.glob(f"*/{name}/.archive/*"):
        archived.rename(archived.with_name(re.sub(r"\d{8}T\d{6}Z", stamp, archived.name)))


# --- what a crash must never leave --------------------------------------------------------


def expected_state(events: list[dict[str, Any]]) -> dict[str, Any]:
    """Staging and production versions and ``current`` that the history implies."""
    stages: dict[str, set[str]] = {STAGING: set(), PRODUCTION: set()}
    current = canary = None
    for ev in events:
        kind = ev.get("event")
        if kind == "canary":
            canary = ev.get("version")
        if kind == "register":
            stages[STAGING].add(str(ev.get("version")))
        elif kind in ("promote", "rollback"):
            stages[PRODUCTION].add(str(ev.get("to")))
            current = ev.get("to")
        elif kind == "delete":
            stages.get(str(ev.get("stage")), set()).discard(str(ev.get("version")))
            if ev.get("was_current"):
                current = None
    return {
        STAGING: sorted(stages[STAGING], key=lambda v: int(v[1:])),
        PRODUCTION: sorted(stages[PRODUCTION], key=lambda v: int(v[1:])),
        "current": current,
        "canary": canary,
    }


def actual_state(registry: ModelRegistry, name: str) -> dict[str, Any]:
    return {
        STAGING: registry.list_models(STAGING).get(name, []),
        PRODUCTION: registry.list_models(PRODUCTION).get(name, []),
        "current": registry.current_version(name),
        "canary": (registry.get_canary(name) or {}).get("version"),
    }


def history_problems(registry: ModelRegistry, name: str) -> list[str]:
    """Where ``registry history`` disagrees with ``registry list`` (empty: they agree)."""
    try:
        events = registry.history(name)
    except RegistryError as exc:
        if registry.list_models(STAGING).get(name) or registry.list_models(PRODUCTION).get(name):
            return [f"history unreadable: {exc!r}"]
        return []
    expected, actual = expected_state(events), actual_state(registry, name)
    return [
        f"history says {key} = {expected[key]}, the registry has {actual[key]}"
        for key in (STAGING, PRODUCTION, "current", "canary")
        if expected[key] != actual[key]
    ]


def check_consistent(registry: ModelRegistry, name: str, *, history: bool = True) -> list[str]:
    """Problems a reader could observe; empty when the registry is consistent.

    The registry opens; every visible version verifies; version numbers are distinct;
    ``current`` (if any) points at a visible production version; no lock is held; with
    ``history``, the history agrees with the state (after the history has finished a dead
    writer's operation: reading it writes) and no operation is left pending.
    """
    problems: list[str] = []
    try:
        registry = ModelRegistry(registry.base_dir, lock_timeout=registry.lock_timeout)
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
    except Exception as exc:  # any failure to read is a finding
        return [f"registry unreadable: {exc!r}"]
    if history:
        problems += history_problems(registry, name)
    meta = Layout(registry.base_dir).meta_dir(name)
    if probe_lock(meta / LOCK) == "held":
        problems.append("the model's lock is still held")
    if (meta / WRITERS).is_dir():
        held = [p.name for p in (meta / WRITERS).iterdir() if probe_lock(p) == "held"]
        problems += [f"writer lock {h} still held" for h in held]
    intent = meta / INTENT
    if history and intent.exists() and json.loads(intent.read_text()).get("state") == "pending":
        problems.append("an operation is still pending after recovery")
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


# --- a registry at scale, laid out directly -----------------------------------------------


def lay_out_versions(base: Path, name: str, versions: int) -> None:
    """``versions`` staging versions as the registry writes them (directory, manifest,
    ``published-staging``, index line), without copying models: for listing benchmarks."""
    layout = Layout(base)
    model_dir = layout.model_dir(STAGING, name)
    model_dir.mkdir(parents=True)
    layout.meta_dir(name).mkdir(parents=True)
    manifest = json.dumps({"format_version": 1, "files": {}}).encode()
    lines = []
    for n in range(1, versions + 1):
        vdir = model_dir / f"v{n}"
        vdir.mkdir()
        (vdir / MANIFEST).write_bytes(manifest)
        fact = {
            "version": f"v{n}",
            "created_at": "2026-11-29T18:21:26.123Z",
            "test_auc": 0.75,
            "test_logloss": 0.45,
            "dag_id": "training_pipeline",
            "run_id": f"scheduled__{n}",
            "run_dir": f"/srv/ctr/experiments/runs/ctr_model_{n}",
            "data_digest": f"{n:064x}",
            "config_digest": CONFIG_DIGEST,
            "code_digest": CODE_DIGEST,
            "source_key": f"{n:064x}"[::-1],
        }
        lines.append(json.dumps(fact, separators=(",", ":")) + "\n")
    layout.published_file(STAGING, name).write_text(f"1-{versions};\n")
    layout.meta_file(name, INDEX).write_text("".join(lines))


# --- SIGKILL at random moments ------------------------------------------------------------


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
