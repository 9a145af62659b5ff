from __future__ import annotations

import torch

from ml.models import build_model
from ml.models.dcnv2 import CrossNetV2

VOCABS = [5, 7, 3]


def _batch(n: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    cat = torch.stack([torch.randint(0, v, (n,), generator=g) for v in VOCABS], 1).int()
    return cat, torch.randn(n, 2, generator=g)


def test_dcnv2_without_cross_layers_is_an_mlp() -> None:
    model = build_model("dcnv2", vocab_sizes=VOCABS, num_numeric=2, cross_layers=0)
    cat, num = _batch()
    assert model(cat, num).shape == (6,)


def test_cross_net_v2_follows_its_recurrence() -> None:
    torch.manual_seed(0)
    net = CrossNetV2(dim=4, layers=2)
    x0 = torch.randn(3, 4)
    x1 = x0 * net.layers[0](x0) + x0
    expected = x0 * net.layers[1](x1) + x1
    assert torch.allclose(net(x0), expected)
    assert torch.equal(CrossNetV2(dim=4, layers=0)(x0), x0)


def test_dcnv2_head_reads_the_cross_and_the_mlp_output() -> None:
    model = build_model(
        "dcnv2", vocab_sizes=VOCABS, num_numeric=2, embedding_dim=4, hidden_units=[8, 3]
    )
    in_dim = len(VOCABS) * 4 + 2
    assert model.head.in_features == in_dim + 3  # type: ignore[union-attr]
    assert model.output_bias is model.head.bias  # type: ignore[union-attr]
