"""``ctr-pipeline data generate|worlds|validate|import`` (``data drift``: ml/monitoring/cli.py)."""

from __future__ import annotations

import argparse
from argparse import RawDescriptionHelpFormatter
from typing import Any

from ml import paths
from ml.cli_common import add_command, non_negative_int, positive_int
from ml.fsutil import display_path


def add_commands(data_sub: Any) -> None:
    """Add ``generate``, ``worlds``, ``validate`` and ``import`` to ``ctr-pipeline data``."""
    _add_generate(data_sub)
    add_command(data_sub, "worlds", _worlds)
    _add_validate(data_sub)
    _add_import(data_sub)


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
    from ml.data.generate.catalog import DEFAULT_WORLD, DEFAULT_WORLD_SEED
    from ml.data.generate.writer import describe, generate_features

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
    from ml.data.generate.catalog import WORLDS

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


# --- data import ------------------------------------------------------------------------

EXAMPLES = """\
examples:
  ctr-pipeline data import day_0.txt --format criteo --out data/features/criteo \\
      --write-config config/criteo.yaml
  ctr-pipeline data import clicks.csv --time-column ts --split 0.8,0.1,0.1 \\
      --out data/features/mine
  ctr-pipeline data import --train tr.libfm --val va.libfm --test te.libfm \\
      --out data/features/frappe
"""


def _add_import(data_sub: Any) -> None:
    imp = add_command(
        data_sub, "import", _import, epilog=EXAMPLES, formatter_class=RawDescriptionHelpFormatter
    )
    imp.add_argument("sources", nargs="*", metavar="SOURCE", help="file(s) to read and split")
    imp.add_argument("--out", required=True, help="output features directory (must be new)")
    for split in ("train", "val", "test"):
        imp.add_argument(f"--{split}", default=None, help=f"the {split} split as a file")
    imp.add_argument(
        "--format",
        default="auto",
        choices=("auto", "csv", "tsv", "criteo", "libsvm", "parquet"),
        help="input format (auto: by extension, else by the first line)",
    )
    cols = imp.add_argument_group("columns")
    cols.add_argument("--label", default=None, help="label column (default: label, click, ...)")
    for name, what in (
        ("categorical", "force these columns to be categorical"),
        ("numeric", "force these columns (or libSVM fields) to be numeric"),
        ("exclude", "leave these columns out"),
        ("columns", "names of a header-less CSV/TSV's columns, in order"),
    ):
        cols.add_argument(f"--{name}", type=_names, default=(), metavar="A,B,...", help=what)
    cols.add_argument(
        "--header",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="the first line is a header (default: guessed)",
    )
    cols.add_argument("--delimiter", default=None, help="field separator (csv: ',', tsv: tab)")
    svm = imp.add_argument_group("libSVM / libFM fields")
    svm.add_argument("--field-map", default=None, help="JSON or text file: field first last")
    svm.add_argument("--field-ranges", default=None, help="inline: user=0-953,item=954-5335")
    spl = imp.add_argument_group("splitting one SOURCE")
    add_split_argument(spl, (0.8, 0.1, 0.1))
    spl.add_argument(
        "--seed", type=non_negative_int, default=42, help="seed of the random split (42)"
    )
    spl.add_argument(
        "--time-column",
        default=None,
        help="split by this column instead: earliest rows train, latest test",
    )
    imp.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an earlier import or generated data (never other files)",
    )
    imp.add_argument(
        "--write-config",
        default=None,
        metavar="PATH",
        help="write a config for the data (the shipped one, features changed)",
    )


def _names(text: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in text.split(",") if n.strip())


def _import(args: argparse.Namespace) -> int:
    """import your own data (CSV/TSV, Criteo, libSVM/libFM, parquet)

    Stream source files into {train,val,test}/data.parquet plus schema.json,
    atomically, then print the `features:` block for a config. A malformed line
    is an error naming the file, line and field; nothing half-written is left.
    """
    from ml.data.importer.config_out import features_block, write_config
    from ml.data.importer.core import import_features
    from ml.data.importer.options import ImportOptions

    opts = ImportOptions(
        out_dir=args.out,
        sources=tuple(args.sources),
        train=args.train,
        val=args.val,
        test=args.test,
        format=args.format,
        label=args.label,
        categorical=args.categorical,
        numeric=args.numeric,
        exclude=args.exclude,
        columns=args.columns,
        header=args.header,
        delimiter=args.delimiter,
        field_map=args.field_map,
        field_ranges=args.field_ranges,
        split=args.split,
        seed=args.seed,
        time_column=args.time_column,
        overwrite=args.overwrite,
    )
    report = import_features(opts)
    for line in describe_import(report):
        print(line)
    features_dir = display_path(report["features_dir"])
    if args.write_config:
        path = write_config(
            args.write_config, report["spec"], features_dir, ", ".join(report["sources"])
        )
        print(
            f"📝 Wrote {display_path(path)}: the shipped config with only `features` and "
            "`data.features_dir` changed"
        )
        print(f"   next: ctr-pipeline data validate --config {display_path(path)}")
    else:
        print("Paste into your config (or pass --write-config PATH):")
        print(features_block(report["spec"], features_dir), end="")
    return 0


def describe_import(report: dict[str, Any]) -> list[str]:
    """Summary lines of an :func:`~ml.data.importer.core.import_features` report."""
    split = report["split"]
    how = {
        "files": "splits from the given files",
        "random": f"random split {split.get('fractions')} (seed {split.get('seed')})",
        "time": f"time split on {split.get('column')!r} at {split.get('cuts')}",
    }[split["method"]]
    total = sum(report["rows"].values())
    lines = [
        f"✅ Imported {total:,} rows from {', '.join(report['sources'])}: {how} "
        f"({report['seconds']:.1f} s)"
    ]
    for name, n in report["rows"].items():
        pos = report["positives"][name]
        shown = display_path(f"{report['features_dir']}/{name}/data.parquet")
        lines.append(f"✅ {name}: {shown} ({n:,} rows, CTR {pos / max(n, 1):.2%})")
    spec = report["spec"]
    lines.append(
        f"   label {spec.label!r}, {len(spec.categorical)} categorical and "
        f"{len(spec.numeric)} numeric features"
        + (f"; left out (type): {report['ignored']}" if report["ignored"] else "")
    )
    return lines
