"""FinalMLP (Mao et al., AAAI 2023, "FinalMLP: An Enhanced Two-Stream MLP Model for CTR
Prediction"): two MLP streams, each reading the feature vectors through its own
feature-selection gate, fused by a bilinear interaction of the two streams' outputs.

Why this family: it leads the public CTR leaderboards on the small sparse sets of the
BARS open benchmark (Zhu et al., 2022): test AUC 0.9861 on Frappe (x1 split) and 0.9720
on MovieLens (MovieLensLatest x1), first on both Papers with Code leaderboards; 0.8149
on Criteo (x1), as published in the paper's Table 2.

The gates follow the reference implementation's default (FuxiCTR, no context fields):
``gate_k = 2 * sigmoid(MLP_k(c_k))`` with a learned context vector ``c_k``, so each
stream learns its own scaling of every feature dimension (1 at initialisation).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ml.models.layers import MLP, FieldEmbedding

GATE_HIDDEN = 64


class FeatureGate(nn.Module):
    """``2 * sigmoid(MLP(c))`` for a learned context ``c``: a per-dimension weight in
    (0, 2) on the stream's input, exactly 1 at initialisation (the last layer starts at
    zero)."""

    def __init__(self, in_dim: int, context_dim: int) -> None:
        super().__init__()
        self.context = nn.Parameter(torch.zeros(context_dim))
        last = nn.Linear(GATE_HIDDEN, in_dim)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.net = nn.Sequential(nn.Linear(context_dim, GATE_HIDDEN), nn.ReLU(), last)

    def forward(self) -> torch.Tensor:
        out: torch.Tensor = 2 * torch.sigmoid(self.net(self.context))  # (in_dim,)
        return out


class BilinearFusion(nn.Module):
    """``b + w1·o1 + w2·o2 + o1ᵀ W o2``: the streams' first-order terms and their
    multiplicative interaction (the paper's aggregation layer with one head)."""

    def __init__(self, dim1: int, dim2: int) -> None:
        super().__init__()
        self.w1 = nn.Linear(dim1, 1)  # holds the bias b
        self.w2 = nn.Linear(dim2, 1, bias=False)
        bound = dim1**-0.5  # nn.Bilinear's initialisation
        self.bilinear = nn.Parameter(torch.empty(dim1, dim2).uniform_(-bound, bound))

    def forward(self, o1: torch.Tensor, o2: torch.Tensor) -> torch.Tensor:
        # a matmul (autocast casts it under bf16; F.bilinear would refuse mixed dtypes)
        cross = ((o1 @ self.bilinear.to(o1.dtype)) * o2).sum(dim=1, keepdim=True)
        out: torch.Tensor = (self.w1(o1) + self.w2(o2) + cross).squeeze(-1)
        return out


class FinalMLP(nn.Module):
    """Embeddings ∥ numerics, gated twice, through two MLPs, fused bilinearly.

    Hyperparameters:
        vocab_sizes: rows per categorical field (vocabulary + OOV).
        num_numeric: number of numeric features (fed as standardised values).
        embedding_dim: vector size per categorical field.
        hidden_units: each stream's MLP layer sizes (the second stream takes the first
            layer's width only: the paper pairs a deep stream with a wide shallow one).
        dropout: dropout in both MLPs.
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
        self.embedding = FieldEmbedding(vocab_sizes, embedding_dim) if vocab_sizes else None
        in_dim = len(vocab_sizes) * embedding_dim + num_numeric
        self.gate1 = FeatureGate(in_dim, embedding_dim)
        self.gate2 = FeatureGate(in_dim, embedding_dim)
        self.stream1 = MLP(in_dim, hidden_units, dropout)
        self.stream2 = MLP(in_dim, list(hidden_units[:1]), dropout)
        self.fusion = BilinearFusion(self.stream1.out_dim, self.stream2.out_dim)

    @property
    def output_bias(self) -> torch.Tensor:
        """The constant term of the logit (the fusion's bias)."""
        return self.fusion.w1.bias

    def inputs(self, cat: torch.Tensor, num: torch.Tensor) -> torch.Tensor:
        """The flattened feature vectors both streams read, (batch, in_dim)."""
        if self.embedding is None:
            return num
        return torch.cat([self.embedding(cat).flatten(1), num.to(self.gate1.context.dtype)], 1)

    def forward(self, cat: torch.Tensor, num: torch.Tensor) -> torch.Tensor:
        # cat: (batch, fields) int ids; num: (batch, numerics) -> logits (batch,)
        x = self.inputs(cat, num)
        o1 = self.stream1(x * self.gate1())
        o2 = self.stream2(x * self.gate2())
        out: torch.Tensor = self.fusion(o1, o2)
        return out
