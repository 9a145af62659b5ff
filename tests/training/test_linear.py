"""ml.training.linear: the logreg candidate's L2, chosen on validation; its weight decay
reaches scikit-learn's optimum for the same C."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from ml.training import auto, linear


def test_l2_path_walks_to_the_best_c_on_validation() -> None:
    # unimodal in log C with its peak at C = 10 ** (-4 / 2) = 0.01: two steps below the start
    seen: list[float] = []

    def fit(c: float) -> float:
        seen.append(c)
        return -abs(math.log10(c) + 2.0)

    best, scores = linear.l2_path(fit, maximize=True)
    assert best == pytest.approx(0.01)
    assert len(seen) == len(set(seen)) == 5  # start, its two neighbours, two steps down
    assert min(scores) == pytest.approx(10**-2.5)  # one past the peak, to see it turn


def test_l2_path_stays_in_bounds_and_keeps_the_first_on_a_tie() -> None:
    best, scores = linear.l2_path(lambda c: 0.1 / c, maximize=False)  # smaller is better: C up
    assert best == pytest.approx(10 ** (linear.LINEAR_C_MAX / 2)) and max(scores) == best
    best, scores = linear.l2_path(lambda c: 0.5, maximize=True)
    assert best == pytest.approx(10 ** (linear.LINEAR_C_START / 2)) and len(scores) == 3
    best, _ = linear.l2_path(lambda c: None if c > 0.2 else c, maximize=True)
    assert best == pytest.approx(0.1)  # a non-finite metric never wins


@pytest.mark.slow  # 640 optimisation steps: ~3 s on two loaded cores
def test_linear_weight_decay_reaches_scikit_learns_optimum(tmp_path: Path) -> None:
    """The torch logreg, trained as the candidate is (Adam at its learning rate, the
    size-rule batch, weight decay 1/(C n)), reaches scikit-learn's L2 logistic regression
    with the same C on the same one-hot features: the same penalised log loss."""
    import numpy as np
    import torch
    from sklearn.linear_model import LogisticRegression

    from ml.models import build_model
    from ml.training.sizing import auto_batch_size
    from ml.training.tensors import EncodedSplit
    from ml.training.trainer import EarlyStopping, Trainer

    rng = np.random.default_rng(0)
    n, vocab, c = 4_000, (8, 5), 0.1
    cat = np.stack([rng.integers(1, v, n) for v in vocab], axis=1).astype(np.int32)
    num = rng.normal(size=(n, 2)).astype(np.float32)
    true = [rng.normal(0, 1, v) for v in vocab]
    logit = -1.0 + sum(t[cat[:, j]] for j, t in enumerate(true)) + num @ np.array([0.8, -0.5])
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.float32)
    onehot = np.concatenate([np.eye(v)[cat[:, j]] for j, v in enumerate(vocab)] + [num], axis=1)
    sk = LogisticRegression(C=c, max_iter=2000, tol=1e-8).fit(onehot, y)
    w_sk = np.concatenate([sk.coef_[0], sk.intercept_])

    torch.manual_seed(0)
    model = build_model("logreg", vocab_sizes=list(vocab), num_numeric=2)
    decay = linear.linear_weight_decay(c, n)  # x10: log loss 0.560 vs 0.548
    trainer = Trainer(
        model,
        run_dir=tmp_path,
        checkpoint_meta={},
        learning_rate=3e-4 * auto.LINEAR_LR_FACTOR,  # the shipped rate times the factor
        weight_decay=decay,
        batch_size=auto_batch_size(n),
        epochs=40,
        early_stopping=EarlyStopping("val_logloss", patience=40),
        seed=0,
        device=torch.device("cpu"),
        log=lambda _: None,
        progress=False,
    )
    data = EncodedSplit.from_arrays(cat, num, y, "cpu")
    for epoch in range(40):
        trainer.train_epoch(data, epoch)

    def log_loss(logits: np.ndarray) -> float:
        z = np.clip(1 / (1 + np.exp(-logits)), 1e-12, 1 - 1e-12)
        return float(-np.mean(y * np.log(z) + (1 - y) * np.log(1 - z)))

    l_sk = onehot @ w_sk[:-1] + w_sk[-1]
    l_torch = trainer.predict_logits(data).double().numpy()
    assert log_loss(l_torch) == pytest.approx(log_loss(l_sk), abs=2e-3)
    # the same model, not only the same loss (Adam's last steps leave some noise)
    assert np.abs(l_torch - l_sk).mean() < 0.1 and np.corrcoef(l_torch, l_sk)[0, 1] > 0.999
