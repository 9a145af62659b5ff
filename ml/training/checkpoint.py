"""The checkpoint format: what ``model_best.pt`` holds and the one loader everyone uses.

A checkpoint is a dict of plain types and tensors, saved with ``torch.save`` and loaded
with ``torch.load(..., weights_only=True)`` (no pickled code ever runs)::

    format_version   FORMAT_VERSION
    model_name       logreg | fm | dcnv2 | deepfm | finalmlp
    model_args       keyword arguments that rebuild the module (build_model(name, **args))
    state_dict       the weights
    preprocessor     the fitted vocabularies and scaling (Preprocessor.state_dict())
    features         the FeatureSpec as a dict
    config           the recorded training config
    epoch, monitor, monitor_value   which epoch it is and why it was kept
    calibration      (format 2) the probability map fitted on the validation split
                     (ml.training.calibration); absent in format 1: plain sigmoid

Training writes it (:func:`best_checkpoint`), evaluation and serving read it
(:func:`load_checkpoint`), and the registry checks it at registration. The resume state
``checkpoint_last.pt`` uses the same loader with its own required keys.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ml import paths
from ml.errors import CheckpointError
from ml.fsutil import atomic_write
from ml.training.run_dir import CHECKPOINT_LAST, MODEL_BEST

#: 2 added the optional ``calibration`` key; format 1 checkpoints still load (no map).
FORMAT_VERSION = 2
SUPPORTED_FORMAT_VERSIONS = (1, 2)
REQUIRED_KEYS = ("format_version", "model_name", "model_args", "state_dict", "preprocessor")
RESUME_KEYS = ("format_version", "trainer", "config_digest", "preprocessor")


def checkpoint_path(path: str | os.PathLike[str]) -> Path:
    """The checkpoint file for ``path``: the file itself, or the one inside a directory.

    In a directory, a training run's ``model_best.pt`` is preferred; otherwise the one
    ``.pt`` file it holds (a registered version's model file).

    Raises:
        CheckpointError: nothing (or more than one candidate) to load.
    """
    p = paths.resolve(path)
    if p.is_dir():
        if (p / MODEL_BEST).is_file():
            return p / MODEL_BEST
        candidates = sorted(q for q in p.glob("*.pt") if q.name != CHECKPOINT_LAST)
        if len(candidates) == 1:
            return candidates[0]
        raise CheckpointError(
            f"{p} holds {'no' if not candidates else 'more than one'} model checkpoint; pass "
            "a run directory from `ctr-pipeline train`, a registered model version, or the "
            ".pt file itself"
        )
    if not p.is_file():
        raise CheckpointError(f"checkpoint {p} does not exist")
    return p


def load_checkpoint(
    path: str | os.PathLike[str],
    *,
    required: tuple[str, ...] = REQUIRED_KEYS,
    mmap: bool = False,
) -> dict[str, Any]:
    """Load and check a checkpoint (``weights_only=True``, tensors on the CPU).

    ``mmap=True`` maps the tensors instead of reading them: checking a 100 MB checkpoint
    costs milliseconds (the registry checks every checkpoint it registers).

    Raises:
        CheckpointError: missing or unreadable file, a foreign pickle, missing keys or an
            unknown format version.
    """
    import torch

    file = checkpoint_path(path)
    try:
        ckpt = torch.load(file, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as exc:  # truncated file, foreign pickle: many exception types
        raise CheckpointError(
            f"{file} is not a readable checkpoint ({str(exc).splitlines()[0][:200]}); "
            "retrain, or delete the file to start the run over"
        ) from exc
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"{file} does not hold a checkpoint dictionary")
    missing = [k for k in required if k not in ckpt]
    if missing:
        raise CheckpointError(f"{file} is missing checkpoint key(s) {missing}")
    if ckpt["format_version"] not in SUPPORTED_FORMAT_VERSIONS:
        raise CheckpointError(
            f"{file} has checkpoint format_version {ckpt['format_version']}; this code reads "
            f"{SUPPORTED_FORMAT_VERSIONS}: retrain the model with this version"
        )
    return ckpt


def save_checkpoint(path: Path, obj: dict[str, Any]) -> None:
    """Atomically replace ``path`` with ``torch.save(obj)``."""
    import torch

    atomic_write(path, lambda fh: torch.save(obj, fh))


def best_checkpoint(
    meta: dict[str, Any], state_dict: dict[str, Any], *, epoch: int, monitor: str, value: float
) -> dict[str, Any]:
    """The ``model_best.pt`` payload: ``meta`` (model_name, model_args, preprocessor,
    features, config) plus the weights and why this epoch was kept."""
    return {
        "format_version": FORMAT_VERSION,
        **meta,
        "state_dict": state_dict,
        "epoch": epoch,
        "monitor": monitor,
        "monitor_value": value,
    }
