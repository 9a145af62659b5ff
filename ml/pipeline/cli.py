"""``ctr-pipeline run``: the whole pipeline without Airflow.

validate → [tune] → train → evaluate with the DAG's gates (thresholds, champion/challenger,
baseline) → register under ``--model-name`` (promoted only with ``--auto-promote``) →
summary. Its flags are generated from the DAG's params (:mod:`ml.pipeline.params`), one
flag per param with the same default and bounds. Exit 1 when a gate fails (nothing
registered), 2 on bad input, 3 when the environment failed.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

from ml.cli_common import add_command, add_config_args, positive_int
from ml.pipeline.params import ParamSpec, param_specs

_NULLS = ("none", "null")


def add_commands(sub: Any) -> None:
    """Register ``run`` on the ``ctr-pipeline`` subparsers."""
    p = add_command(sub, "run", _cmd_run)
    add_config_args(p)  # --config (the config_path param) and --set KEY=VALUE
    add_param_arguments(p, skip=("config_path",))
    p.add_argument(
        "--rows",
        type=positive_int,
        default=100_000,
        help="rows to generate when the default data is missing (%(default)s)",
    )
    p.add_argument("--json", action="store_true", help="print the run summary as JSON")


def add_param_arguments(p: argparse.ArgumentParser, skip: tuple[str, ...] = ()) -> None:
    """One option per DAG param (``--min-auc``, ``--auto-promote/--no-auto-promote``, ...)."""
    for spec in param_specs():
        if spec.name in skip:
            continue
        kwargs: dict[str, Any] = {"dest": spec.name, "default": spec.default}
        if spec.type is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["type"] = _parser_of(spec)
            kwargs["metavar"] = spec.flag.lstrip("-").replace("-", "_").upper()
            if spec.enum:
                kwargs["choices"] = (*spec.enum, None) if spec.nullable else spec.enum
        default = "null" if spec.default is None else spec.default
        null = "; 'none' for null" if spec.nullable else ""
        p.add_argument(spec.flag, help=f"{spec.description} (default: {default}{null})", **kwargs)


def _parser_of(spec: ParamSpec) -> Any:
    def parse(text: str) -> Any:
        if spec.nullable and text.strip().lower() in _NULLS:
            return None
        try:
            return spec.type(text)
        except ValueError:
            what = {int: "an integer", float: "a number"}.get(spec.type, "a value")
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None

    return parse


def _cmd_run(args: argparse.Namespace) -> int:
    """the whole pipeline without Airflow: validate, tune, train, gates, register

    validate → [tune when --tuning-trials > 0] → train → evaluate against the quality
    gates (as the DAG) → register in staging. Exit 1 when a gate fails (nothing is
    registered). Every flag but --set, --rows and --json is a DAG param of the same name.
    """
    from ml.cli_common import parse_overrides
    from ml.data.generate.ensure import ensure_default_features
    from ml.pipeline.local import run_pipeline
    from ml.pipeline.params import Params

    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout, force=True)
    raw = {s.name: getattr(args, s.name) for s in param_specs() if hasattr(args, s.name)}
    raw["config_path"] = args.config
    params = Params.from_mapping({**raw, "config_overrides": parse_overrides(args.overrides)})
    for line in ensure_default_features(
        params.features_dir(params.config()), rows=args.rows
    ).lines():
        print(line, flush=True)
    summary = run_pipeline(params)
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
    return 0
