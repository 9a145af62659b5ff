"""DeepFM (Guo et al., 2017): first-order weights + factorization machine + MLP."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ml.models.layers import EMBEDDING_INIT_STD, MLP, FieldEmbedding
from ml.models.logreg import LogReg


class DeepFM(nn.Module):
    """Every feature is a field with a vector: categorical ones by lookup, numeric ones as
    ``value * vector``. The FM sums all pairwise dot products; the MLP reads the same
    vectors; a logistic-regression part adds first-order weights.

    Hyperparameters:
        vocab_sizes: rows per categorical field (vocabulary + OOV).
        num_numeric: number of numeric features.
        embedding_dim: vector size per field.
        hidden_units: MLP layer sizes.
        dropout: dropout in the MLP.
    """

    def __init__(
        self,
        vocab_sizes: Sequence[int],
        num_numeric: int,
        embedding_dim: int = 16,
        hidden_units: Sequence[int] = (256, 128),
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.linear = LogReg(vocab_sizes, num_numeric)
        self.embedding = FieldEmbedding(vocab_sizes, embedding_dim) if vocab_sizes else None
        self.numeric_vectors = nn.Parameter(
            torch.randn(num_numeric, embedding_dim) * EMBEDDING_INIT_STD
        )
        fields = len(vocab_sizes) + num_numeric
        self.mlp = MLP(fields * embedding_dim, hidden_units, dropout)
        self.mlp_head = nn.Linear(self.mlp.out_dim, 1)

    @property
    def output_bias(self) -> torch.Tensor:
        """The constant term of the logit (the first-order part's bias)."""
        return self.linear.output_bias

    def forward(self, cat: torch.Tensor, num: torch.Tensor) -> torch.Tensor:
        # cat: (batch, fields) int ids; num: (batch, numerics) -> logits (batch,)
        vecs = num.unsqueeze(-1) * self.numeric_vectors  # (batch, numerics, dim)
        if self.embedding is not None:
            vecs = torch.cat([self.embedding(cat), vecs], dim=1)  # (batch, all_fields, dim)
        # FM second order: 0.5 * ((sum v)^2 - sum v^2), summed over dim -> (batch,)
        fm = 0.5 * (vecs.sum(dim=1).pow(2) - vecs.pow(2).sum(dim=1)).sum(dim=1)
        deep = self.mlp_head(self.mlp(vecs.flatten(1))).squeeze(-1)  # (batch,)
        out: torch.Tensor = self.linear(cat, num) + fm + deep
        return out
