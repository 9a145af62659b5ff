"""The ``ctr-pipeline`` command: one entry point, subcommands registered per area.

Each area module exposes ``add_commands(subparsers)``, which adds its subcommands and
sets ``func`` on each; heavy imports (torch, pandas) happen inside the handlers so
``ctr-pipeline --help`` stays fast. A handler returns the process exit code.
Errors are translated once, here, by their branch of :mod:`ml.errors`: a
``UserError`` (bad config, bad data, unknown model version) prints ``error: ...`` and
exits 2; a ``RetryableError`` (disk full, lock timeout, service down) exits 3; a
``GateFailedError`` (the model failed a quality gate) exits 1. No traceback for any.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ml import __version__
from ml.errors import CtrPipelineError


def build_parser() -> argparse.ArgumentParser:
    from ml.cards import cli as cards_cli
    from ml.data import cli as data_cli
    from ml.registry import cli as registry_cli
    from ml.serving import cli as serving_cli
    from ml.training import cli as training_cli
    from ml.tuning import cli as tuning_cli

    parser = argparse.ArgumentParser(
        prog="ctr-pipeline",
        description="Generate CTR features, train, evaluate and register models.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    data_cli.add_commands(sub)
    training_cli.add_commands(sub)
    registry_cli.add_commands(sub)
    serving_cli.add_commands(sub)
    cards_cli.add_commands(sub)
    tuning_cli.add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except CtrPipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
