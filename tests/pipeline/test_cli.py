"""``ctr-pipeline run`` (ml/pipeline/cli.py): the whole pipeline without Airflow, flags
generated from the DAG's params."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from ml.cli import main
from ml.pipeline.cli import add_param_arguments
from ml.pipeline.params import Params, param_specs
from testkit.cli import TINY_MODEL_ARGS

TINY = TINY_MODEL_ARGS


@pytest.fixture
def home(project_home: Path) -> Path:
    """A fresh base directory without features (``run`` generates them)."""
    return project_home


def _parse(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    add_param_arguments(p)
    return p.parse_args(argv)


def test_run_has_one_flag_per_param_with_its_default() -> None:
    args = _parse()
    defaults = Params()
    assert {s.name: getattr(args, s.name) for s in param_specs()} == {
        s.name: getattr(defaults, s.name) for s in param_specs()
    }


def test_run_flags_parse_types_nulls_and_booleans() -> None:
    args = _parse(
        "--min-auc", "0.7", "--epochs", "3", "--baseline-tolerance", "none",
        "--auto-promote", "--features-dir", "data/x", "--drift-action", "fail",
    )  # fmt: skip
    assert (args.min_auc, args.epochs, args.baseline_tolerance) == (0.7, 3, None)
    assert args.auto_promote is True and args.features_path == "data/x"
    assert args.drift_action == "fail"
    assert _parse("--no-auto-promote").auto_promote is False


def test_run_flag_of_the_wrong_type_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        _parse("--epochs", "two")
    assert exc.value.code == 2
    assert "--epochs: expected an integer, got 'two'" in capsys.readouterr().err


def test_run_value_out_of_bounds_exits_2_naming_the_param(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "--min-auc", "1.5"]) == 2
    assert "param min_auc: 1.5 is greater than the maximum of 1" in capsys.readouterr().err


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
    # one epoch at a tiny learning rate: a family trained in mini-batches (auto's logreg is
    # fitted exactly whatever the epochs and learning rate)
    bad = [*TINY, "--set", "model.name=dcnv2", "--set", "training.epochs=1"]
    bad += ["--set", "training.learning_rate=0.0001"]
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
