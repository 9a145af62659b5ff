from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from ml.config import Config
from ml.training import run_dir as rd
from ml.training.trainer import EncodedSplit, Trainer, TrainingError, train

NUMERIC_KEYS = (
    "test_auc",
    "test_logloss",
    "test_accuracy",
    "val_auc",
    "val_logloss",
    "val_accuracy",
    "best_epoch",
    "epochs_run",
)


class Crash(Exception):
    pass


def _quiet(lines: list[str]) -> Any:
    return lines.append


def test_train_writes_a_complete_run_directory(cfg: Config, home: Path) -> None:
    lines: list[str] = []
    result = train(cfg, log=_quiet(lines), progress=False)
    run = result.run_dir
    assert run.parent == home / "experiments" / "runs"
    assert re.fullmatch(r"ctr_model_\d{8}_\d{6}", run.name)
    assert not result.reused and result.resumed_from_epoch is None
    names = {p.name for p in run.iterdir()}
    assert names == {"model_best.pt", "config.yaml", "metrics.json", "run.json", "COMPLETE"}
    metrics = json.loads((run / "metrics.json").read_text())
    for key in (
        *NUMERIC_KEYS,
        "samples_per_sec",
        "train_time_s",
        "wall_time_s",
        "device",
        "model",
        "n_params",
        "history",
    ):
        assert key in metrics, key
    assert metrics["device"] == "cpu" and metrics["model"] == "dcnv2"
    assert len(metrics["history"]) == metrics["epochs_run"] == 3
    assert metrics["samples_per_sec"] > 0
    assert 0.5 < metrics["test_auc"] <= 1.0
    info = json.loads((run / "run.json").read_text())
    assert info["config_digest"] == cfg.digest()
    assert info["seed"] == 7 and info["features_dir"] == str(cfg.data.features_dir)
    assert info["data_fingerprint"] is None or "digest" in info["data_fingerprint"]
    assert lines[0].startswith("🚀 Running training command... model=dcnv2")
    epoch_lines = [ln for ln in lines if ln.startswith("Epoch ")]
    assert len(epoch_lines) == 3
    assert re.match(r"Epoch 1/3: Train Loss: \d\.\d{4}, Val AUC: \d\.\d{4}", epoch_lines[0])
    assert lines[-1].startswith("✅ Training complete")
    assert rd.latest_complete_run(cfg.output.runs_dir) == run


def test_train_checkpoint_describes_itself_and_loads_weights_only(cfg: Config) -> None:
    result = train(cfg, log=lambda _: None, progress=False)
    ckpt = torch.load(result.run_dir / "model_best.pt", weights_only=True)
    assert ckpt["format_version"] == 1
    assert ckpt["model_name"] == "dcnv2"
    assert ckpt["model_args"]["embedding_dim"] == 4
    assert ckpt["features"] == cfg.features.to_dict()
    assert ckpt["config"] == cfg.to_dict()
    assert ckpt["epoch"] == result.metrics["best_epoch"]
    assert ckpt["val_auc"] == pytest.approx(result.metrics["val_auc"])
    vocab = ckpt["preprocessor"]["categorical"][0]["vocab"]
    assert isinstance(vocab, list) and all(isinstance(v, int) for v in vocab)
    from ml.models import build_model

    model = build_model(ckpt["model_name"], **ckpt["model_args"])
    model.load_state_dict(ckpt["state_dict"])


def test_train_same_seed_gives_identical_metrics(cfg: Config) -> None:
    a = train(cfg, log=lambda _: None, progress=False).metrics
    b = train(cfg, log=lambda _: None, progress=False).metrics
    for key in NUMERIC_KEYS:
        assert a[key] == b[key], key
    assert [h["train_loss"] for h in a["history"]] == [h["train_loss"] for h in b["history"]]


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_train_resume_after_crash_matches_uninterrupted_run(
    cfg: Config, home: Path, precision: str
) -> None:
    # bf16 autocast and the fused Adam (its state dict included) resume exactly too.
    cfg = cfg.replace(training={"epochs": 4, "patience": 4, "precision": precision})
    full = train(cfg, run_dir=home / "full", log=lambda _: None, progress=False).metrics

    def crash_after_2(epoch: int, record: dict[str, Any]) -> None:
        if epoch == 2:
            raise Crash("killed")

    run = home / "interrupted"
    with pytest.raises(Crash):
        train(cfg, run_dir=run, log=lambda _: None, progress=False, on_epoch_end=crash_after_2)
    assert (run / "checkpoint_last.pt").is_file() and not rd.is_complete(run)
    assert torch.load(run / "checkpoint_last.pt", weights_only=True)["trainer"]["epoch"] == 2

    lines: list[str] = []
    resumed = train(cfg, run_dir=run, log=lines.append, progress=False)
    assert resumed.resumed_from_epoch == 2
    assert [ln.split(":")[0] for ln in lines if ln.startswith("Epoch")] == [
        "Epoch 3/4",
        "Epoch 4/4",
    ]
    for key in NUMERIC_KEYS:
        assert resumed.metrics[key] == full[key], key
    assert [h["train_loss"] for h in resumed.metrics["history"]] == [
        h["train_loss"] for h in full["history"]
    ]
    assert rd.is_complete(run) and not (run / "checkpoint_last.pt").exists()


def test_train_complete_run_dir_is_reused(cfg: Config, home: Path) -> None:
    first = train(cfg, run_dir=home / "run", log=lambda _: None, progress=False)
    stamp = (home / "run" / "COMPLETE").stat().st_mtime_ns
    lines: list[str] = []
    again = train(cfg, run_dir=home / "run", log=lines.append, progress=False)
    assert again.reused and again.metrics["test_auc"] == first.metrics["test_auc"]
    assert (home / "run" / "COMPLETE").stat().st_mtime_ns == stamp
    assert not any(ln.startswith("Epoch") for ln in lines)


def test_train_resume_with_another_config_is_refused(cfg: Config, home: Path) -> None:
    def crash(epoch: int, record: dict[str, Any]) -> None:
        raise Crash

    with pytest.raises(Crash):
        train(cfg, run_dir=home / "run", log=lambda _: None, progress=False, on_epoch_end=crash)
    other = cfg.replace(training={"learning_rate": 0.5})
    with pytest.raises(TrainingError, match="different configuration"):
        train(other, run_dir=home / "run", log=lambda _: None, progress=False)


def test_train_missing_features_dir_says_how_to_create_it(cfg: Config, home: Path) -> None:
    with pytest.raises(TrainingError, match="ctr-pipeline data generate"):
        train(cfg, features_dir=home / "nowhere", log=lambda _: None)
    assert not (home / "experiments").exists()  # nothing half-written


def test_train_missing_column_is_named_and_leaves_no_run(cfg: Config, home: Path) -> None:
    bad = cfg.replace(features={"numeric": ["user_age", "no_such_column"]})
    with pytest.raises((TrainingError, ValueError), match="no_such_column"):
        train(bad, log=lambda _: None)
    assert not (home / "experiments").exists()


def test_train_progress_bar_only_when_asked_or_on_a_tty(
    cfg: Config, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = cfg.replace(training={"epochs": 1})
    train(cfg, log=lambda _: None, progress=True)
    assert "epoch 1/1 [" in capsys.readouterr().err
    train(cfg, log=lambda _: None)  # stderr is captured, not a TTY: plain lines only
    assert capsys.readouterr().err == ""


def _write_split(root: Path, split: str, df: pd.DataFrame) -> None:
    (root / split).mkdir(parents=True, exist_ok=True)
    df.to_parquet(root / split / "data.parquet")


def test_train_numeric_nan_error_policy_names_file_and_column(home: Path, make_config: Any) -> None:
    rng = np.random.default_rng(0)
    data = home / "feats"
    for split in ("train", "val", "test"):
        df = pd.DataFrame(
            {
                "click": rng.integers(0, 2, 200),
                "site": rng.choice(["a", "b", "c"], 200),
                "price": rng.normal(size=200),
            }
        )
        if split == "train":
            df.loc[5, "price"] = np.nan
        _write_split(data, split, df)
    cfg = make_config(
        data,
        home / "runs",
        features={"label": "click", "categorical": ["site"], "numeric": ["price"]},
        data={"numeric_nan": "error"},
    )
    with pytest.raises(Exception, match=r"train/data\.parquet.*'price'"):
        train(cfg, log=lambda _: None)
    # With imputation the same data trains (here on a string-only categorical column).
    ok = train(cfg.replace(data={"numeric_nan": "impute"}), log=lambda _: None, progress=False)
    assert rd.is_complete(ok.run_dir)


def _tiny_split(n: int, seed: int) -> EncodedSplit:
    rng = np.random.default_rng(seed)
    return EncodedSplit.from_arrays(
        rng.integers(0, 3, (n, 1)).astype(np.int32),
        rng.normal(size=(n, 1)).astype(np.float32),
        rng.integers(0, 2, n),
        "cpu",
    )


def test_encoded_split_packs_and_unpacks_exactly() -> None:
    cat = np.array([[1, 2**30], [0, 7]], dtype=np.int32)
    num = np.array([[1.5, -np.pi], [np.float32(1e-30), 0.0]], dtype=np.float32)
    split = EncodedSplit.from_arrays(cat, num, np.array([1, 0]), "cpu")
    assert split.data.dtype == torch.int32 and split.data.shape == (2, 5)
    c, x, y = split.batch(torch.tensor([1, 0]))  # one indexed read, then views
    assert c.tolist() == [[0, 7], [1, 2**30]]
    np.testing.assert_array_equal(x.numpy(), num[[1, 0]])
    assert x.dtype == torch.float32 and y.tolist() == [0.0, 1.0]
    assert split.y.tolist() == [1.0, 0.0] and len(split) == 2


def test_trainer_early_stopping_waits_for_patience(tmp_path: Path) -> None:
    from ml.models import build_model

    model = build_model("logreg", vocab_sizes=[3], num_numeric=1)
    trainer = Trainer(
        model,
        run_dir=tmp_path,
        checkpoint_meta={},
        learning_rate=0.01,
        weight_decay=0.0,
        batch_size=16,
        epochs=20,
        patience=2,
        seed=0,
        device=torch.device("cpu"),
        log=lambda _: None,
        progress=False,
    )
    aucs = iter([0.60, 0.65, 0.64, 0.66, 0.65, 0.655, 0.99])
    trainer.evaluate = lambda data: {"auc": next(aucs), "logloss": 0.5, "accuracy": 0.5}  # type: ignore[method-assign]
    state = trainer.fit(_tiny_split(64, 0), _tiny_split(32, 1))
    # Best 0.66 at epoch 4; epochs 5 and 6 do not improve -> stop after 6 (0.99 never seen).
    assert trainer.epoch == 6 and state.stopped
    assert state.best_epoch == 4 and state.best == pytest.approx(0.66)
    assert torch.load(tmp_path / "model_best.pt", weights_only=True)["epoch"] == 4


def test_train_bf16_reaches_the_fp32_auc_on_tiny_data(cfg: Config) -> None:
    cfg = cfg.replace(model={"name": "deepfm", "hidden_units": [32, 16]}, training={"epochs": 3})
    fp32 = train(cfg, log=lambda _: None, progress=False).metrics
    bf16 = train(
        cfg.replace(training={"precision": "bf16"}), log=lambda _: None, progress=False
    ).metrics
    assert bf16["test_auc"] != fp32["test_auc"]  # the forward pass really ran in bf16
    assert bf16["test_auc"] == pytest.approx(fp32["test_auc"], abs=0.01)
    assert bf16["test_logloss"] == pytest.approx(fp32["test_logloss"], abs=0.01)


def test_training_precision_must_be_fp32_or_bf16(cfg: Config) -> None:
    from ml.config import ConfigError

    with pytest.raises(ConfigError, match=r"training.precision must be one of \('fp32', 'bf16'\)"):
        cfg.replace(training={"precision": "fp16"})


def test_trainer_uses_the_fused_adam_on_cpu(tmp_path: Path) -> None:
    from ml.models import build_model

    model = build_model("deepfm", vocab_sizes=[3, 4], num_numeric=1)
    trainer = Trainer(
        model,
        run_dir=tmp_path,
        checkpoint_meta={},
        learning_rate=0.01,
        weight_decay=0.0,
        batch_size=16,
        epochs=1,
        patience=1,
        seed=0,
        device=torch.device("cpu"),
        log=lambda _: None,
        progress=False,
    )
    assert trainer.optimizer.defaults["fused"] is True
