"""``ctr-pipeline train | evaluate | run``: training without Airflow.

- ``train``: train the configured model into a run directory (resumes an interrupted
  ``--run-dir``; a complete one is reused).
- ``evaluate``: recompute a run's metrics on a split from its checkpoint.
- ``run``: generate the default data if missing, train, evaluate, print a summary.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from typing import Any

from ml import paths


def add_commands(sub: Any) -> None:
    """Register ``train``, ``evaluate`` and ``run`` on the ``ctr-pipeline`` subparsers."""
    p = sub.add_parser("train", help="train a model into a run directory")
    _config_args(p)
    p.add_argument("--features-dir", help="overrides data.features_dir")
    p.add_argument(
        "--run-dir",
        help="run directory (default: a new <runs_dir>/<experiment_name>_<timestamp>); an "
        "interrupted one resumes, a complete one is reused",
    )
    p.add_argument(
        "--no-resume",
        action="store_true",
        help="start over in --run-dir even if it holds an epoch checkpoint",
    )
    p.add_argument("--json", action="store_true", help="print the metrics as JSON at the end")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("evaluate", help="recompute a run's metrics from its checkpoint")
    p.add_argument("--run-dir", required=True, help="a run directory (or a model directory)")
    p.add_argument("--split", default="test", choices=("train", "val", "test"))
    p.add_argument("--features-dir", help="score this data instead of the run's")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser(
        "run", help="no-Airflow main path: generate data if missing, train, evaluate, summary"
    )
    _config_args(p)
    p.add_argument(
        "--rows", type=int, default=100_000, help="rows to generate when the data is missing"
    )
    p.add_argument("--features-dir", help="overrides data.features_dir")
    p.add_argument(
        "--regenerate", action="store_true", help="regenerate the data even if it exists"
    )
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=_cmd_run)


def _config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config", default=paths.DEFAULT_CONFIG, help="YAML config (default: %(default)s)"
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set training.epochs=2 --set model.name=logreg "
        "(VALUE is parsed as YAML; repeatable)",
    )


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``["training.epochs=2", "seed=1"]`` → ``{"training": {"epochs": 2}, "seed": 1}``.

    Raises:
        ConfigError: an item is not ``KEY=VALUE`` or nests deeper than ``section.key``.
    """
    import yaml

    from ml.config import ConfigError

    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE such as training.epochs=2")
        try:
            value = yaml.safe_load(raw) if raw.strip() else raw
        except yaml.YAMLError as exc:
            raise ConfigError(f"--set {item!r}: the value is not valid YAML ({exc})") from None
        parts = key.split(".")
        if len(parts) == 1:
            out[key] = value
        elif len(parts) == 2:
            section = out.setdefault(parts[0], {})
            if not isinstance(section, dict):
                raise ConfigError(f"--set {item!r}: {parts[0]} was already set to a value")
            section[parts[1]] = value
        else:
            raise ConfigError(f"--set {item!r}: keys are SECTION.KEY (e.g. model.dropout)")
    return out


def _load_cfg(args: argparse.Namespace) -> Any:
    from ml.config import load_config

    cfg = load_config(args.config)
    overrides = parse_overrides(args.overrides)
    return cfg.replace(**overrides) if overrides else cfg


def _as_user_error(exc: Exception) -> Exception:
    from ml.training.trainer import TrainingError

    return TrainingError(str(exc))


def _user_errors() -> tuple[type[Exception], ...]:
    from ml.data.loading import DataLoadError
    from ml.data.preprocessing import PreprocessingError
    from ml.serving.predictor import CheckpointError

    return (DataLoadError, PreprocessingError, CheckpointError)


def _cmd_train(args: argparse.Namespace) -> int:
    from ml.training.trainer import train

    cfg = _load_cfg(args)
    result = train(
        cfg, features_dir=args.features_dir, run_dir=args.run_dir, resume=not args.no_resume
    )
    print(f"Run directory: {result.run_dir}")
    if args.json:
        print(json.dumps({k: v for k, v in result.metrics.items() if k != "history"}, indent=2))
    return 0


def _print_metrics(metrics: dict[str, Any]) -> None:
    print("📊 Model Metrics:")
    for key in sorted(metrics):
        value = metrics[key]
        print(f"   {key}: {value:.4f}" if isinstance(value, float) else f"   {key}: {value}")


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from ml.evaluation.evaluate import evaluate_run

    try:
        metrics = evaluate_run(args.run_dir, split=args.split, features_dir=args.features_dir)
    except _user_errors() as exc:
        raise _as_user_error(exc) from exc
    if args.json:
        print(json.dumps(metrics, indent=2))
    else:
        _print_metrics(metrics)
    return 0


def _features_present(features_dir: Any) -> bool:
    from ml.data.loading import SPLITS, split_path

    return (
        all(split_path(features_dir, s).is_file() for s in SPLITS)
        and (features_dir / "schema.json").is_file()
    )


def _cmd_run(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    cfg = _load_cfg(args)
    features_dir = paths.resolve(args.features_dir or cfg.data.features_dir)
    if args.regenerate or not _features_present(features_dir):
        from ml.data.generate import describe, generate_features

        print(f"📦 Generating {args.rows:,} rows of features into {features_dir}")
        report = generate_features(features_dir, rows=args.rows, overwrite=True)
        for line in describe(report):
            print(line)
    else:
        print(f"📦 Using the existing features in {features_dir} (--regenerate to rebuild)")

    from ml.evaluation.evaluate import evaluate_run
    from ml.training.trainer import train

    result = train(cfg, features_dir=features_dir)
    try:
        test = evaluate_run(result.run_dir)
    except _user_errors() as exc:
        raise _as_user_error(exc) from exc
    oracle = _oracle_auc(features_dir)
    summary = {
        "run_dir": str(result.run_dir),
        "model": cfg.model.name,
        **test,
        "val_auc": result.metrics["val_auc"],
        "oracle_test_auc": oracle,
        "best_epoch": result.metrics["best_epoch"],
        "epochs_run": result.metrics["epochs_run"],
        "train_time_s": result.metrics["train_time_s"],
        "total_time_s": round(time.perf_counter() - start, 2),
    }
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print()
    _print_metrics(test)
    if oracle is not None:
        print(f"   oracle test AUC (ground truth): {oracle:.4f}")
    print(f"   run directory: {result.run_dir}")
    print(
        f"   time: {summary['total_time_s']:.1f}s total, {summary['train_time_s']:.1f}s "
        f"training ({summary['epochs_run']} epochs, best {summary['best_epoch']})"
    )
    return 0


def _oracle_auc(features_dir: Any) -> float | None:
    """The ground-truth AUC for generator data (None for other data)."""
    try:
        schema = json.loads((features_dir / "schema.json").read_text())
        value = schema.get("oracle_auc", {}).get("test")
        return float(value) if value is not None else None
    except (OSError, ValueError, AttributeError):
        return None
