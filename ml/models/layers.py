"""Building blocks shared by the CTR models (pure ``nn.Module``s, no I/O)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

EMBEDDING_INIT_STD = 0.01


class FieldEmbedding(nn.Module):
    """One embedding table for all categorical fields, indexed through per-field offsets.

    A single table turns F lookups into one gather (and one optimizer update) per batch.

    Hyperparameters:
        vocab_sizes: rows per field (vocabulary + the OOV id 0).
        dim: vector size; 1 gives per-category weights (the linear part of a model).
    """

    def __init__(self, vocab_sizes: Sequence[int], dim: int) -> None:
        super().__init__()
        sizes = torch.tensor([0, *vocab_sizes[:-1]], dtype=torch.long)
        # Derived from vocab_sizes, so not saved: the state dict holds only weights.
        self.register_buffer("offsets", torch.cumsum(sizes, 0), persistent=False)
        self.table = nn.Embedding(int(sum(vocab_sizes)), dim)
        nn.init.normal_(self.table.weight, std=EMBEDDING_INIT_STD)

    def forward(self, cat: torch.Tensor) -> torch.Tensor:
        # cat: (batch, fields) ids per field -> (batch, fields, dim)
        offsets: torch.Tensor = self.offsets  # type: ignore[assignment]
        out: torch.Tensor = self.table(cat + offsets.to(cat.dtype))
        return out


class MLP(nn.Module):
    """Linear → ReLU → Dropout blocks; ``out_dim`` is the last hidden size.

    Hyperparameters:
        in_dim: input features.
        hidden_units: sizes of the hidden layers (may be empty: identity).
        dropout: dropout after each hidden layer.
    """

    def __init__(self, in_dim: int, hidden_units: Sequence[int], dropout: float) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for units in hidden_units:
            layers += [nn.Linear(in_dim, units), nn.ReLU()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            in_dim = units
        self.net = nn.Sequential(*layers)
        self.out_dim = in_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(x)
        return out
