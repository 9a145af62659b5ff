from __future__ import annotations

import json
from pathlib import Path

import pytest

from ml.cli import main

TINY = [
    "--set", "model.embedding_dim=4",
    "--set", "model.hidden_units=[16]",
    "--set", "model.cross_layers=1",
    "--set", "training.batch_size=256",
    "--set", "training.epochs=2",
    "--set", "training.device=cpu",
    "--set", "training.num_threads=1",
    "--set", "training.learning_rate=0.01",
]  # fmt: skip


def test_cli_train_then_evaluate_on_tiny_data(
    home: Path, features_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = home / "experiments" / "runs" / "cli_run"
    code = main(["train", "--features-dir", str(features_dir), "--run-dir", str(run), *TINY])
    assert code == 0
    out = capsys.readouterr().out
    assert "🚀 Running training command..." in out
    assert "Epoch 2/2: Train Loss: " in out and "✅ Training complete" in out
    assert (run / "COMPLETE").is_file()
    recorded = json.loads((run / "metrics.json").read_text())

    assert main(["evaluate", "--run-dir", str(run), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["test_auc"] == pytest.approx(recorded["test_auc"], abs=1e-6)

    assert main(["evaluate", "--run-dir", str(run), "--split", "val"]) == 0
    out = capsys.readouterr().out
    assert "📊 Model Metrics:" in out and f"val_auc: {recorded['val_auc']:.4f}" in out


def test_cli_train_without_data_is_a_user_error(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["train", "--features-dir", str(home / "absent"), *TINY])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "ctr-pipeline data generate" in err


def test_cli_train_unknown_override_key_is_a_user_error(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["train", "--set", "training.epoch=2"]) == 2
    assert "'epoch'" in capsys.readouterr().err


def test_cli_evaluate_missing_run_is_a_user_error(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["evaluate", "--run-dir", str(home / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err


LENIENT = ["--min-auc", "0.5", "--min-accuracy", "0.5", "--baseline-tolerance", "none"]


def test_cli_run_generates_missing_data_then_runs_the_whole_pipeline(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["run", "--rows", "2000", *TINY, *LENIENT, "--json"])
    assert code == 0
    out = capsys.readouterr().out
    assert "generated 2,000 rows" in out
    assert "✅ Model registered: ctr_model v1 (staging)" in out
    assert "🎉 Training Pipeline Complete!" in out
    summary = json.loads(out[out.index("{\n") :])
    assert summary["state"] == "success" and summary["model_version"] == "v1"
    assert summary["registered_path"] == "models/staging/ctr_model/v1"
    assert (home / summary["run_dir"]).parent == home / "experiments" / "runs"
    assert [g["name"] for g in summary["gates"]] == ["min_auc", "min_accuracy", "champion"]
    assert not summary["promoted"]
    assert set(summary["steps"]) == {"validate", "train", "evaluate", "register"}
    # A second run reuses the data and registers a new version (it never auto-promotes).
    assert main(["run", *TINY, *LENIENT, "--model-name", "other"]) == 0
    out = capsys.readouterr().out
    assert "Using the existing features" in out and "Model registered: other v1" in out
    assert not (home / "models" / "production").exists()


def test_cli_run_fails_a_model_worse_than_production_and_registers_nothing(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = [*TINY, "--set", "training.epochs=4"]
    assert main(["run", "--rows", "3000", *good, *LENIENT, "--auto-promote"]) == 0
    assert "Promoted ctr_model v1 to production" in capsys.readouterr().out
    bad = [*TINY, "--set", "training.epochs=1", "--set", "training.learning_rate=0.0001"]
    code = main(["run", *bad, *LENIENT, "--max-auc-drop", "0"])
    captured = capsys.readouterr()
    assert code == 1
    assert "error: quality gate failed" in captured.err and "production v1" in captured.err
    assert sorted(p.name for p in (home / "models" / "staging" / "ctr_model").iterdir()) == ["v1"]


def test_cli_run_with_bad_input_exits_2(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--features-dir", str(home / "mine"), *TINY]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "mine" in err
    assert not (home / "mine").exists()  # a user's directory is never generated
