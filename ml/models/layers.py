"""Building blocks shared by the CTR models (pure ``nn.Module``s, no I/O).

Two CPU hot-path replacements live here (measured in issue 10, DeepFM with embedding
16 and hidden [256, 128] on one core): the embedding backward through one
``index_add_`` instead of ``embedding_dense_backward`` (7.6 → 3.9 ms per batch of 8192
for a 16-wide table, 6.2 → 0.3 ms for the 1-wide linear weights), and dropout masks
drawn as 16-bit lanes of 64-bit random words instead of ``bernoulli_`` (whose CPU
kernel draws one Mersenne-Twister number per element on non-Intel CPUs: 16 ms for
8192 × 256). Both are the same function; on other devices torch's own kernels run.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

EMBEDDING_INIT_STD = 0.01

# A dropped element is one whose 16-bit random lane is below this many of 65536.
_LANES = 65_536


class _GatherRows(torch.autograd.Function):
    """``weight[ids]`` whose backward is one ``index_add_`` of the gradient rows."""

    @staticmethod
    def forward(ctx: Any, weight: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        flat = ids.reshape(-1).long()  # index_add_ with int32 ids takes a slow path
        ctx.save_for_backward(flat)
        ctx.rows = weight.shape[0]
        return F.embedding(flat, weight).view(*ids.shape, weight.shape[1])

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (flat,) = ctx.saved_tensors
        rows = grad.reshape(flat.shape[0], -1)
        out = rows.new_zeros(ctx.rows, rows.shape[1])
        return out.index_add_(0, flat, rows), None


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
        ids = cat + offsets.to(cat.dtype)
        weight = self.table.weight
        if weight.device.type == "cpu" and weight.requires_grad and torch.is_grad_enabled():
            out: torch.Tensor = _GatherRows.apply(weight, ids)  # type: ignore[no-untyped-call]
            return out
        out = self.table(ids)
        return out


_SAME_SIZE_INT = {2: torch.int16, 4: torch.int32, 8: torch.int64}


def dropout_mask(shape: torch.Size, p: float, dtype: torch.dtype) -> torch.Tensor:
    """A dropout mask on the CPU: 0 with probability ``round(p * 65536) / 65536``, else
    ``1 / keep probability`` (rounded to ``dtype``); drawn from torch's default generator.

    Each 64-bit random word gives four 16-bit lanes. The mask is built with integer
    clamps and bit operations, written straight into ``dtype``'s bit pattern: CPU
    comparisons into ``bool`` and ``bool`` → float conversions are several times slower.
    """
    drop = round(p * _LANES)
    if drop <= 0:
        return torch.ones(shape, dtype=dtype)
    if drop >= _LANES:
        return torch.zeros(shape, dtype=dtype)
    n = 1
    for size in shape:
        n *= int(size)
    words = torch.empty((n + 3) // 4, dtype=torch.int64).random_(-(2**63), None)
    lanes = words.view(torch.int16)[:n].view(shape)  # uniform over [-32768, 32767]
    threshold = drop - _LANES // 2  # keep iff lane >= threshold
    # clamp -> {threshold - 1 (drop), threshold (keep)}; - threshold -> {-1, 0}; ~ -> {0, -1}
    keep = lanes.clamp(threshold - 1, threshold).sub_(threshold).bitwise_not_()
    scale = torch.tensor(_LANES / (_LANES - drop), dtype=dtype)
    as_int = _SAME_SIZE_INT[scale.element_size()]
    # all-ones where kept, sign-extended to the float's width, & the scale's bits
    return keep.to(as_int).bitwise_and_(scale.view(as_int)).view(dtype)


class Dropout(nn.Dropout):
    """``nn.Dropout`` whose CPU masks come from :func:`dropout_mask` (same state dict,
    same distribution up to ``p`` rounded to 1/65536)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0 or x.device.type != "cpu" or self.inplace:
            return F.dropout(x, self.p, self.training, self.inplace)
        return x * dropout_mask(x.shape, self.p, x.dtype)


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
                layers.append(Dropout(dropout))
            in_dim = units
        self.net = nn.Sequential(*layers)
        self.out_dim = in_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(x)
        return out
