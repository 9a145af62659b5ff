"""Argparse helpers that several ``ml/*/cli.py`` modules share.

- :func:`add_command`: a subcommand whose help comes from its handler's docstring;
- :func:`add_config_args` / :func:`load_config_args` / :func:`parse_overrides`: the
  ``--config FILE --set KEY=VALUE`` pair and the config it yields;
- :func:`add_registry_root`: ``--base-dir`` (alias ``--registry``), the registry root;
- :func:`from_args`: a dataclass (settings, pipeline parameters) from the options;
- :func:`emit` / :func:`table`: a command's output, as text lines or (``--json``) JSON;
- :func:`non_negative_int` / :func:`positive_int`: integer argument types.

Nothing heavy is imported here: ``ctr-pipeline --help`` imports this module.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

from ml import paths
from ml.errors import ConfigError

Handler = Callable[[argparse.Namespace], int]
T = TypeVar("T")


def add_command(sub: Any, name: str, func: Handler, **kwargs: Any) -> argparse.ArgumentParser:
    """Add subcommand ``name`` to ``sub`` (a subparsers action), run by ``func``.

    Unless given in ``kwargs``, the subcommand's ``help`` is the first paragraph of
    ``func``'s docstring and its ``description`` the rest (argparse reflows both).
    """
    first, _, rest = inspect.cleandoc(func.__doc__ or "").partition("\n\n")
    if first:
        kwargs.setdefault("help", " ".join(first.split()))
    if rest:
        kwargs.setdefault("description", rest)
    p: argparse.ArgumentParser = sub.add_parser(name, **kwargs)
    p.set_defaults(func=func)
    return p


def add_config_args(p: argparse.ArgumentParser) -> None:
    """``--config FILE`` and repeatable ``--set KEY=VALUE`` (into ``args.overrides``)."""
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


def add_registry_root(p: argparse.ArgumentParser) -> None:
    """``--base-dir DIR`` (alias ``--registry``): the registry root, into ``args.base_dir``
    (None: ``$CTR_PIPELINE_REGISTRY``, else ``models``; see ``ml.paths.registry_root``)."""
    p.add_argument(
        "--base-dir",
        "--registry",
        dest="base_dir",
        default=None,
        metavar="DIR",
        help="registry root, a path or a URL such as s3://bucket/models (relative paths "
        f"resolve against $CTR_PIPELINE_HOME; --registry is an alias); default: "
        f"${paths.REGISTRY_ENV}, else {paths.MODELS_DIR}",
    )


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``["training.epochs=2", "seed=1"]`` → ``{"training": {"epochs": 2}, "seed": 1}``.

    Raises:
        ConfigError: an item is not ``KEY=VALUE`` or nests deeper than ``section.key``.
    """
    import yaml

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


def load_config_args(args: argparse.Namespace) -> Any:
    """The config of ``--config`` with the ``--set`` overrides applied."""
    from ml.config import load_config

    cfg = load_config(args.config)
    overrides = parse_overrides(args.overrides)
    return cfg.replace(**overrides) if overrides else cfg


def from_args(cls: type[T], args: argparse.Namespace, **given: Any) -> T:
    """An instance of the dataclass ``cls``: ``given`` plus, for each other field that
    ``args`` has an option of the same name for, that option's value."""
    names = {f.name for f in dataclasses.fields(cast(Any, cls))} - given.keys()
    return cls(**given, **{n: getattr(args, n) for n in sorted(names) if hasattr(args, n)})


def emit(args: argparse.Namespace, data: Any, lines: Sequence[str]) -> None:
    """Print ``data`` as JSON when ``args.json`` is set, else ``lines``."""
    if getattr(args, "json", False):
        print(json.dumps(data, indent=2, sort_keys=True, default=str))
    else:
        for line in lines:
            print(line)


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    """``rows`` under ``header`` in left-aligned columns (``None`` prints as nothing)."""
    cells = [[str(h) for h in header]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [cells[0], ["-" * w for w in widths], *cells[1:]]
    return [fmt.format(*row).rstrip() for row in lines]


def non_negative_int(text: str) -> int:
    """An argparse type: an integer >= 0 (``1_000`` allowed)."""
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1."""
    value = non_negative_int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value
