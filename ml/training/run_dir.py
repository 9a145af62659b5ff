"""Training run directories: their files, their names, and which run belongs to whom.

A run directory ``<runs_dir>/<name>/`` holds::

    model_best.pt        best checkpoint by the early-stopping monitor (ml.training.checkpoint)
    checkpoint_last.pt   resume state after the latest epoch (removed when complete)
    config.yaml          the exact config trained with (its recorded form)
    metrics.json         val/test metrics, timings, vocabulary, per-epoch history
    run.json             provenance: data fingerprint, config digest, code version, seed,
                         times, host, the pipeline run that asked for it
    COMPLETE             written last; a directory without it is not a finished run
    candidates/<family>/ model.name auto only: each candidate family's own run directory
                         (the files above are the chosen one's; ml.training.auto)

Every file is written atomically (``ml.fsutil``), so a crash leaves the old file or the
new one. This module is the only one that spells these names.

``runs_dir`` may be a bucket prefix (``s3://bucket/runs``): the same names as object
keys, plus ``STARTED``, created with ``If-None-Match: *`` to claim a run's name. Training
works in a local copy and uploads each checkpoint as it is written, ``COMPLETE`` last
(:mod:`ml.training.remote_run`), so a retry on another host resumes from the bucket.

Names: ``<experiment_name>_<YYYYmmdd_HHMMSS>`` for a run started by hand, and
``<experiment_name>_<YYYYmmdd_HHMMSS>_<key>[_<n>]`` for a run started by a pipeline run,
where ``key`` (:func:`run_key`) identifies the pipeline run: ``(dag_id, logical date)``
when the run has a logical date, else ``(dag_id, run_id)``. Every try of a task, a
cleared task and ``airflow tasks test <dag> <task> <date>`` of the same date find the same
directories by their key (:func:`runs_for_key`); the ``_<n>`` suffix separates runs of
one key that trained on different data or configs.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ml import paths
from ml.errors import TrainingError
from ml.fsutil import atomic_write_text, read_json_object, utc_now

MODEL_BEST = "model_best.pt"
CHECKPOINT_LAST = "checkpoint_last.pt"
CONFIG_YAML = "config.yaml"
METRICS_JSON = "metrics.json"
RUN_JSON = "run.json"
COMPLETE = "COMPLETE"
#: ``model.name: auto``: the candidates' run directories, one per family, inside the run.
CANDIDATES_DIR = "candidates"
#: In a bucket only: claims the run's name (created once, with If-None-Match).
STARTED = "STARTED"
#: Test-split labels and scores (the challenger's and production's) written by evaluate.
TEST_PREDICTIONS = "test_predictions.npz"
#: Every file a complete run holds.
RUN_FILES = (MODEL_BEST, CONFIG_YAML, METRICS_JSON, RUN_JSON, COMPLETE)

STAMP_FORMAT = "%Y%m%d_%H%M%S"
_NAME_RE = re.compile(r"(?P<stamp>\d{8}_\d{6})(?:_(?P<key>\d{10}))?(?:_(?P<n>\d+))?\Z")


def run_key(dag_id: str, *, logical_date: datetime | None, run_id: str | None) -> str:
    """Ten digits identifying one pipeline run, stable across tries, clears and tests.

    Args:
        dag_id: the pipeline (``training_pipeline``, or ``ctr-pipeline`` for the CLI).
        logical_date: the run's logical date; runs with one are keyed by it (so
            ``airflow tasks test ... 2024-11-15`` of one task finds another's run).
        run_id: used when there is no logical date.
    """
    if logical_date is not None:
        ident = logical_date.astimezone(timezone.utc).isoformat()
    elif run_id:
        ident = run_id
    else:
        raise ValueError("a run key needs a logical date or a run id")  # internal invariant
    digest = hashlib.sha256(f"{dag_id}\n{ident}".encode()).hexdigest()
    return f"{int(digest[:16], 16) % 10**10:010d}"


def _parse(name: str, experiment_name: str) -> re.Match[str] | None:
    prefix = f"{experiment_name}_"
    return _NAME_RE.match(name[len(prefix) :]) if name.startswith(prefix) else None


def key_runs(names: list[str], experiment_name: str, key: str) -> list[str]:
    """The names among ``names`` that are runs of ``key``, oldest first (``_<n>`` order)."""
    found = []
    for name in names:
        m = _parse(name, experiment_name)
        if m and m.group("key") == key:
            found.append((int(m.group("n") or 1), name))
    return [name for _, name in sorted(found)]


def candidate_names(
    existing: list[str], experiment_name: str, key: str | None, when: datetime | None
) -> list[str]:
    """Names to try, in order, for a new run of ``key`` given its ``existing`` runs."""
    if when is None:
        now = datetime.now(timezone.utc) if key else None
        stamp = now.strftime(STAMP_FORMAT) if now else time.strftime(STAMP_FORMAT)
    else:
        stamp = when.astimezone(timezone.utc).strftime(STAMP_FORMAT)
    first = 1
    if existing:  # later runs of a key keep its first timestamp and count up
        m = _parse(existing[-1], experiment_name)
        assert m is not None
        stamp, first = m.group("stamp"), int(m.group("n") or 1) + 1
    base = f"{experiment_name}_{stamp}" + (f"_{key}" if key else "")
    return [base if n == 1 else f"{base}_{n}" for n in range(first, first + 1000)]


def runs_for_key(runs_dir: str | os.PathLike[str], experiment_name: str, key: str) -> list[Path]:
    """The run directories of one pipeline run, oldest first (by their ``_<n>`` suffix)."""
    root = paths.resolve(runs_dir)
    if not root.is_dir():
        return []
    found: list[tuple[int, Path]] = []
    for entry in root.iterdir():
        m = _parse(entry.name, experiment_name)
        if m and m.group("key") == key and entry.is_dir():
            found.append((int(m.group("n") or 1), entry))
    return [p for _, p in sorted(found)]


def new_run_dir(
    runs_dir: str | os.PathLike[str],
    experiment_name: str,
    *,
    key: str | None = None,
    when: datetime | None = None,
) -> Path:
    """Create and return a fresh run directory.

    Args:
        runs_dir: parent directory (relative: against the base directory).
        experiment_name: the name prefix.
        key: the pipeline run's :func:`run_key` (none for a run started by hand).
        when: the timestamp in the name (default: now, UTC for keyed runs, local time
            otherwise).

    Two runs that would share a name get ``_2``, ``_3``... suffixes.
    """
    root = paths.resolve(runs_dir)
    root.mkdir(parents=True, exist_ok=True)
    existing = [p.name for p in runs_for_key(root, experiment_name, key)] if key else []
    for name in candidate_names(existing, experiment_name, key, when):
        candidate = root / name
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return candidate
    raise TrainingError(f"could not create a unique run directory under {root}")


def candidate_dir(run_dir: Path, family: str) -> Path:
    """The run directory of ``family``'s candidate inside an auto run's ``run_dir``."""
    return run_dir / CANDIDATES_DIR / family


def is_complete(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is a run directory whose ``COMPLETE`` marker exists."""
    return (paths.resolve(path) / COMPLETE).is_file()


def mark_complete(run_dir: Path) -> None:
    """Write the ``COMPLETE`` marker; call it after every other file."""
    atomic_write_text(run_dir / COMPLETE, utc_now() + "\n")


def read_run_info(run_dir: Path) -> dict[str, Any]:
    """``run.json`` of a run (raises :class:`TrainingError` naming what is wrong)."""
    return read_json_object(
        run_dir / RUN_JSON, what="run file", error=TrainingError, hint="rerun training"
    )


def read_metrics(run_dir: Path) -> dict[str, Any]:
    """``metrics.json`` of a run (raises :class:`TrainingError` naming what is wrong)."""
    return read_json_object(
        run_dir / METRICS_JSON, what="run metrics", error=TrainingError, hint="rerun training"
    )


def mismatch(run_dir: Path, *, config_digest: str, data_digest: str | None) -> str | None:
    """Why ``run_dir`` was trained on something else, or None when config and data match.

    Compares ``run.json`` (a complete run) with the config digest and data fingerprint
    digest the caller is about to train with.
    """
    try:
        info = read_run_info(run_dir)
    except TrainingError as exc:
        return str(exc)
    if info.get("config_digest") != config_digest:
        return (
            f"its config digest {str(info.get('config_digest'))[:12]} differs from this "
            f"run's {config_digest[:12]}"
        )
    recorded = (info.get("data_fingerprint") or {}).get("digest")
    if data_digest is not None and recorded != data_digest:
        return f"its data digest {str(recorded)[:12]} differs from this run's {data_digest[:12]}"
    return None
