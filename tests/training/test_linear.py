"""ml.training.linear: the logreg fitted to scikit-learn's optimum, its L2 chosen on
validation along the C path; mini-batches where the exact fit cannot run."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from ml.config import Config
from ml.models import build_model
from ml.models.logreg import LogReg
from ml.training import auto, linear
from ml.training.tensors import EncodedSplit
from ml.training.trainer import EarlyStopping, Trainer

VOCAB = (8, 5)  # two fields, id 0 (out of vocabulary) included


def _data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(cat, num, y)`` of a logistic truth on two fields and two numerics."""
    rng = np.random.default_rng(seed)
    truth = np.random.default_rng(0)
    effects = [truth.normal(0, 1, v) for v in VOCAB]
    cat = np.stack([rng.integers(1, v, n) for v in VOCAB], axis=1).astype(np.int32)
    num = rng.normal(size=(n, 2)).astype(np.float32)
    logit = -1.0 + sum(e[cat[:, j]] for j, e in enumerate(effects)) + num @ np.array([0.8, -0.5])
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.float32)
    return cat, num, y


def _split(n: int, seed: int) -> EncodedSplit:
    return EncodedSplit.from_arrays(*_data(n, seed), "cpu")


def _logreg() -> LogReg:
    torch.manual_seed(0)
    model = build_model("logreg", vocab_sizes=list(VOCAB), num_numeric=2)
    assert isinstance(model, LogReg)
    return model


def _trainer(tmp_path: Path, monitor: str = "val_auc", **kw: Any) -> Trainer:
    return Trainer(
        _logreg(),
        run_dir=tmp_path,
        checkpoint_meta={},
        learning_rate=0.01,
        weight_decay=0.0,
        batch_size=64,
        epochs=3,
        early_stopping=EarlyStopping(monitor, patience=1),
        seed=0,
        device=torch.device("cpu"),
        log=lambda _: None,
        progress=False,
        **kw,
    )


def test_l2_path_walks_to_the_best_c_then_tries_the_quarter_decades_beside_it() -> None:
    # unimodal in log C with its peak at C = 10 ** (-8 / 4) = 0.01: two steps below the start
    seen: list[float] = []

    def fit(c: float) -> float:
        seen.append(c)
        return -abs(math.log10(c) + 2.0)

    best, scores = linear.l2_path(fit, maximize=True)
    assert best == pytest.approx(0.01)
    # the start and its neighbours, two half-decade steps down, one past the peak to see it
    # turn, then the quarter decades either side of the peak
    assert [round(math.log10(c) * 4) for c in seen] == [-4, -6, -2, -8, -10, -9, -7]
    assert list(scores) == sorted(scores)


def test_l2_path_stays_in_bounds_and_keeps_the_first_on_a_tie() -> None:
    best, scores = linear.l2_path(lambda c: 0.1 / c, maximize=False)  # smaller is better: C up
    assert best == pytest.approx(10 ** (linear.LINEAR_C_MAX / 4)) and max(scores) == best
    best, scores = linear.l2_path(lambda c: 0.5, maximize=True)
    assert best == pytest.approx(10 ** (linear.LINEAR_C_START / 4)) and len(scores) == 5
    best, _ = linear.l2_path(lambda c: None if c > 0.2 else c, maximize=True)
    assert best == pytest.approx(10**-0.75)  # a non-finite metric never wins


def test_fit_exact_reaches_scikit_learns_optimum_on_the_one_hot_features() -> None:
    """The defining behaviour: the LogReg module, fitted, gives the logits of scikit-learn's
    L2 logistic regression with the same C on an independent one-hot of the same rows."""
    from sklearn.linear_model import LogisticRegression

    cat, num, y = _data(4_000, 1)
    c, n = 0.1, len(y)
    onehot = np.concatenate([np.eye(v)[cat[:, j]] for j, v in enumerate(VOCAB)] + [num], axis=1)
    sk = LogisticRegression(C=c, max_iter=5000, tol=1e-10).fit(onehot, y)
    want = onehot @ sk.coef_[0] + sk.intercept_[0]

    model = _logreg()
    data = EncodedSplit.from_arrays(cat, num, y, "cpu")
    x = linear.design_matrix(model, data)
    got = linear.fit_exact(model, x, y.astype(np.float64), linear.linear_weight_decay(c, n))
    assert got.converged and got.iterations < linear.EXACT_MAX_ITER
    with torch.no_grad():
        logits = model(torch.from_numpy(cat), torch.from_numpy(num)).double().numpy()
    assert np.abs(logits - want).max() < 1e-3
    loss = np.mean(np.logaddexp(0, want) - y * want)
    assert got.train_loss == pytest.approx(loss, abs=1e-6)
    # the OOV id never occurs in train: its weight is the penalty's 0
    assert model.weights is not None
    assert float(model.weights.table.weight[0].detach()) == pytest.approx(0.0, abs=1e-6)


def test_fit_path_keeps_the_c_with_the_best_validation_metric(tmp_path: Path) -> None:
    trainer = _trainer(tmp_path)
    train, val = _split(1_500, 1), _split(1_000, 2)
    fit = linear.fit_path(trainer, train, val, None)
    history = trainer.early.history
    assert [r["epoch"] for r in history] == list(range(1, len(history) + 1))
    assert len(history) == len(fit["path"]) >= 5
    kept = max(history, key=lambda r: r["val_auc"])  # the first of the best
    assert fit["C"] == kept["C"] and trainer.early.best_epoch == kept["epoch"]
    assert fit["weight_decay"] == pytest.approx(linear.linear_weight_decay(kept["C"], 1_500))
    assert trainer.weight_decay == fit["weight_decay"] and not trainer.early.stopped
    # model_best.pt holds the kept C's weights: the same model as a fresh fit at that C
    best = torch.load(tmp_path / "model_best.pt", weights_only=True)
    assert best["epoch"] == kept["epoch"]
    again = _logreg()
    linear.fit_exact(
        again, linear.design_matrix(again, train), train.y.double().numpy(), fit["weight_decay"]
    )
    for name, tensor in again.state_dict().items():
        assert torch.allclose(best["state_dict"][name], tensor, atol=1e-6), name


def test_fit_path_resumed_repeats_no_fit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = _trainer(tmp_path / "a")
    train, val = _split(1_500, 1), _split(1_000, 2)
    fit = linear.fit_path(first, train, val, None)
    resumed = _trainer(tmp_path / "b")
    resumed.load_resume_state(first.resume_state(), first.best_state)
    calls: list[float] = []
    real = linear.fit_exact
    monkeypatch.setattr(
        linear,
        "fit_exact",
        lambda *a: calls.append(a[3]) or real(*a),  # type: ignore[func-returns-value]
    )
    assert linear.fit_path(resumed, train, val, None) == fit and calls == []


def test_a_configured_weight_decay_is_one_exact_fit(tmp_path: Path) -> None:
    trainer = _trainer(tmp_path, monitor="val_logloss")
    fit = linear.fit_path(trainer, _split(1_500, 1), _split(1_000, 2), 1e-3)
    assert [r["weight_decay"] for r in trainer.early.history] == [1e-3]
    assert fit["C"] == pytest.approx(1 / (1e-3 * 1_500)) and trainer.weight_decay == 1e-3


def test_the_first_fit_runs_past_the_deadline_and_the_path_stops(tmp_path: Path) -> None:
    trainer = _trainer(tmp_path, deadline=0.0)  # long past
    fit = linear.fit_path(trainer, _split(1_500, 1), _split(1_000, 2), None)
    assert len(trainer.early.history) == 1 and fit["C"] == pytest.approx(0.1)
    assert trainer.cut_short == "time budget spent after 1 fit(s)"


def test_one_class_in_train_is_a_clear_error(tmp_path: Path) -> None:
    from ml.errors import TrainingError

    cat, num, _ = _data(200, 1)
    train = EncodedSplit.from_arrays(cat, num, np.zeros(200, np.float32), "cpu")
    with pytest.raises(TrainingError, match=r"only label 0 .* needs both clicks and non-clicks"):
        linear.fit_path(_trainer(tmp_path), train, _split(100, 2), None)


@pytest.mark.parametrize(
    ("kw", "why"),
    [
        ({"streaming": True}, "streaming: the exact fit needs the train split in memory"),
        ({"distributed": True}, "under torchrun"),
        ({"state": {"trainer": {"early_stop": {"history": [{"epoch": 1}]}}}}, "as the resumed"),
        ({"room": 1000}, "the exact fit would need"),
    ],
)
def test_use_exact_fit_falls_back_to_mini_batches_and_says_why(
    cfg: Config, kw: dict[str, Any], why: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    kw = dict(kw)
    room = kw.pop("room", 10**12)
    monkeypatch.setattr(linear, "available_memory", lambda: room)
    args: dict[str, Any] = {"streaming": False, "distributed": False, "state": None, **kw}
    logreg, lines = cfg.replace(model={"name": "logreg"}), []  # type: ignore[var-annotated]
    assert linear.use_exact_fit(logreg, train=_split(50, 1), log=lines.append, **args) is False
    assert len(lines) == 1 and why in lines[0] and "mini-batch Adam" in lines[0]


def test_use_exact_fit_only_for_a_logreg_in_memory(cfg: Config) -> None:
    lines: list[str] = []
    args: dict[str, Any] = {"streaming": False, "distributed": False, "state": None}
    assert not linear.use_exact_fit(cfg, train=_split(50, 1), log=lines.append, **args)
    assert lines == []  # the other families: nothing to say
    logreg = cfg.replace(model={"name": "logreg"}, training={"weight_decay": None})
    assert linear.use_exact_fit(logreg, train=_split(50, 1), log=lines.append, **args)
    assert "exact fit" in lines[0] and "chosen on validation" in lines[0]


def test_logreg_trains_exactly_through_the_job_and_serves(cfg: Config) -> None:
    from ml.serving.predictor import Predictor
    from ml.training.job import train

    lines: list[str] = []
    logreg = cfg.replace(model={"name": "logreg"}, training={"weight_decay": None})
    result = train(logreg, log=lines.append, progress=False)
    m = result.metrics
    assert m["linear_fit"]["method"] == "exact" and len(m["history"]) == len(
        m["linear_fit"]["path"]
    )
    kept = m["history"][m["best_epoch"] - 1]
    assert kept["C"] == m["linear_fit"]["C"] and m["weight_decay"] == kept["weight_decay"]
    assert not any(line.startswith("Batch size") for line in lines)  # unused: not logged
    # the checkpoint serves the fitted model: its test AUC from the rows as training read them
    from ml.data.loading import load_split
    from ml.metrics import roc_auc

    test = load_split(logreg.data.features_dir, "test", logreg.features)
    probs = Predictor.load(result.run_dir).predict_proba(test)
    assert roc_auc(test["click"].to_numpy(), probs) == pytest.approx(m["test_auc"], abs=1e-9)


@pytest.mark.slow  # 640 optimisation steps: ~3 s on two loaded cores
def test_linear_weight_decay_reaches_scikit_learns_optimum(tmp_path: Path) -> None:
    """Where the logreg trains in mini-batches (streaming, torchrun), Adam at the
    candidate's learning rate with weight decay 1/(C n) reaches scikit-learn's L2
    logistic regression with the same C on the same one-hot features."""
    from sklearn.linear_model import LogisticRegression

    from ml.training.sizing import auto_batch_size

    rng = np.random.default_rng(0)
    n, c = 4_000, 0.1
    cat = np.stack([rng.integers(1, v, n) for v in VOCAB], axis=1).astype(np.int32)
    num = rng.normal(size=(n, 2)).astype(np.float32)
    true = [rng.normal(0, 1, v) for v in VOCAB]
    logit = -1.0 + sum(t[cat[:, j]] for j, t in enumerate(true)) + num @ np.array([0.8, -0.5])
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.float32)
    onehot = np.concatenate([np.eye(v)[cat[:, j]] for j, v in enumerate(VOCAB)] + [num], axis=1)
    sk = LogisticRegression(C=c, max_iter=2000, tol=1e-8).fit(onehot, y)
    trainer = Trainer(
        _logreg(),
        run_dir=tmp_path,
        checkpoint_meta={},
        learning_rate=3e-4 * auto.LINEAR_LR_FACTOR,  # the shipped rate times the factor
        weight_decay=linear.linear_weight_decay(c, n),
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

    l_sk = onehot @ sk.coef_[0] + sk.intercept_[0]
    l_torch = trainer.predict_logits(data).double().numpy()
    assert log_loss(l_torch) == pytest.approx(log_loss(l_sk), abs=2e-3)
    # the same model, not only the same loss (Adam's last steps leave some noise)
    assert np.abs(l_torch - l_sk).mean() < 0.1 and np.corrcoef(l_torch, l_sk)[0, 1] > 0.999
