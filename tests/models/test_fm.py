from __future__ import annotations

import pytest
import torch

from ml.models import build_model
from ml.models.fm import pairwise_interaction

VOCABS = [5, 7, 3]


def _batch(numerics: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    cat = torch.stack([torch.randint(0, v, (16,), generator=g) for v in VOCABS], 1).int()
    return cat, torch.randn(16, numerics, generator=g, dtype=torch.float64)


def test_pairwise_interaction_equals_the_explicit_double_sum() -> None:
    v = torch.randn(4, 5, 3, dtype=torch.float64)
    explicit = sum((v[:, i] * v[:, j]).sum(dim=1) for i in range(5) for j in range(i + 1, 5))
    assert torch.allclose(pairwise_interaction(v), explicit, atol=1e-12)


@pytest.mark.parametrize("numerics", [0, 2])
def test_fm_is_logistic_regression_plus_every_pair_of_field_vectors(numerics: int) -> None:
    torch.manual_seed(0)
    model = build_model("fm", vocab_sizes=VOCABS, num_numeric=numerics, embedding_dim=3).double()
    for p in model.parameters():  # weights large enough for the pairs to matter
        torch.nn.init.normal_(p, std=0.5)
    cat, num = _batch(numerics)
    emb = model.embedding(cat)  # type: ignore[misc]
    vecs = [emb[:, f] for f in range(len(VOCABS))]
    vecs += [num[:, j : j + 1] * model.numeric_vectors[j] for j in range(numerics)]
    pairs = sum(
        (vecs[i] * vecs[j]).sum(dim=1) for i in range(len(vecs)) for j in range(i + 1, len(vecs))
    )
    expected = model.linear(cat, num) + pairs
    assert torch.allclose(model(cat, num), expected, atol=1e-10)


def test_fm_with_zero_vectors_is_its_logistic_regression() -> None:
    model = build_model("fm", vocab_sizes=VOCABS, num_numeric=2, embedding_dim=4)
    with torch.no_grad():
        model.embedding.table.weight.zero_()  # type: ignore[union-attr]
        model.numeric_vectors.zero_()
    cat, num = _batch(2)
    assert torch.equal(model(cat, num.float()), model.linear(cat, num.float()))
