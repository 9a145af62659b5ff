"""ml.training.job.train: the run directory it writes, resume, reuse, and bad input."""

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
from ml.errors import DataLoadError, TrainingError
from ml.training import run_dir as rd
from ml.training.hardware import BF16_EMULATED_WARNING
from ml.training.job import train
from ml.training.sizing import auto_batch_size, auto_patience, auto_weight_decay

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


def _quiet(_: str) -> None:
    pass


def test_train_writes_a_complete_run_directory(cfg: Config, home: Path) -> None:
    lines: list[str] = []
    result = train(cfg, log=lines.append, progress=False)
    run = result.run_dir
    assert run.parent == home / "experiments" / "runs"
    assert re.fullmatch(r"ctr_model_\d{8}_\d{6}", run.name)
    assert not result.reused and result.resumed_from_epoch is None
    assert {p.name for p in run.iterdir()} == set(rd.RUN_FILES)
    metrics = json.loads((run / "metrics.json").read_text())
    for key in (*NUMERIC_KEYS, "samples_per_sec", "train_time_s", "wall_time_s", "n_params"):
        assert key in metrics, key
    assert metrics["device"] == "cpu" and metrics["model"] == "dcnv2"
    assert metrics["monitor"] == "val_auc"
    assert len(metrics["history"]) == metrics["epochs_run"] == 3
    assert 0.5 < metrics["test_auc"] <= 1.0
    assert set(metrics["vocabulary"]) == set(cfg.features.categorical)
    assert metrics["rows"]["train"] > metrics["rows"]["val"] > 0
    info = json.loads((run / "run.json").read_text())
    assert info["config_digest"] == cfg.digest()
    assert info["seed"] == 7 and info["features_dir"] == str(cfg.data.features_dir)
    assert len(info["data_fingerprint"]["digest"]) == 64
    assert len(info["code_version"]["source_digest"]) == 64
    assert lines[0].startswith("✅ Features valid:")
    assert any(ln.startswith("🚀 Running training command... model=dcnv2") for ln in lines)
    epoch_lines = [ln for ln in lines if ln.startswith("Epoch ")]
    assert len(epoch_lines) == 3
    assert re.match(r"Epoch 1/3: Train Loss: \d\.\d{4}, Val AUC: \d\.\d{4}", epoch_lines[0])
    assert lines[-1].startswith("✅ Training complete")


def test_train_checkpoint_describes_itself_and_loads_weights_only(cfg: Config) -> None:
    result = train(cfg, log=_quiet, progress=False)
    ckpt = torch.load(result.run_dir / "model_best.pt", weights_only=True)
    assert ckpt["format_version"] == 2 and ckpt["model_name"] == "dcnv2"
    assert ckpt["calibration"]["method"] == result.metrics["calibration"]["method"]
    assert set(result.metrics["calibration"]["cv_logloss"]) == {
        "none",
        "temperature",
        "platt",
        "isotonic",
    }
    assert ckpt["model_args"]["embedding_dim"] == 4
    assert ckpt["features"] == cfg.features.to_dict()
    assert ckpt["config"] == cfg.recorded_dict()
    assert ckpt["epoch"] == result.metrics["best_epoch"]
    assert ckpt["monitor"] == "val_auc"
    assert ckpt["monitor_value"] == pytest.approx(result.metrics["val_auc"])
    vocab = ckpt["preprocessor"]["categorical"][0]["vocab"]
    assert isinstance(vocab, list) and all(isinstance(v, int) for v in vocab)
    from ml.models import build_model

    build_model(ckpt["model_name"], **ckpt["model_args"]).load_state_dict(ckpt["state_dict"])


def test_train_same_seed_gives_identical_metrics(cfg: Config) -> None:
    a = train(cfg, log=_quiet, progress=False).metrics
    b = train(cfg, log=_quiet, progress=False).metrics
    for key in NUMERIC_KEYS:
        assert a[key] == b[key], key
    assert [h["train_loss"] for h in a["history"]] == [h["train_loss"] for h in b["history"]]


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_train_resume_after_crash_matches_uninterrupted_run(
    cfg: Config, home: Path, precision: str
) -> None:
    # bf16 autocast and the fused Adam (its state dict included) resume exactly too.
    cfg = cfg.replace(training={"epochs": 4, "patience": 4, "precision": precision})
    full = train(cfg, run_dir=home / "full", log=_quiet, progress=False).metrics

    def crash_after_2(epoch: int, record: dict[str, Any]) -> None:
        if epoch == 2:
            raise Crash("killed")

    run = home / "interrupted"
    with pytest.raises(Crash):
        train(cfg, run_dir=run, log=_quiet, progress=False, on_epoch_end=crash_after_2)
    assert (run / "checkpoint_last.pt").is_file() and not rd.is_complete(run)
    assert torch.load(run / "checkpoint_last.pt", weights_only=True)["trainer"]["epoch"] == 2

    lines: list[str] = []
    resumed = train(cfg, run_dir=run, log=lines.append, progress=False)
    assert resumed.resumed_from_epoch == 2
    epochs = [ln.split(":")[0] for ln in lines if ln.startswith("Epoch")]
    assert epochs == ["Epoch 3/4", "Epoch 4/4"]
    for key in NUMERIC_KEYS:
        assert resumed.metrics[key] == full[key], key
    assert [h["train_loss"] for h in resumed.metrics["history"]] == [
        h["train_loss"] for h in full["history"]
    ]
    assert rd.is_complete(run) and not (run / "checkpoint_last.pt").exists()


def test_train_complete_run_dir_of_same_inputs_is_reused(cfg: Config, home: Path) -> None:
    first = train(cfg, run_dir=home / "run", log=_quiet, progress=False)
    stamp = (home / "run" / "COMPLETE").stat().st_mtime_ns
    lines: list[str] = []
    again = train(cfg, run_dir=home / "run", log=lines.append, progress=False)
    assert again.reused and again.metrics["test_auc"] == first.metrics["test_auc"]
    assert (home / "run" / "COMPLETE").stat().st_mtime_ns == stamp
    assert not any(ln.startswith("Epoch") for ln in lines)


def test_train_complete_run_dir_of_other_config_is_refused(cfg: Config, home: Path) -> None:
    train(cfg, run_dir=home / "run", log=_quiet, progress=False)
    other = cfg.replace(training={"learning_rate": 0.5})
    with pytest.raises(TrainingError, match=r"finished run of other inputs.*config digest"):
        train(other, run_dir=home / "run", log=_quiet, progress=False)


def test_train_resume_with_another_config_is_refused(cfg: Config, home: Path) -> None:
    def crash(epoch: int, record: dict[str, Any]) -> None:
        raise Crash

    with pytest.raises(Crash):
        train(cfg, run_dir=home / "run", log=_quiet, progress=False, on_epoch_end=crash)
    other = cfg.replace(training={"learning_rate": 0.5})
    with pytest.raises(TrainingError, match="different configuration"):
        train(other, run_dir=home / "run", log=_quiet, progress=False)


def test_train_keyed_run_is_reused_only_for_the_same_config(cfg: Config) -> None:
    first = train(cfg, run_key="0000000042", log=_quiet, progress=False)
    assert first.run_dir.name.endswith("_0000000042")
    again = train(cfg, run_key="0000000042", log=_quiet, progress=False)
    assert again.reused and again.run_dir == first.run_dir
    lines: list[str] = []
    other = cfg.replace(training={"learning_rate": 0.02})
    changed = train(other, run_key="0000000042", log=lines.append, progress=False)
    assert not changed.reused and changed.run_dir != first.run_dir
    assert changed.run_dir.name == f"{first.run_dir.name}_2"
    assert any("Not reusing" in ln and "config digest" in ln for ln in lines)
    assert rd.runs_for_key(cfg.output.runs_dir, "ctr_model", "0000000042") == [
        first.run_dir,
        changed.run_dir,
    ]


def test_train_keyed_run_is_not_reused_when_the_data_changed(
    cfg: Config, home: Path, features_dir: Path
) -> None:
    import shutil

    first = train(cfg, run_key="0000000007", log=_quiet, progress=False)
    data = home / "data_copy"
    shutil.copytree(features_dir, data)
    df = pd.read_parquet(data / "train" / "data.parquet")
    df.iloc[: len(df) // 2].to_parquet(data / "train" / "data.parquet")
    lines: list[str] = []
    second = train(cfg, features_dir=data, run_key="0000000007", log=lines.append, progress=False)
    assert second.run_dir != first.run_dir and not second.reused
    assert any("data digest" in ln for ln in lines)


def test_train_without_test_split_scoring(cfg: Config) -> None:
    result = train(cfg, evaluate_test=False, log=_quiet, progress=False)
    assert "test_auc" not in result.metrics and "val_auc" in result.metrics
    assert set(result.metrics["rows"]) == {"train", "val"}


def test_train_monitor_val_logloss_keeps_the_lowest_logloss_epoch(cfg: Config) -> None:
    cfg = cfg.replace(training={"monitor": "val_logloss", "epochs": 4, "patience": 4})
    result = train(cfg, log=_quiet, progress=False)
    history = result.metrics["history"]
    best = min(history, key=lambda h: h["val_logloss"])
    assert result.metrics["best_epoch"] == best["epoch"]
    # the kept epoch's own (uncalibrated) log loss; val_logloss is the calibrated one
    raw = result.metrics["calibration"]["val_logloss_raw"]
    assert raw == pytest.approx(best["val_logloss"], abs=1e-6)  # float64 vs float32 sigmoid
    ckpt = torch.load(result.run_dir / "model_best.pt", weights_only=True)
    assert ckpt["monitor"] == "val_logloss"


def test_train_null_batch_size_and_weight_decay_follow_the_train_rows(cfg: Config) -> None:
    lines: list[str] = []
    auto = cfg.replace(
        training={"batch_size": None, "weight_decay": None, "patience": None, "monitor": "auto"}
    )
    result = train(auto, log=lines.append, progress=False)
    rows, val_rows = result.metrics["rows"]["train"], result.metrics["rows"]["val"]
    batch = auto_batch_size(rows)
    (line,) = [ln for ln in lines if ln.startswith("Batch size ")]
    assert line.startswith(f"Batch size {batch}, weight decay ")
    assert f", patience {auto_patience(val_rows)} (" in line
    assert f"batch_size, weight_decay, patience automatic: {rows:,} train rows" in line
    assert f"{val_rows:,} val rows" in line
    assert "; patience 5: under 10,000 validation rows" in line
    assert result.metrics["batch_size"] == batch
    assert result.metrics["weight_decay"] == pytest.approx(auto_weight_decay(rows, batch))
    assert result.metrics["patience"] == auto_patience(val_rows) == 5  # 450 val rows: noisy
    recorded = (result.run_dir / "config.yaml").read_text()
    assert "batch_size: null" in recorded and "weight_decay: null" in recorded
    assert "patience: null" in recorded
    # monitor: auto on 450 validation rows: the log loss (AUC is noisy there)
    (why,) = [ln for ln in lines if ln.startswith("Early stopping on ")]
    assert why.startswith(f"Early stopping on val_logloss (monitor automatic: {val_rows:,} val")
    assert result.metrics["monitor"] == "val_logloss" and "monitor: auto" in recorded
    only_decay = train(auto.replace(training={"batch_size": 64}), log=lines.append, progress=False)
    assert only_decay.metrics["batch_size"] == 64
    assert only_decay.metrics["weight_decay"] == pytest.approx(auto_weight_decay(rows, 64))
    assert any("(weight_decay, patience automatic:" in ln for ln in lines)
    explicit = train(cfg, log=lines.append, progress=False)
    assert explicit.metrics["batch_size"] == cfg.training.batch_size
    assert explicit.metrics["weight_decay"] == cfg.training.weight_decay
    assert explicit.metrics["patience"] == cfg.training.patience


def test_train_warns_about_keys_the_model_ignores(cfg: Config) -> None:
    lines: list[str] = []
    logreg = cfg.replace(model={"name": "logreg", "embedding_dim": 8, "cross_layers": 3})
    result = train(logreg, log=lines.append, progress=False)
    (warning,) = [ln for ln in lines if "do not apply" in ln]
    assert "model.embedding_dim" in warning and "model.cross_layers" in warning
    assert "'logreg'" in warning
    recorded = (result.run_dir / "config.yaml").read_text()
    assert "embedding_dim" not in recorded and "cross_layers" not in recorded


def test_train_logs_vocabulary_and_warns_about_a_high_oov_share(cfg: Config) -> None:
    lines: list[str] = []
    train(
        cfg.replace(data={"min_frequency": 50, "max_oov_share": 0.4}),
        log=lines.append,
        progress=False,
    )
    (vocab_line,) = [ln for ln in lines if ln.startswith("Vocabulary")]
    assert "user_id" in vocab_line and "%" in vocab_line
    warned = [ln for ln in lines if "out-of-vocabulary bucket" in ln]
    assert any(ln.startswith("⚠️  user_id:") for ln in warned)
    assert all("data.min_frequency" in ln for ln in warned)
    quiet: list[str] = []
    train(cfg.replace(data={"max_oov_share": 1.0}), log=quiet.append, progress=False)
    assert not any("out-of-vocabulary bucket" in ln for ln in quiet)


def test_train_diverging_loss_is_a_clear_error(cfg: Config) -> None:
    bad = cfg.replace(training={"learning_rate": 1e30, "epochs": 2})
    with pytest.raises(TrainingError, match=r"diverged.*learning_rate"):
        train(bad, log=_quiet, progress=False)


def test_train_missing_features_dir_says_how_to_create_it(cfg: Config, home: Path) -> None:
    with pytest.raises(DataLoadError, match="ctr-pipeline data generate"):
        train(cfg, features_dir=home / "nowhere", log=_quiet)
    assert not (home / "experiments").exists()  # nothing half-written


def test_train_missing_column_is_named_and_leaves_no_run(cfg: Config, home: Path) -> None:
    bad = cfg.replace(features={"numeric": ["user_age", "no_such_column"]})
    with pytest.raises(ValueError, match="no_such_column"):
        train(bad, log=_quiet)
    assert not (home / "experiments").exists()


def test_train_progress_bar_only_when_asked_or_on_a_tty(
    cfg: Config, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = cfg.replace(training={"epochs": 1})
    train(cfg, log=_quiet, progress=True)
    assert "epoch 1/1 [" in capsys.readouterr().err
    train(cfg, log=_quiet)  # stderr is captured, not a TTY: plain lines only
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
    with pytest.raises(ValueError, match=r"train/data\.parquet.*'price'"):
        train(cfg, log=_quiet)
    # With imputation the same data trains (here on a string-only categorical column).
    ok = train(cfg.replace(data={"numeric_nan": "impute"}), log=_quiet, progress=False)
    assert rd.is_complete(ok.run_dir)


def test_train_bf16_reaches_the_fp32_auc_on_tiny_data(cfg: Config) -> None:
    cfg = cfg.replace(model={"name": "deepfm", "hidden_units": [32, 16]}, training={"epochs": 3})
    fp32 = train(cfg, log=_quiet, progress=False).metrics
    bf16 = train(cfg.replace(training={"precision": "bf16"}), log=_quiet, progress=False).metrics
    assert bf16["test_auc"] != fp32["test_auc"]  # the forward pass really ran in bf16
    assert bf16["test_auc"] == pytest.approx(fp32["test_auc"], abs=0.01)
    raw = "test_logloss_raw"  # the forward pass's; each run fits its own calibration
    assert bf16["calibration"][raw] == pytest.approx(fp32["calibration"][raw], abs=0.01)


def test_train_bf16_on_a_cpu_without_native_bf16_warns(
    cfg: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ml.training import hardware

    monkeypatch.setattr(hardware, "cpu_has_native_bf16", lambda: False)
    lines: list[str] = []
    cfg = cfg.replace(training={"epochs": 1, "device": "cpu"})
    train(cfg.replace(training={"precision": "bf16"}), log=lines.append, progress=False)
    assert [ln for ln in lines if BF16_EMULATED_WARNING in ln] != []
    lines.clear()
    train(cfg, log=lines.append, progress=False)  # fp32: nothing to warn about
    assert [ln for ln in lines if "native bf16" in ln] == []


@pytest.mark.parametrize(("native", "expected"), [(True, "bf16"), (False, "fp32")])
def test_train_precision_auto_is_bf16_only_where_the_cpu_computes_it(
    cfg: Config, monkeypatch: pytest.MonkeyPatch, native: bool, expected: str
) -> None:
    from ml.training import hardware

    monkeypatch.setattr(hardware, "cpu_has_native_bf16", lambda: native)
    lines: list[str] = []
    auto = cfg.replace(training={"epochs": 1, "precision": "auto"})
    result = train(auto, log=lines.append, progress=False)
    assert result.metrics["precision"] == expected
    assert [ln for ln in lines if ln.startswith(f"Precision {expected} (automatic: ")] != []
    assert [ln for ln in lines if BF16_EMULATED_WARNING in ln] == []
    assert "precision: auto" in (result.run_dir / "config.yaml").read_text()
    # The same config trains the same run again: "auto" is what the digest records.
    again = train(auto, run_dir=result.run_dir, log=lines.append, progress=False)
    assert again.reused
