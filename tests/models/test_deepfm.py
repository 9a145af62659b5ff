from __future__ import annotations

import pytest
import torch

from ml.models import build_model

VOCABS = [5, 7, 3]


def _deepfm_textbook(model: torch.nn.Module, cat: torch.Tensor, num: torch.Tensor) -> torch.Tensor:
    """DeepFM as written before the CPU fast path: every field's vector materialised."""
    vecs = num.unsqueeze(-1) * model.numeric_vectors
    if model.embedding is not None:
        vecs = torch.cat([model.embedding(cat), vecs], dim=1)
    fm = 0.5 * (vecs.sum(dim=1).pow(2) - vecs.pow(2).sum(dim=1)).sum(dim=1)
    deep = model.mlp_head(model.mlp(vecs.flatten(1))).squeeze(-1)
    out: torch.Tensor = model.linear(cat, num) + fm + deep
    return out


@pytest.mark.parametrize(
    ("vocabs", "numerics", "hidden"),
    [(VOCABS, 2, [8, 4]), ([], 2, [8]), (VOCABS, 0, [8]), (VOCABS, 2, [])],
)
def test_deepfm_equals_the_textbook_formula_and_its_gradients(
    vocabs: list[int], numerics: int, hidden: list[int]
) -> None:
    torch.manual_seed(0)
    model = build_model(
        "deepfm", vocab_sizes=vocabs, num_numeric=numerics, hidden_units=hidden, dropout=0.0
    ).double()
    for p in model.parameters():  # weights large enough for every term to matter
        torch.nn.init.normal_(p, std=0.5)
    g = torch.Generator().manual_seed(1)
    cols = [torch.randint(0, v, (32,), generator=g) for v in vocabs]
    cat = torch.stack(cols, 1).int() if cols else torch.zeros(32, 0, dtype=torch.int32)
    num = torch.randn(32, numerics, generator=g, dtype=torch.float64)
    fast = model(cat, num)
    fast.square().sum().backward()
    fast_grads = {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    slow = _deepfm_textbook(model, cat, num)
    slow.square().sum().backward()
    assert torch.allclose(fast, slow, atol=1e-12)
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.allclose(fast_grads[name], p.grad, atol=1e-10), name


def test_deepfm_fm_stays_fp32_under_bf16_autocast() -> None:
    torch.manual_seed(0)
    model = build_model("deepfm", vocab_sizes=VOCABS, num_numeric=2, hidden_units=[8])
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.5)
    with torch.no_grad():  # only the FM and the categorical weights remain (fp32 ops)
        model.mlp_head.weight.zero_()
        model.mlp_head.bias.zero_()
        model.linear.numeric.weight.zero_()  # type: ignore[union-attr]
    g = torch.Generator().manual_seed(1)
    cat = torch.stack([torch.randint(0, v, (64,), generator=g) for v in VOCABS], 1).int()
    num = torch.randn(64, 2, generator=g)
    expected = model.eval()(cat, num)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = model(cat, num)
    assert got.dtype == torch.float32
    assert torch.allclose(got, expected, rtol=1e-6, atol=1e-6)
