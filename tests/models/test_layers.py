"""ml/models/layers.py: the CPU fast paths are the same functions as torch's own."""

from __future__ import annotations

import pytest
import torch

from ml.models.layers import FieldEmbedding


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
