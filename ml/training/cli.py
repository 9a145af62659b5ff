"""``ctr-pipeline train | evaluate | run``: training and the whole pipeline without Airflow.

- ``train``: train the configured model into a run directory (resumes an interrupted
  ``--run-dir``; a complete one of the same config and data is reused).
- ``evaluate``: recompute a run's metrics on a split from its checkpoint.
- ``run``: the whole pipeline without Airflow: validate → train → evaluate with the
  DAG's gates (thresholds, champion/challenger, baseline) → register under
  ``--model-name`` (promoted only with ``--auto-promote``). Exit 1 when a gate fails
  (nothing registered), 2 on bad input, 3 when the environment failed.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

from ml import paths
from ml.cli_common import add_command, add_config_args, from_args, load_config_args, parse_overrides
from ml.errors import ConfigError


def add_commands(sub: Any) -> None:
    """Register ``train``, ``evaluate`` and ``run`` on the ``ctr-pipeline`` subparsers."""
    p = add_command(sub, "train", _cmd_train)
    add_config_args(p)
    p.add_argument("--features-dir", help="overrides data.features_dir")
    p.add_argument(
        "--run-dir",
        help="run directory (default: a new <runs_dir>/<experiment_name>_<timestamp>); an "
        "interrupted one resumes, a complete one of the same config and data is reused",
    )
    p.add_argument(
        "--no-resume",
        action="store_true",
        help="start over in --run-dir even if it holds an epoch checkpoint",
    )
    p.add_argument("--json", action="store_true", help="print the metrics as JSON at the end")

    p = add_command(sub, "evaluate", _cmd_evaluate)
    p.add_argument("--run-dir", required=True, help="a run directory (or a model directory)")
    p.add_argument("--split", default="test", choices=("train", "val", "test"))
    p.add_argument("--features-dir", help="score this data instead of the run's")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")

    p = add_command(sub, "run", _cmd_run)
    add_config_args(p)
    p.add_argument("--features-dir", help="overrides data.features_dir")
    p.add_argument("--model-name", default="ctr_model", help="registry name (%(default)s)")
    p.add_argument("--auto-promote", action="store_true", help="promote when every gate passes")
    p.add_argument("--min-auc", type=float, default=0.65, help="gate: test AUC (%(default)s)")
    p.add_argument("--min-accuracy", type=float, default=0.60, help="gate (%(default)s)")
    p.add_argument(
        "--max-auc-drop", type=float, default=0.005, help="gate vs production (%(default)s)"
    )
    p.add_argument(
        "--baseline-tolerance",
        type=_optional_float,
        default=0.0,
        help="gate: how far below the logistic-regression baseline's test AUC the model may "
        "be; 'none' turns the gate off (%(default)s)",
    )
    p.add_argument(
        "--force-retrain",
        action="store_true",
        help="train even when a registered version has the same data, config and code",
    )
    p.add_argument("--max-psi", type=float, default=0.25, help="drift: PSI limit per field")
    p.add_argument(
        "--drift-action", choices=("warn", "fail"), default="warn", help="drift past the limit"
    )
    p.add_argument(
        "--rows",
        type=int,
        default=100_000,
        help="rows to generate when the default data is missing",
    )
    p.add_argument("--json", action="store_true", help="print the run summary as JSON")


def add_prune_command(runs_sub: Any) -> None:
    """Add ``prune`` to the ``ctr-pipeline runs`` subcommands (retention of run dirs)."""
    p = add_command(runs_sub, "prune", _cmd_prune)
    p.add_argument("--config", default=paths.DEFAULT_CONFIG, help="for output.runs_dir")
    p.add_argument("--runs-dir", default=None, help="overrides the config's output.runs_dir")
    p.add_argument("--keep-last", type=int, default=20, help="newest complete runs kept (20)")
    p.add_argument("--older-than", type=float, default=30.0, help="days (30)")
    p.add_argument(
        "--include-registered",
        action="store_true",
        help="also remove runs that registered versions came from",
    )
    p.add_argument("--apply", action="store_true", help="really delete (default: dry run)")
    p.add_argument("--json", action="store_true")


def _optional_float(text: str) -> float | None:
    if text.strip().lower() in ("none", "null", "off"):
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'none', got {text!r}") from None


def _cmd_train(args: argparse.Namespace) -> int:
    """train a model into a run directory"""
    from ml.training.job import train

    result = train(
        load_config_args(args),
        features_dir=args.features_dir,
        run_dir=args.run_dir,
        resume=not args.no_resume,
    )
    print(f"Run directory: {result.run_dir}")
    if args.json:
        print(json.dumps({k: v for k, v in result.metrics.items() if k != "history"}, indent=2))
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    """recompute a run's metrics from its checkpoint"""
    from ml.evaluation.evaluate import evaluate_run
    from ml.notifications import metrics_lines

    metrics = evaluate_run(args.run_dir, split=args.split, features_dir=args.features_dir)
    if args.json:
        print(json.dumps(metrics, indent=2))
    else:
        print("\n".join(metrics_lines(metrics, prefix=f"{args.split}_")))
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    """the whole pipeline without Airflow: validate, train, gates, register

    validate → train → evaluate against the quality gates (as the DAG) → register in
    staging. Exit 1 when a gate fails (nothing is registered).
    """
    from ml.pipeline.data import ensure_features
    from ml.pipeline.local import run_pipeline
    from ml.pipeline.params import Params

    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout, force=True)
    params = from_args(
        Params,
        args,
        config_path=args.config,
        features_path=args.features_dir,
        config_overrides=parse_overrides(args.overrides),
    )
    cfg = params.config()
    for line in ensure_features(params.features_dir(cfg), rows=args.rows):
        print(line, flush=True)
    summary = run_pipeline(params)
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
    return 0


def _cmd_prune(args: argparse.Namespace) -> int:
    """remove old run directories (dry run unless --apply)

    Keep the newest --keep-last complete runs and every run a registered version came
    from; remove the others older than --older-than days. Dry run by default.
    """
    from ml.config import load_config
    from ml.fsutil import display_path
    from ml.training.retention import prune_runs

    if args.keep_last < 0 or args.older_than < 0:
        raise ConfigError("--keep-last and --older-than must be >= 0")
    runs_dir = args.runs_dir or load_config(args.config).output.runs_dir
    report = prune_runs(
        runs_dir,
        keep_last=args.keep_last,
        older_than_days=args.older_than,
        include_registered=args.include_registered,
        dry_run=not args.apply,
    )
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
        return 0
    verb = "would remove" if report.dry_run else "removed"
    for run in report.removed:
        print(f"{verb}: {display_path(run)}")
    for run, why in report.kept:
        print(f"kept: {display_path(run)} ({why})")
    mb = report.freed_bytes / 2**20
    tail = " (dry run: pass --apply to delete)" if report.dry_run else ""
    print(f"{len(report.removed)} run(s), {mb:.1f} MiB {verb}{tail}")
    return 0
