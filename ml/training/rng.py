"""Every process-wide random state (torch, CUDA, numpy, python) as plain values and
tensors, for the trainer's resume state (loadable with ``weights_only=True``)."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch


def capture() -> dict[str, Any]:
    """``{"torch", "cuda", "numpy", "python"}``: the states :func:`restore` sets back."""
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": _numpy_state(),
        "python": _python_state(),
    }


def restore(saved: dict[str, Any]) -> None:
    """Set back what :func:`capture` returned (CUDA's only where a GPU is present)."""
    torch.set_rng_state(saved["torch"])
    if saved["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(saved["cuda"])
    _set_numpy_state(saved["numpy"])
    _set_python_state(saved["python"])


def _numpy_state() -> dict[str, Any]:
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    return {
        "name": name,
        "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
        "pos": int(pos),
        "has_gauss": int(has_gauss),
        "gauss": float(gauss),
    }


def _set_numpy_state(s: dict[str, Any]) -> None:
    keys = s["keys"].numpy().astype(np.uint32)
    np.random.set_state((s["name"], keys, s["pos"], s["has_gauss"], s["gauss"]))


def _python_state() -> list[Any]:
    version, internal, gauss = random.getstate()
    return [version, list(internal), gauss]


def _set_python_state(s: list[Any]) -> None:
    random.setstate((s[0], tuple(s[1]), s[2]))
