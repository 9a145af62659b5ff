"""CTR models, chosen by name: ``logreg``, ``fm``, ``dcnv2``, ``deepfm``, ``finalmlp``.

Every model is built from keyword arguments (``build_model(name, **model_args)``) and
maps ``(cat ids (batch, fields) int, numerics (batch, numerics) float)`` to logits of
shape ``(batch,)``. A checkpoint stores ``model_name`` and ``model_args``, which is all
that is needed to rebuild the module before loading its weights.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ml.models.dcnv2 import DCNv2
from ml.models.deepfm import DeepFM
from ml.models.finalmlp import FinalMLP
from ml.models.fm import FM
from ml.models.logreg import LogReg

MODELS: dict[str, type[nn.Module]] = {
    "logreg": LogReg,
    "fm": FM,
    "dcnv2": DCNv2,
    "deepfm": DeepFM,
    "finalmlp": FinalMLP,
}


def build_model(name: str, **model_args: Any) -> nn.Module:
    """Instantiate the model called ``name`` with ``model_args``.

    Raises:
        ValueError: unknown model name or an argument the model does not take.
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    cls = MODELS[name]
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self"}
    unknown = sorted(set(model_args) - accepted)
    if unknown:
        raise ValueError(
            f"model {name!r} takes no argument(s) {unknown}; it takes {sorted(accepted)}"
        )
    return cls(**model_args)


def init_output_bias(model: nn.Module, logit: float) -> None:
    """Start ``model`` at a constant logit (the train base rate's): its output bias is set,
    so a 3% CTR does not cost the first epochs climbing down from p = 0.5."""
    bias = getattr(model, "output_bias", None)
    if not isinstance(bias, torch.Tensor):
        raise ValueError(f"{type(model).__name__} has no output_bias parameter")  # invariant
    with torch.no_grad():
        bias.fill_(logit)


def model_args_for(
    name: str,
    *,
    vocab_sizes: Sequence[int],
    num_numeric: int,
    hyperparameters: dict[str, Any],
) -> dict[str, Any]:
    """The plain-typed ``model_args`` for ``name``: data shapes plus the hyperparameters
    the model takes (e.g. ``cross_layers`` only for ``dcnv2``)."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    accepted = set(inspect.signature(MODELS[name].__init__).parameters) - {"self"}
    args: dict[str, Any] = {
        "vocab_sizes": [int(v) for v in vocab_sizes],
        "num_numeric": int(num_numeric),
    }
    for key, value in hyperparameters.items():
        if key in accepted and key not in args:
            args[key] = list(value) if isinstance(value, tuple) else value
    return args


__all__ = ["MODELS", "build_model", "init_output_bias", "model_args_for"]
