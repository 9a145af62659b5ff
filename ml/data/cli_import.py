"""``ctr-pipeline data import``: the command line of :mod:`ml.data.importer`."""

from __future__ import annotations

import argparse
from argparse import RawDescriptionHelpFormatter
from typing import Any

from ml.cli_common import add_command, non_negative_int
from ml.data.cli import add_split_argument
from ml.fsutil import display_path

EXAMPLES = """\
examples:
  ctr-pipeline data import day_0.txt --format criteo --out data/features/criteo \\
      --write-config config/criteo.yaml
  ctr-pipeline data import clicks.csv --time-column ts --split 0.8,0.1,0.1 \\
      --out data/features/mine
  ctr-pipeline data import --train tr.libfm --val va.libfm --test te.libfm \\
      --out data/features/frappe
"""


def add_import_command(data_sub: Any) -> None:
    """Register ``data import`` under the ``data`` subparsers."""
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
    from ml.data.importer import ImportOptions, features_block, import_features, write_config

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
    """Summary lines of an :func:`~ml.data.importer.import_features` report."""
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
