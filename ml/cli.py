"""The ``ctr-pipeline`` command: one entry point, subcommands registered per area.

Each area module exposes ``add_commands(subparsers)``, which adds its subcommands and
sets ``func`` on each; heavy imports (torch, pandas) happen inside the handlers so
``ctr-pipeline --help`` stays fast. A handler returns the process exit code.
Errors the user can fix (bad config, bad data, unknown model version) are printed as
one ``error: ...`` line with exit code 2, without a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ml import __version__


class UserError(Exception):
    """Base for errors whose message tells the user what to fix (no traceback shown)."""


def build_parser() -> argparse.ArgumentParser:
    from ml.data import cli as data_cli
    from ml.registry import cli as registry_cli
    from ml.training import cli as training_cli

    parser = argparse.ArgumentParser(
        prog="ctr-pipeline",
        description="Generate CTR features, train, evaluate and register models.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    data_cli.add_commands(sub)
    training_cli.add_commands(sub)
    registry_cli.add_commands(sub)
    return parser


#: Exceptions whose message tells the user what to fix: printed as one line, exit 2.
#: Matched by qualified class name so that reporting an error never imports torch.
_USER_ERRORS = frozenset(
    {
        "ml.cli.UserError",
        "ml.config.ConfigError",
        "ml.paths.BaseDirError",
        "ml.data.validate.FeatureValidationError",
        "ml.registry.errors.RegistryError",
        "ml.training.trainer.TrainingError",
    }
)


def _is_user_error(exc: BaseException) -> bool:
    return any(f"{cls.__module__}.{cls.__qualname__}" in _USER_ERRORS for cls in type(exc).__mro__)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if _is_user_error(exc):
            print(f"error: {exc}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
