from __future__ import annotations

import pytest
import torch

from ml.models import build_model


def test_logreg_is_linear_in_per_category_weights() -> None:
    model = build_model("logreg", vocab_sizes=[3], num_numeric=1)
    with torch.no_grad():
        model.weights.table.weight.copy_(torch.tensor([[0.0], [1.0], [2.0]]))  # type: ignore[union-attr]
        model.numeric.weight.fill_(0.5)  # type: ignore[union-attr]
        model.bias.fill_(-1.0)
    out = model(torch.tensor([[2], [0]]), torch.tensor([[2.0], [0.0]]))
    assert out.tolist() == [pytest.approx(2.0), pytest.approx(-1.0)]  # 2 + 1 - 1, 0 + 0 - 1


def test_logreg_without_fields_is_bias_plus_linear_numerics() -> None:
    model = build_model("logreg", vocab_sizes=[], num_numeric=2)
    assert model.weights is None and model.output_bias is model.bias
    with torch.no_grad():
        model.numeric.weight.copy_(torch.tensor([[1.0, -2.0]]))  # type: ignore[union-attr]
        model.bias.fill_(0.5)
    out = model(torch.zeros(2, 0, dtype=torch.int32), torch.tensor([[1.0, 1.0], [0.0, 0.0]]))
    assert out.tolist() == [pytest.approx(-0.5), pytest.approx(0.5)]
