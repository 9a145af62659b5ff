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


def test_build_model_unknown_name_or_argument_raises() -> None:
    with pytest.raises(ValueError, match="unknown model 'xgboost'"):
        build_model("xgboost")
    with pytest.raises(ValueError, match=r"takes no argument\(s\) \['cross_layers'\]"):
        build_model("deepfm", vocab_sizes=VOCABS, num_numeric=1, cross_layers=2)
