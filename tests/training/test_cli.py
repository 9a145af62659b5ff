from __future__ import annotations

import json
from pathlib import Path

import pytest

from ml.cli import main
from ml.config import ConfigError
from ml.training.cli import parse_overrides

TINY = [
    "--set", "model.embedding_dim=4",
    "--set", "model.hidden_units=[16]",
    "--set", "model.cross_layers=1",
    "--set", "training.batch_size=256",
    "--set", "training.epochs=2",
    "--set", "training.device=cpu",
    "--set", "training.num_threads=1",
]  # fmt: skip


def test_parse_overrides_nests_sections_and_parses_yaml() -> None:
    got = parse_overrides(["training.epochs=2", "model.hidden_units=[64, 32]", "seed=1",
                           "model.name=logreg"])  # fmt: skip
    assert got == {
        "training": {"epochs": 2},
        "model": {"hidden_units": [64, 32], "name": "logreg"},
        "seed": 1,
    }


@pytest.mark.parametrize("bad", ["epochs", "=3", "a.b.c=1"])
def test_parse_overrides_rejects_malformed_items(bad: str) -> None:
    with pytest.raises(ConfigError, match="--set"):
        parse_overrides([bad])


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


def test_cli_run_generates_missing_data_then_trains(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["run", "--rows", "2000", *TINY, "--json"])
    assert code == 0
    out = capsys.readouterr().out
    assert "📦 Generating 2,000 rows" in out
    summary = json.loads(out[out.index("{\n") :])
    assert (home / "data" / "features" / "v1" / "train" / "data.parquet").is_file()
    assert Path(summary["run_dir"]).parent == home / "experiments" / "runs"
    assert 0.0 <= summary["test_auc"] <= 1.0 and summary["oracle_test_auc"] > 0.5
    # A second run reuses the data.
    assert main(["run", *TINY]) == 0
    assert "Using the existing features" in capsys.readouterr().out
