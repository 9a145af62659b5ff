"""``ctr-pipeline train | evaluate``: one training run, and its metrics recomputed.

- ``train``: train the configured model into a run directory (resumes an interrupted
  ``--run-dir``; a complete one of the same config and data is reused); ``--nproc N``
  trains on N processes (torchrun, :mod:`ml.training.launch`).
- ``evaluate``: recompute a run's metrics on a split from its checkpoint.

The whole pipeline (``run``) is :mod:`ml.pipeline.cli`; ``runs prune`` is in
:mod:`ml.cards.cli` with the other ``runs`` commands.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from ml.choices import MODEL_CHOICES
from ml.cli_common import add_command, add_config_args, load_config_args, positive_int


def add_commands(sub: Any) -> None:
    """Register ``train`` and ``evaluate`` on the ``ctr-pipeline`` subparsers."""
    p = add_command(sub, "train", _cmd_train)
    add_config_args(p)
    p.add_argument("--features-dir", help="overrides data.features_dir")
    p.add_argument(
        "--model-family",
        choices=MODEL_CHOICES,
        help="overrides model.name: a family trains only it (no automatic choice), auto "
        "chooses among the families on validation",
    )
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
    p.add_argument(
        "--nproc",
        type=positive_int,
        help="overrides training.distributed.nproc: train on N processes launched with "
        "torchrun (one per GPU, or gloo on the CPU); a run resumes with another N",
    )
    p.add_argument("--json", action="store_true", help="print the metrics as JSON at the end")

    p = add_command(sub, "evaluate", _cmd_evaluate)
    p.add_argument("--run-dir", required=True, help="a run directory (or a model directory)")
    p.add_argument("--split", default="test", choices=("train", "val", "test"))
    p.add_argument("--features-dir", help="score this data instead of the run's")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")


def _cmd_train(args: argparse.Namespace) -> int:
    """train a model into a run directory"""
    from ml.training.job import train

    cfg = load_config_args(args)
    if args.model_family is not None:
        cfg = cfg.replace(model={"name": args.model_family})
    if args.nproc is not None:
        cfg = cfg.replace(training={"distributed": {"nproc": args.nproc}})
    result = train(
        cfg,
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
