"""``ctr-pipeline data generate|worlds|validate`` (``data import``: :mod:`ml.data.cli_import`)."""

from __future__ import annotations

import argparse
from typing import Any

from ml import paths
from ml.cli_common import add_command, non_negative_int, positive_int
from ml.monitoring import cli as monitoring_cli


def add_commands(sub: Any) -> None:
    """Add the ``data`` command and its subcommands to the top-level subparsers."""
    data = sub.add_parser("data", help="import, generate or validate feature data")
    data_sub = data.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)
    _add_generate(data_sub)
    add_command(data_sub, "worlds", _worlds)
    _add_validate(data_sub)

    from ml.data.cli_import import add_import_command

    add_import_command(data_sub)


def _add_generate(data_sub: Any) -> None:
    gen = add_command(data_sub, "generate", _generate)
    gen.add_argument(
        "--out",
        default=paths.FEATURES_DIR,
        help=f"output directory (default: {paths.FEATURES_DIR}, relative to the base directory)",
    )
    gen.add_argument("--rows", type=positive_int, default=100_000, help="total rows (100000)")
    gen.add_argument("--seed", type=non_negative_int, default=42, help="row seed (42)")
    add_split_argument(gen, (0.7, 0.15, 0.15))
    gen.add_argument(
        "--world",
        default=None,
        metavar="NAME",
        help="the world to simulate (default: default; `ctr-pipeline data worlds` lists them)",
    )
    gen.add_argument(
        "--world-seed",
        type=non_negative_int,
        default=None,
        help="seed of the world's parameters (default: the fixed world; recorded in schema.json)",
    )
    gen.add_argument(
        "--overwrite",
        action="store_true",
        help="replace earlier generator output (a directory of other data is never touched)",
    )


def _add_validate(data_sub: Any) -> None:
    val = add_command(data_sub, "validate", _validate)
    val.add_argument(
        "--features-dir",
        default=None,
        help="features directory (default: the config's data.features_dir)",
    )
    val.add_argument(
        "--config", default=paths.DEFAULT_CONFIG, help=f"config file ({paths.DEFAULT_CONFIG})"
    )
    val.add_argument(
        "--numeric-nan",
        choices=("impute", "error"),
        default=None,
        help="NaN/inf policy for numeric columns (default: the config's data.numeric_nan)",
    )
    monitoring_cli.add_drift_command(data_sub)  # `data drift` lives in ml/monitoring


def add_split_argument(p: Any, default: tuple[float, float, float]) -> None:
    """``--split TRAIN,VAL,TEST``: the fractions of the rows in each split."""
    fractions = ",".join(map(str, default))
    p.add_argument(
        "--split", type=_split, default=default, help=f"train,val,test fractions ({fractions})"
    )


def _split(text: str) -> tuple[float, float, float]:
    try:
        parts = tuple(float(p) for p in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be three comma-separated fractions like 0.7,0.15,0.15, got {text!r}"
        ) from None
    if len(parts) != 3:
        raise argparse.ArgumentTypeError(
            f"must be three fractions (train,val,test), got {len(parts)} in {text!r}"
        )
    return parts[0], parts[1], parts[2]


def _generate(args: argparse.Namespace) -> int:
    """write synthetic CTR features with a known ground truth

    Write {train,val,test}/data.parquet and schema.json. The same --seed gives
    byte-identical files; the output appears atomically.
    """
    from ml.data.generate import (
        DEFAULT_WORLD,
        DEFAULT_WORLD_SEED,
        describe,
        generate_features,
    )

    report = generate_features(
        args.out,
        rows=args.rows,
        seed=args.seed,
        split=args.split,
        overwrite=args.overwrite,
        world_seed=DEFAULT_WORLD_SEED if args.world_seed is None else args.world_seed,
        world=args.world or DEFAULT_WORLD,
    )
    for line in describe(report):
        print(line)
    return 0


def _worlds(args: argparse.Namespace) -> int:
    """list the generator's worlds

    Each world's name, description and columns (for --world).
    """
    from ml.data.generate import WORLDS

    for name, world in WORLDS.items():
        spec = world.spec
        print(f"{name}: {world.description}")
        print(f"   categorical: {', '.join(spec.categorical)}")
        print(f"   numeric: {', '.join(spec.numeric)}")
    return 0


def _validate(args: argparse.Namespace) -> int:
    """check the features against the config's feature spec

    Exit 0 when every split is valid, 2 with the list of problems otherwise.
    """
    from ml.config import load_config
    from ml.data.validate import validate_features

    cfg = load_config(args.config)
    features_dir = args.features_dir or cfg.data.features_dir
    policy = args.numeric_nan or cfg.data.numeric_nan
    report = validate_features(features_dir, cfg.features, numeric_nan=policy)
    for line in report.lines():
        print(line)
    print(f"features valid ({report.seconds:.2f} s)")
    return 0
