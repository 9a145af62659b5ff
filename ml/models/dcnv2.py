"""DCN-V2 (Wang et al., 2021): a cross network v2 beside an MLP, on the same input."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ml.models.layers import MLP, FieldEmbedding


class CrossNetV2(nn.Module):
    """``x_{l+1} = x_0 * (W_l x_l + b_l) + x_l``: explicit feature crosses of rising order.

    Hyperparameters:
        dim: input width.
        layers: number of cross layers (degree of the highest cross is ``layers + 1``).
    """

    def __init__(self, dim: int, layers: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(dim, dim) for _ in range(layers))

    def forward(self, x0: torch.Tensor) -> torch.Tensor:
        x = x0  # (batch, dim)
        for layer in self.layers:
            x = x0 * layer(x) + x
        return x


class DCNv2(nn.Module):
    """Embeddings and numerics concatenated, then cross network ∥ MLP, then one logit.

    Hyperparameters:
        vocab_sizes: rows per categorical field (vocabulary + OOV).
        num_numeric: number of numeric features (fed as standardised values).
        embedding_dim: vector size per categorical field.
        hidden_units: MLP layer sizes.
        cross_layers: cross network depth (0 = MLP only).
        dropout: dropout in the MLP.
    """

    def __init__(
        self,
        vocab_sizes: Sequence[int],
        num_numeric: int,
        embedding_dim: int = 16,
        hidden_units: Sequence[int] = (256, 128),
        cross_layers: int = 3,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.embedding = FieldEmbedding(vocab_sizes, embedding_dim) if vocab_sizes else None
        in_dim = len(vocab_sizes) * embedding_dim + num_numeric
        self.cross = CrossNetV2(in_dim, cross_layers)
        self.mlp = MLP(in_dim, hidden_units, dropout)
        self.head = nn.Linear(in_dim + self.mlp.out_dim, 1)

    @property
    def output_bias(self) -> torch.Tensor:
        """The constant term of the logit (the head's bias)."""
        return self.head.bias

    def forward(self, cat: torch.Tensor, num: torch.Tensor) -> torch.Tensor:
        # cat: (batch, fields) int ids; num: (batch, numerics) -> logits (batch,)
        parts = [num]
        if self.embedding is not None:
            parts.insert(0, self.embedding(cat).flatten(1))  # (batch, fields * dim)
        x0 = torch.cat(parts, dim=1)  # (batch, in_dim)
        h = torch.cat([self.cross(x0), self.mlp(x0)], dim=1)  # (batch, in_dim + hidden[-1])
        out: torch.Tensor = self.head(h).squeeze(-1)
        return out
