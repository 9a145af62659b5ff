"""ml.training.rng: every process-wide random state, captured and set back."""

from __future__ import annotations

import io
import random

import numpy as np
import torch

from ml.training import rng


def _draws() -> tuple[float, float, float]:
    return float(torch.rand(1)), float(np.random.rand()), random.random()


def test_restore_replays_the_same_draws_after_a_weights_only_round_trip() -> None:
    torch.manual_seed(1), np.random.seed(2), random.seed(3)
    buf = io.BytesIO()
    torch.save(rng.capture(), buf)
    first = _draws()
    assert _draws() != first
    buf.seek(0)
    rng.restore(torch.load(buf, weights_only=True))
    assert _draws() == first
