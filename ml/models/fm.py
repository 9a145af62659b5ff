"""Factorization machine (Rendle, 2010): a logistic regression plus every pairwise
interaction ``<v_i, v_j> x_i x_j`` of the fields, with one learned vector per category.

The pairwise sum is computed in ``O(fields * dim)`` with the identity
``sum_{i<j} <v_i, v_j> = 0.5 * (|sum_i v_i|^2 - sum_i |v_i|^2)`` (per vector component).
With no hidden layer it is the model of choice where labels come from pairs of ids
(user × item, item × context) seen a few times each: a pair's effect is learned from
each id's other pairs.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ml.models.layers import EMBEDDING_INIT_STD, FieldEmbedding
from ml.models.logreg import LogReg


def pairwise_interaction(vectors: torch.Tensor) -> torch.Tensor:
    """``sum_{i<j} <v_i, v_j>`` for ``vectors`` (batch, fields, dim) → (batch,)."""
    total = vectors.sum(dim=1)  # (batch, dim)
    out: torch.Tensor = 0.5 * (total.square() - vectors.square().sum(dim=1)).sum(dim=1)
    return out


class FM(nn.Module):
    """First-order weights (a :class:`LogReg`) + the FM's pairwise term over every
    field's vector: a categorical field's by lookup, a numeric one's ``value * V_j``.

    Hyperparameters:
        vocab_sizes: rows per categorical field (vocabulary + OOV).
        num_numeric: number of numeric features.
        embedding_dim: vector size per field (the rank of the pairwise interactions).
    """

    def __init__(
        self, vocab_sizes: Sequence[int], num_numeric: int, embedding_dim: int = 16
    ) -> None:
        super().__init__()
        self.linear = LogReg(vocab_sizes, num_numeric)
        self.embedding = FieldEmbedding(vocab_sizes, embedding_dim) if vocab_sizes else None
        self.numeric_vectors = nn.Parameter(
            torch.randn(num_numeric, embedding_dim) * EMBEDDING_INIT_STD
        )

    @property
    def output_bias(self) -> torch.Tensor:
        """The constant term of the logit (the first-order part's bias)."""
        return self.linear.output_bias

    def field_vectors(self, cat: torch.Tensor, num: torch.Tensor) -> torch.Tensor:
        """Every field's vector, (batch, fields + numerics, dim)."""
        # Kept in fp32 under a bf16 autocast: the pairwise sum cancels large terms.
        with torch.autocast(num.device.type, enabled=False):
            vecs = num.float().unsqueeze(-1) * self.numeric_vectors  # (batch, numerics, dim)
            if self.embedding is not None:
                vecs = torch.cat([self.embedding(cat).float(), vecs], dim=1)
        return vecs

    def forward(self, cat: torch.Tensor, num: torch.Tensor) -> torch.Tensor:
        # cat: (batch, fields) int ids; num: (batch, numerics) -> logits (batch,)
        with torch.autocast(num.device.type, enabled=False):
            pairs = pairwise_interaction(self.field_vectors(cat, num))
        out: torch.Tensor = self.linear(cat, num) + pairs
        return out
