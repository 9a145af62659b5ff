"""ml/models/layers.py: the CPU fast paths are the same functions as torch's own."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ml.models.layers import Dropout, FieldEmbedding, dropout_mask


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64])
def test_dropout_mask_drops_p_and_rescales_the_rest(dtype: torch.dtype) -> None:
    torch.manual_seed(0)
    mask = dropout_mask(torch.Size([2000, 500]), 0.1, dtype)
    assert mask.shape == (2000, 500) and mask.dtype == dtype
    kept = torch.tensor(1 / (1 - 6554 / 65536), dtype=dtype)  # p rounded to 1/65536
    assert set(mask.unique().tolist()) == {0.0, kept.item()}
    dropped = (mask == 0).double().mean().item()
    # 1M draws: the standard error of the dropped share is 0.0003.
    assert dropped == pytest.approx(0.1, abs=0.0015)


def test_dropout_mask_lanes_are_independent_across_columns() -> None:
    torch.manual_seed(0)
    mask = dropout_mask(torch.Size([100_000, 4]), 0.5, torch.float32) > 0
    # The four 16-bit lanes of one random word land in one row: they must not agree.
    same = (mask[:, 0] == mask[:, 1]).double().mean().item()
    assert same == pytest.approx(0.5, abs=0.01)


def test_dropout_mask_edge_probabilities() -> None:
    assert torch.equal(dropout_mask(torch.Size([3, 2]), 0.0, torch.float32), torch.ones(3, 2))
    assert torch.equal(dropout_mask(torch.Size([3, 2]), 1.0, torch.float32), torch.zeros(3, 2))


def test_dropout_is_seeded_identity_in_eval_and_has_no_state() -> None:
    layer = Dropout(0.3)
    x = torch.randn(64, 32)
    assert layer.state_dict() == {} and isinstance(layer, nn.Dropout)
    assert torch.equal(layer.eval()(x), x)
    layer.train()
    torch.manual_seed(5)
    a = layer(x)
    torch.manual_seed(5)
    b = layer(x)
    assert torch.equal(a, b) and not torch.equal(a, x)
    assert torch.equal(a == 0, (a == 0) & (x != 0) | (x == 0))
    kept = a != 0
    assert torch.allclose(a[kept], x[kept] / (1 - round(0.3 * 65536) / 65536))


def test_dropout_gradient_is_the_mask() -> None:
    layer = Dropout(0.5)
    x = torch.randn(16, 8, requires_grad=True)
    out = layer(x)
    out.sum().backward()
    assert x.grad is not None
    assert torch.equal(x.grad, out.detach() / x.detach())


@pytest.mark.parametrize("id_dtype", [torch.int32, torch.int64])
def test_field_embedding_gradient_equals_nn_embedding(id_dtype: torch.dtype) -> None:
    torch.manual_seed(0)
    emb = FieldEmbedding([5, 7, 3], 4).double()
    ids = torch.tensor([[0, 1, 2], [4, 1, 0], [4, 6, 2], [0, 1, 2]], dtype=id_dtype)  # repeats
    grad = torch.randn(4, 3, 4, dtype=torch.float64)
    out = emb(ids)
    out.backward(grad)
    fast = emb.table.weight.grad
    emb.table.weight.grad = None
    reference = emb.table(ids + emb.offsets.to(id_dtype))
    reference.backward(grad)
    assert torch.equal(out, reference)
    assert fast is not None and torch.allclose(fast, emb.table.weight.grad)


def test_field_embedding_without_grad_uses_plain_lookup() -> None:
    emb = FieldEmbedding([5, 7], 3)
    ids = torch.tensor([[1, 6]])
    with torch.no_grad():
        out = emb(ids)
    assert torch.equal(out[0, 1], emb.table.weight[5 + 6])
