"""ml.training.trainer: the loop, early stopping on a monitor, per-epoch checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from ml.models import build_model
from ml.training.tensors import EncodedSplit
from ml.training.trainer import EarlyStopping, Trainer


def _tiny_split(n: int, seed: int) -> EncodedSplit:
    rng = np.random.default_rng(seed)
    return EncodedSplit.from_arrays(
        rng.integers(0, 3, (n, 1)).astype(np.int32),
        rng.normal(size=(n, 1)).astype(np.float32),
        rng.integers(0, 2, n),
        "cpu",
    )


def _trainer(tmp_path: Path, early: EarlyStopping, epochs: int = 20) -> Trainer:
    return Trainer(
        build_model("logreg", vocab_sizes=[3], num_numeric=1),
        run_dir=tmp_path,
        checkpoint_meta={},
        learning_rate=0.01,
        weight_decay=0.0,
        batch_size=16,
        epochs=epochs,
        early_stopping=early,
        seed=0,
        device=torch.device("cpu"),
        log=lambda _: None,
        progress=False,
    )


def _scripted(trainer: Trainer, aucs: list[float], loglosses: list[float] | None = None) -> None:
    a, b = iter(aucs), iter(loglosses or [0.5] * len(aucs))
    trainer.evaluate = lambda data: {"auc": next(a), "logloss": next(b), "accuracy": 0.5}  # type: ignore[method-assign]


def test_early_stopping_on_auc_waits_for_patience(tmp_path: Path) -> None:
    trainer = _trainer(tmp_path, EarlyStopping("val_auc", patience=2))
    _scripted(trainer, [0.60, 0.65, 0.64, 0.66, 0.65, 0.655, 0.99])
    state = trainer.fit(_tiny_split(64, 0), _tiny_split(32, 1))
    # Best 0.66 at epoch 4; epochs 5 and 6 do not improve -> stop after 6 (0.99 never seen).
    assert trainer.epoch == 6 and state.stopped
    assert state.best_epoch == 4 and state.best == pytest.approx(0.66)
    assert torch.load(tmp_path / "model_best.pt", weights_only=True)["epoch"] == 4


def test_early_stopping_on_logloss_keeps_the_lowest(tmp_path: Path) -> None:
    trainer = _trainer(tmp_path, EarlyStopping("val_logloss", patience=2))
    _scripted(trainer, [0.6, 0.7, 0.8, 0.9, 0.95], [0.50, 0.45, 0.47, 0.48, 0.40])
    state = trainer.fit(_tiny_split(64, 0), _tiny_split(32, 1))
    assert state.best_epoch == 2 and state.best == pytest.approx(0.45) and trainer.epoch == 4
    ckpt = torch.load(tmp_path / "model_best.pt", weights_only=True)
    assert (ckpt["monitor"], ckpt["monitor_value"]) == ("val_logloss", pytest.approx(0.45))


def test_early_stopping_min_delta_ignores_tiny_gains(tmp_path: Path) -> None:
    trainer = _trainer(tmp_path, EarlyStopping("val_auc", patience=2, min_delta=0.01))
    _scripted(trainer, [0.70, 0.705, 0.709, 0.75])
    state = trainer.fit(_tiny_split(64, 0), _tiny_split(32, 1))
    assert state.best_epoch == 1 and trainer.epoch == 3


def test_early_stopping_round_trips_through_a_dict() -> None:
    early = EarlyStopping("val_logloss", patience=3, min_delta=0.001)
    early.update(1, {"val_logloss": 0.5})
    early.update(2, {"val_logloss": 0.6})
    again = EarlyStopping.from_dict(early.to_dict())
    assert again == early and again.mode == "min"


def test_on_epoch_end_sees_every_record(tmp_path: Path) -> None:
    seen: list[tuple[int, dict[str, Any]]] = []
    trainer = _trainer(tmp_path, EarlyStopping("val_auc", patience=5), epochs=3)
    trainer.on_epoch_end = lambda epoch, record: seen.append((epoch, record))
    trainer.fit(_tiny_split(64, 0), _tiny_split(32, 1))
    assert [e for e, _ in seen] == [1, 2, 3]
    assert {"train_loss", "val_auc", "val_logloss", "epoch_s"} <= set(seen[0][1])
    assert (tmp_path / "checkpoint_last.pt").is_file()


def test_trainer_uses_the_fused_adam_on_cpu(tmp_path: Path) -> None:
    trainer = _trainer(tmp_path, EarlyStopping("val_auc", patience=1), epochs=1)
    assert trainer.optimizer.defaults["fused"] is True


def test_a_long_epoch_logs_progress_from_inside_the_loop(tmp_path: Path) -> None:
    """Issue 28.8: a 13-minute epoch said nothing; with a tiny interval every batch logs."""
    lines: list[str] = []
    trainer = Trainer(
        build_model("logreg", vocab_sizes=[3], num_numeric=1),
        run_dir=tmp_path,
        checkpoint_meta={},
        learning_rate=0.01,
        weight_decay=0.0,
        batch_size=16,
        epochs=2,
        early_stopping=EarlyStopping(patience=5),
        seed=0,
        device=torch.device("cpu"),
        log=lines.append,
        progress=False,
        progress_s=1e-9,
    )
    trainer.fit(_tiny_split(64, 0), _tiny_split(32, 1))
    progress = [line for line in lines if "batch" in line]
    assert len(progress) == 8  # 4 batches of 16 per epoch, 2 epochs
    assert progress[0].startswith("Epoch 1/2: batch 1/4 (25%), ")
    assert "samples/s, epoch ETA " in progress[0] and "(at most 1 more epoch, ~" in progress[0]
    assert progress[-1].startswith("Epoch 2/2: batch 4/4 (100%), ")
    assert lines.index(progress[3]) < lines.index(next(x for x in lines if "Val AUC" in x))


def test_progress_lines_default_to_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CTR_TRAIN_PROGRESS_S", "0")
    assert _trainer(tmp_path, EarlyStopping()).progress_s == 0.0
    monkeypatch.delenv("CTR_TRAIN_PROGRESS_S")
    assert _trainer(tmp_path, EarlyStopping()).progress_s == 30.0
