"""Run directories: layout, atomic writes, and the ``COMPLETE`` marker.

A run directory ``<runs_dir>/<experiment_name>_<YYYYmmdd_HHMMSS>/`` holds::

    model_best.pt        best checkpoint (torch.load(..., weights_only=True))
    checkpoint_last.pt   resume state after the latest epoch (removed when complete)
    config.yaml          the exact config trained with
    metrics.json         val/test metrics, timings, per-epoch history
    run.json             provenance: data fingerprint, config digest, seed, times, host
    COMPLETE             written last; a directory without it is not a finished run

Every file is written to a temporary name beside its target and renamed into place, so a
crash leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from ml import paths

MODEL_BEST = "model_best.pt"
CHECKPOINT_LAST = "checkpoint_last.pt"
CONFIG_YAML = "config.yaml"
METRICS_JSON = "metrics.json"
RUN_JSON = "run.json"
COMPLETE = "COMPLETE"

_STAMP_FORMAT = "%Y%m%d_%H%M%S"


def is_complete(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is a run directory whose ``COMPLETE`` marker exists."""
    return (paths.resolve(path) / COMPLETE).is_file()


def latest_complete_run(
    runs_dir: str | os.PathLike[str] | None = None, experiment_name: str = "ctr_model"
) -> Path | None:
    """The newest complete run ``<runs_dir>/<experiment_name>_<timestamp>``, or None.

    Args:
        runs_dir: directory of runs; default ``experiments/runs`` under the base directory.
        experiment_name: the run-name prefix.

    Returns:
        The absolute path of the newest complete run (by the timestamp in its name).
    """
    root = paths.resolve(runs_dir if runs_dir is not None else paths.RUNS_DIR)
    if not root.is_dir():
        return None
    prefix = f"{experiment_name}_"
    runs = [
        p
        for p in root.iterdir()
        if p.is_dir() and p.name.startswith(prefix) and _is_stamp(p.name[len(prefix) :])
    ]
    done = sorted((p for p in runs if is_complete(p)), key=lambda p: p.name)
    return done[-1] if done else None


def _is_stamp(rest: str) -> bool:
    stamp = rest[:15]
    suffix = rest[15:]
    try:
        time.strptime(stamp, _STAMP_FORMAT)
    except ValueError:
        return False
    return suffix == "" or (suffix.startswith("_") and suffix[1:].isdigit())


def new_run_dir(runs_dir: str | os.PathLike[str], experiment_name: str) -> Path:
    """Create and return a fresh ``<runs_dir>/<experiment_name>_<timestamp>`` directory.

    Two runs started in the same second get ``_2``, ``_3``... suffixes instead of sharing.
    """
    root = paths.resolve(runs_dir)
    root.mkdir(parents=True, exist_ok=True)
    base = f"{experiment_name}_{time.strftime(_STAMP_FORMAT)}"
    for n in range(1, 1000):
        candidate = root / (base if n == 1 else f"{base}_{n}")
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return candidate
    raise RuntimeError(f"could not create a unique run directory under {root}")


def atomic_write(path: Path, writer: Callable[[IO[bytes]], Any]) -> None:
    """Write ``path`` via ``writer(fileobj)`` into a temp file beside it, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            writer(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Atomically replace ``path`` with ``text`` (UTF-8)."""
    atomic_write(path, lambda fh: fh.write(text.encode("utf-8")))


def atomic_write_json(path: Path, data: Any) -> None:
    """Atomically replace ``path`` with ``data`` as indented JSON."""
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def atomic_torch_save(path: Path, obj: Any) -> None:
    """Atomically replace ``path`` with ``torch.save(obj)``."""
    import torch

    atomic_write(path, lambda fh: torch.save(obj, fh))


def mark_complete(run_dir: Path, text: str = "") -> None:
    """Write the ``COMPLETE`` marker (atomically); call it after every other file."""
    atomic_write_text(run_dir / COMPLETE, text or time.strftime("%Y-%m-%dT%H:%M:%S%z") + "\n")
