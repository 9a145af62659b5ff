from __future__ import annotations

import json
from pathlib import Path

import pytest

from ml.cli import main
from testkit.cli import TINY_MODEL_ARGS

TINY = TINY_MODEL_ARGS


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


def test_cli_train_nproc_overrides_the_config(
    home: Path, features_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    args = ["train", "--features-dir", str(features_dir), *TINY, "--model-family", "dcnv2"]
    args += ["--set", "training.device=cuda"]
    assert main([*args, "--nproc", "3"]) == 2  # launching is refused before torchrun starts
    err = capsys.readouterr().err
    assert "training.distributed.nproc is 3 but this machine has 0 GPU(s)" in err
    with pytest.raises(SystemExit):
        main([*args, "--nproc", "0"])
