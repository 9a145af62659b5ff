"""Logistic regression: the baseline every deep model must beat.

Training fits it to the optimum of its L2-penalised log loss when the train split is in
memory (``ml.training.linear``), in mini-batches like every family otherwise."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ml.models.layers import FieldEmbedding


class LogReg(nn.Module):
    """A weight per category (embedding of size 1) plus a linear term on the numerics.

    Hyperparameters:
        vocab_sizes: rows per categorical field (vocabulary + OOV).
        num_numeric: number of numeric features.
    """

    def __init__(self, vocab_sizes: Sequence[int], num_numeric: int) -> None:
        super().__init__()
        self.num_fields = len(vocab_sizes)
        self.weights = FieldEmbedding(vocab_sizes, 1) if vocab_sizes else None
        self.numeric = nn.Linear(num_numeric, 1, bias=False) if num_numeric else None
        self.bias = nn.Parameter(torch.zeros(1))

    @property
    def output_bias(self) -> nn.Parameter:
        """The constant term of the logit."""
        return self.bias

    def forward(self, cat: torch.Tensor, num: torch.Tensor) -> torch.Tensor:
        # cat: (batch, fields) int ids; num: (batch, numerics) -> logits (batch,)
        logit = self.bias.expand(num.shape[0] if num.ndim == 2 else cat.shape[0])
        if self.weights is not None:
            logit = logit + self.weights(cat).sum(dim=(1, 2))  # (batch, fields, 1) -> (batch,)
        if self.numeric is not None:
            logit = logit + self.numeric(num).squeeze(-1)  # (batch, 1) -> (batch,)
        return logit
