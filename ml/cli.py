"""The ``ctr-pipeline`` command: one entry point, subcommands registered per area.

:func:`build_parser` is the whole command tree: it makes the groups (``data``, ``runs``,
``registry``) and asks each area's ``cli.py`` to add its commands (``add_commands``) to
a group or to the top level; no CLI module imports another. Each command sets
``func``; heavy imports (torch, pandas) happen inside the handlers so
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
from typing import Any

from ml import __version__
from ml.errors import CtrPipelineError


def build_parser() -> argparse.ArgumentParser:
    """The whole command tree: the groups here, each area's commands from its ``cli.py``."""
    from ml.cards import cli as cards_cli
    from ml.data import cli as data_cli
    from ml.monitoring import cli as monitoring_cli
    from ml.pipeline import cli as pipeline_cli
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

    data = _group(sub, "data", "import, generate, validate feature data; drift against a model")
    data_cli.add_commands(data)  # import, generate, worlds, validate
    monitoring_cli.add_commands(data)  # drift
    pipeline_cli.add_commands(sub)  # run
    training_cli.add_commands(sub)  # train, evaluate
    tuning_cli.add_commands(sub)  # tune
    runs = _group(sub, "runs", "list, show, compare and prune training runs")
    cards_cli.add_run_commands(runs)
    registry = _group(sub, "registry", "list, promote, roll back and verify registered models")
    common = registry_cli.common_options()
    registry_cli.add_commands(registry, common)
    cards_cli.add_registry_commands(registry, common)  # card, compare
    serving_cli.add_commands(sub)  # serve, serve report, predict
    return parser


def _group(sub: Any, name: str, help: str) -> Any:
    """A command group (``ctr-pipeline NAME SUBCOMMAND``); returns its subparsers."""
    group = sub.add_parser(name, help=help)
    return group.add_subparsers(dest=f"{name}_command", metavar="SUBCOMMAND", required=True)


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
