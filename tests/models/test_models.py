from __future__ import annotations

import pytest
import torch

from ml.models import MODELS, build_model, model_args_for

VOCABS = [5, 7, 3]
HYPER = {"embedding_dim": 4, "hidden_units": (8, 4), "cross_layers": 2, "dropout": 0.1}


def _batch(n: int = 6, numerics: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    cat = torch.stack([torch.randint(0, v, (n,), generator=g) for v in VOCABS], 1).int()
    return cat, torch.randn(n, numerics, generator=g)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_returns_one_logit_per_row_and_trains(name: str) -> None:
    args = model_args_for(name, vocab_sizes=VOCABS, num_numeric=2, hyperparameters=HYPER)
    model = build_model(name, **args)
    cat, num = _batch()
    logits = model(cat, num)
    assert logits.shape == (6,)
    assert logits.dtype == torch.float32 and torch.isfinite(logits).all()
    loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.ones(6))
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and all(g is not None for g in grads)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_accepts_int64_ids_and_single_row(name: str) -> None:
    model = build_model(
        name, **model_args_for(name, vocab_sizes=VOCABS, num_numeric=2, hyperparameters=HYPER)
    )
    cat, num = _batch(1)
    assert model.eval()(cat.long(), num).shape == (1,)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_without_numeric_features(name: str) -> None:
    args = model_args_for(name, vocab_sizes=VOCABS, num_numeric=0, hyperparameters=HYPER)
    cat, num = _batch(numerics=0)
    assert build_model(name, **args)(cat, num).shape == (6,)


def test_model_args_for_keeps_only_what_each_model_takes() -> None:
    lr = model_args_for("logreg", vocab_sizes=VOCABS, num_numeric=2, hyperparameters=HYPER)
    assert lr == {"vocab_sizes": VOCABS, "num_numeric": 2}
    dcn = model_args_for("dcnv2", vocab_sizes=VOCABS, num_numeric=2, hyperparameters=HYPER)
    assert dcn["cross_layers"] == 2 and dcn["hidden_units"] == [8, 4]  # plain list
    fm = model_args_for("deepfm", vocab_sizes=VOCABS, num_numeric=2, hyperparameters=HYPER)
    assert "cross_layers" not in fm and fm["embedding_dim"] == 4


def test_logreg_is_linear_in_per_category_weights() -> None:
    model = build_model("logreg", vocab_sizes=[3], num_numeric=1)
    with torch.no_grad():
        model.weights.table.weight.copy_(torch.tensor([[0.0], [1.0], [2.0]]))  # type: ignore[union-attr]
        model.numeric.weight.fill_(0.5)  # type: ignore[union-attr]
        model.bias.fill_(-1.0)
    out = model(torch.tensor([[2], [0]]), torch.tensor([[2.0], [0.0]]))
    assert out.tolist() == [pytest.approx(2.0), pytest.approx(-1.0)]  # 2 + 1 - 1, 0 + 0 - 1


def test_dcnv2_without_cross_layers_is_an_mlp() -> None:
    model = build_model("dcnv2", vocab_sizes=VOCABS, num_numeric=2, cross_layers=0)
    cat, num = _batch()
    assert model(cat, num).shape == (6,)


def test_build_model_unknown_name_or_argument_raises() -> None:
    with pytest.raises(ValueError, match="unknown model 'xgboost'"):
        build_model("xgboost")
    with pytest.raises(ValueError, match=r"takes no argument\(s\) \['cross_layers'\]"):
        build_model("deepfm", vocab_sizes=VOCABS, num_numeric=1, cross_layers=2)


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
    cat, num = _batch(64)
    expected = model.eval()(cat, num)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = model(cat, num)
    assert got.dtype == torch.float32
    assert torch.allclose(got, expected, rtol=1e-6, atol=1e-6)
