"""DeepFM (Guo et al., 2017): first-order weights + factorization machine + MLP."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import torch
from torch import nn
from torch.nn import functional as F

from ml.models.layers import EMBEDDING_INIT_STD, MLP, FieldEmbedding
from ml.models.logreg import LogReg


class _FMInteraction(torch.autograd.Function):
    """FM second order over categorical vectors ``emb`` (batch, fields, dim) and the sum
    ``extra`` (batch, dim) of the other fields' vectors: ``0.5 * (|s|^2 - sum_f |e_f|^2)``
    with ``s = extra + sum_f e_f`` (the caller subtracts ``extra``'s own squared norms).
    The gradient ``g * (s - e_f)`` takes two passes over ``emb``; autograd through
    ``pow`` and two sums takes five, plus two accumulations."""

    @staticmethod
    def forward(ctx: Any, emb: torch.Tensor, extra: torch.Tensor) -> torch.Tensor:
        s = emb.sum(dim=1) + extra
        squares: torch.Tensor = torch.linalg.vector_norm(emb.flatten(1), dim=1).square()
        ctx.save_for_backward(emb, s)
        return 0.5 * (s.square().sum(dim=1) - squares)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        emb, s = ctx.saved_tensors
        grad_s = grad.unsqueeze(1) * s  # (batch, dim)
        # (s - e) * g: two passes, yet twice as fast as one broadcasting addcmul on the CPU
        grad_emb = (s.unsqueeze(1) - emb).mul_(grad.view(-1, 1, 1))
        return grad_emb, grad_s


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
        # Numeric field i's vector is num_i * V_i, so neither the FM nor the MLP needs the
        # (batch, numerics, dim) vectors: their sums and the first layer are contracted
        # with V once per batch (the same function with ~30% fewer first-layer FLOPs).
        # FM second order: 0.5 * (|sum of all field vectors|^2 - sum of their |v|^2).
        v = self.numeric_vectors  # (numerics, dim)
        # Kept in fp32 under a bf16 autocast (these products are matmuls, which autocast
        # would cast; the FM's other terms are fp32 elementwise ops).
        with torch.autocast(num.device.type, enabled=False):
            s_num = num @ v  # (batch, dim): sum of the numeric fields' vectors
            sq_num = num.square() @ v.square().sum(dim=1)  # (batch,): their squared norms
        emb = self.embedding(cat) if self.embedding is not None else None
        if emb is not None:  # (batch, fields, dim)
            pairs: torch.Tensor = _FMInteraction.apply(emb, s_num)  # type: ignore[no-untyped-call]
            fm = pairs - 0.5 * sq_num
        else:
            fm = 0.5 * (s_num.square().sum(dim=1) - sq_num)
        deep = self.mlp_head(self._mlp(emb, num)).squeeze(-1)  # (batch,)
        out: torch.Tensor = self.linear(cat, num) + fm + deep
        return out

    def _mlp(self, emb: torch.Tensor | None, num: torch.Tensor) -> torch.Tensor:
        """``self.mlp`` on the flattened field vectors, with the first layer's numeric
        block ``W[:, j, :]`` (one per numeric j) replaced by ``W[:, j, :] @ V_j``."""
        layers = list(self.mlp.net)
        if not layers:  # no hidden layer: the MLP is the identity on the field vectors
            vecs = num.unsqueeze(-1) * self.numeric_vectors
            if emb is not None:
                vecs = torch.cat([emb, vecs], dim=1)
            return vecs.flatten(1)
        first = cast(nn.Linear, layers[0])  # MLP blocks start with their Linear
        n_num, dim = self.numeric_vectors.shape
        n_cat = first.in_features - n_num * dim
        # (hidden, numerics, dim): the first layer's columns that read numeric vectors
        w_num = first.weight[:, n_cat:].view(first.out_features, n_num, dim)
        folded = (w_num * self.numeric_vectors).sum(dim=2)  # (hidden, numerics)
        # Two products instead of one on a concatenated input: concatenating along dim 1
        # copies row by row on the CPU (4 ms per batch of 8192).
        h = F.linear(num, folded, first.bias)
        if emb is not None:
            h = h + F.linear(emb.flatten(1), first.weight[:, :n_cat])
        for layer in layers[1:]:
            h = layer(h)
        return h
