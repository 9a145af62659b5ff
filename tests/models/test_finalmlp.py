from __future__ import annotations

import torch

from ml.models import build_model

VOCABS = [5, 7, 3]


def _model(hidden: list[int]) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(
        "finalmlp",
        vocab_sizes=VOCABS,
        num_numeric=2,
        embedding_dim=4,
        hidden_units=hidden,
        dropout=0.0,
    ).double()


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    cat = torch.stack([torch.randint(0, v, (16,), generator=g) for v in VOCABS], 1).int()
    return cat, torch.randn(16, 2, generator=g, dtype=torch.float64)


def test_finalmlp_gates_start_at_one_and_stay_within_zero_and_two() -> None:
    model = _model([8, 4])
    assert torch.equal(model.gate1(), torch.ones(len(VOCABS) * 4 + 2, dtype=torch.float64))
    for p in model.gate1.parameters():
        torch.nn.init.normal_(p, std=0.5)
    gate = model.gate1()
    assert (gate > 0).all() and (gate < 2).all() and not torch.allclose(gate, torch.ones_like(gate))


def test_finalmlp_fuses_two_gated_streams_bilinearly() -> None:
    model = _model([8, 4])
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.3)
    cat, num = _batch()
    x = model.inputs(cat, num)
    o1 = model.stream1(x * model.gate1())
    o2 = model.stream2(x * model.gate2())
    f = model.fusion
    w = f.bilinear  # (dim1, dim2)
    expected = f.w1.bias + o1 @ f.w1.weight[0] + o2 @ f.w2.weight[0] + ((o1 @ w) * o2).sum(dim=1)
    assert torch.allclose(model(cat, num), expected, atol=1e-10)
    assert o1.shape[1] == 4 and o2.shape[1] == 8  # the second stream: the first width only
