"""``ctr-pipeline data drift``: the DAG's drift check, by hand.

Registered under the ``data`` command by ``ml/cli.py``.
Exit 0 (drift is reported as warnings), or 1 with ``--action fail`` when a field is past
``--max-psi``.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from ml.cli_common import add_command, add_registry_root
from ml.monitoring import DEFAULT_MAX_PSI, DRIFT_ACTIONS


def add_commands(data_sub: Any) -> None:
    """Add ``drift`` to the ``data`` command's subparsers."""
    p = add_command(data_sub, "drift", _drift)
    p.add_argument("--reference", default="ctr_model", help="NAME or NAME/VERSION (%(default)s)")
    p.add_argument(
        "--features-dir",
        required=True,
        help="the features directory to check (a path or an s3:// URL)",
    )
    p.add_argument("--split", default="train", help="which split to compare (%(default)s)")
    p.add_argument("--max-psi", type=float, default=DEFAULT_MAX_PSI, help="%(default)s")
    p.add_argument("--action", choices=DRIFT_ACTIONS, default="warn", help="%(default)s")
    add_registry_root(p)
    p.add_argument("--json", action="store_true", help="print the report as JSON")


def _drift(args: argparse.Namespace) -> int:
    """compare features with a registered model's training-data profile (PSI)

    Population stability index per feature of --features-dir's split against the profile
    stored with the reference version (NAME: production's current version, else the
    latest staging one; NAME/vN: that version).
    """
    from ml.errors import DriftDetectedError
    from ml.monitoring.drift import check_drift
    from ml.registry.model_registry import ModelRegistry
    from ml.serving.refs import resolve_ref, split_ref

    registry = ModelRegistry(args.base_dir)
    name, ref = split_ref(args.reference, default="")
    reference = None
    if ref:
        _, stage, version = resolve_ref(registry, args.reference)
        reference = (stage, version)
    report = check_drift(
        args.features_dir,
        None,
        model_name=name,
        max_psi=args.max_psi,
        action=args.action,
        split=args.split,
        reference=reference,
        registry=registry,
    )
    print(json.dumps(report.to_dict(), indent=2) if args.json else "\n".join(report.lines()))
    if not report.passed:
        raise DriftDetectedError(report.failure_message(), report)
    return 0
