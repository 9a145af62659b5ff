"""Data drift: new features against the training-data profile of a registered model.

Per feature column, the new data is binned exactly as the reference profile was
(:mod:`ml.monitoring.profile`: the top-K categories + "other" + "missing"; numeric decile
bins + "missing") and compared with the population stability index::

    PSI = sum over bins of (actual - expected) * ln(actual / expected)

with each share floored at ``1e-4`` so an empty bin stays finite. Rules of thumb: below
0.1 no shift, 0.1-0.25 a moderate one, above 0.25 (the default ``max_psi``) a shift worth
a look. A field past ``max_psi`` is a warning with ``drift_action="warn"`` (the default)
and fails the run with ``"fail"`` (:class:`DriftDetectedError`, a gate verdict: no retry).

The reference is the production model's profile, else the latest staging version's.
With neither, or a version registered before profiles existed, the check says so and
passes. ``ctr-pipeline data drift`` runs the same check by hand.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ml.config import FeatureSpec
from ml.errors import GateConfigError, UserError
from ml.fsutil import display_path, sha256_file
from ml.monitoring import DEFAULT_MAX_PSI, DRIFT_ACTIONS
from ml.monitoring.profile import PROFILE_FILE, SplitColumns, category_counts, numeric_values
from ml.registry.layout import STAGING

log = logging.getLogger("ml.monitoring")
#: Shares are floored at this before the logarithm (an empty bin would be infinite).
EPSILON = 1e-4


def psi(expected: Sequence[float], actual: Sequence[float], eps: float = EPSILON) -> float:
    """Population stability index of two share vectors over the same bins."""
    e = np.maximum(np.asarray(expected, dtype=np.float64), eps)
    a = np.maximum(np.asarray(actual, dtype=np.float64), eps)
    return float(np.sum((a - e) * np.log(a / e)))


@dataclass(frozen=True)
class FieldDrift:
    """One column's comparison: its PSI and the bin that moved most."""

    name: str
    kind: str  # categorical | numeric
    psi: float
    drifted: bool
    largest: str  # "bin: 10.0% -> 35.2%"

    def to_dict(self) -> dict[str, Any]:
        return {
            "field": self.name,
            "kind": self.kind,
            "psi": round(self.psi, 4),
            "drifted": self.drifted,
            "largest_change": self.largest,
        }


@dataclass
class DriftReport:
    """The drift check's result; ``note`` says why nothing was compared, if so."""

    max_psi: float
    action: str
    reference: str | None = None
    split: str = "train"
    rows: int = 0
    fields: list[FieldDrift] = field(default_factory=list)
    note: str | None = None

    @property
    def drifted(self) -> list[FieldDrift]:
        return [f for f in self.fields if f.drifted]

    @property
    def passed(self) -> bool:
        return not (self.action == "fail" and self.drifted)

    def headline(self) -> str:
        if self.reference is None or self.note:
            return f"🌊 Drift check skipped: {self.note}"
        worst = max(self.fields, key=lambda f: f.psi, default=None)
        what = f"{len(self.drifted)} of {len(self.fields)} field(s) past max_psi {self.max_psi:g}"
        tail = f" (largest PSI {worst.psi:.3f}, {worst.name})" if worst else ""
        return f"🌊 Drift vs {self.reference}, {self.split} split: {what}{tail}"

    def lines(self) -> list[str]:
        """The headline, then one line per field (drifted first, then by PSI)."""
        out = [self.headline()]
        width = max((len(f.name) for f in self.fields), default=0)
        for f in sorted(self.fields, key=lambda f: (not f.drifted, -f.psi)):
            mark = ("❌ " if self.action == "fail" else "⚠️ ") if f.drifted else "   "
            out.append(f"   {mark} {f.name:<{width}}  PSI {f.psi:7.4f}  {f.largest}")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "split": self.split,
            "rows": self.rows,
            "max_psi": self.max_psi,
            "action": self.action,
            "passed": self.passed,
            "drifted": [f.name for f in self.drifted],
            "note": self.note,
            "headline": self.headline(),
            "fields": [f.to_dict() for f in self.fields],
        }

    def failure_message(self) -> str:
        names = ", ".join(f"{f.name} (PSI {f.psi:.3f})" for f in self.drifted)
        return (
            f"data drift against {self.reference}: {names} past max_psi {self.max_psi:g}; "
            "check the new data, or rerun with drift_action=warn (or a larger max_psi) to "
            "train on it anyway"
        )


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _largest(labels: Sequence[str], expected: Sequence[float], actual: Sequence[float]) -> str:
    if not labels:
        return ""
    i = int(np.argmax(np.abs(np.asarray(actual) - np.asarray(expected))))
    return f"{labels[i]}: {_pct(expected[i])} -> {_pct(actual[i])}"


def compare_categorical(name: str, ref: dict[str, Any], values: Any, max_psi: float) -> FieldDrift:
    counts, missing = category_counts(values)
    n = max(len(values), 1)
    top = [(v, float(s)) for v, s in ref["top"]]
    actual = [counts.get(v, 0) / n for v, _ in top]
    actual += [1.0 - sum(actual) - missing / n, missing / n]
    expected = [s for _, s in top] + [float(ref["other"]), float(ref["missing"])]
    labels = [repr(v) for v, _ in top] + ["(other values)", "(missing)"]
    value = psi(expected, actual)
    return FieldDrift(
        name, "categorical", value, value > max_psi, _largest(labels, expected, actual)
    )


def compare_numeric(name: str, ref: dict[str, Any], values: Any, max_psi: float) -> FieldDrift:
    x = numeric_values(values)
    finite = x[np.isfinite(x)]
    cuts = np.asarray(ref["cuts"], dtype=np.float64)
    n = max(len(x), 1)
    counts = np.bincount(np.searchsorted(cuts, finite, side="left"), minlength=len(cuts) + 1)
    actual = [float(c) / n for c in counts] + [(len(x) - len(finite)) / n]
    expected = [float(s) for s in ref["shares"]] + [float(ref["missing"])]
    edges = [-math.inf, *cuts.tolist(), math.inf]
    labels = [f"({edges[i]:.4g}, {edges[i + 1]:.4g}]" for i in range(len(edges) - 1)]
    value = psi(expected, actual)
    return FieldDrift(
        name, "numeric", value, value > max_psi, _largest([*labels, "(missing)"], expected, actual)
    )


def compare_with_profile(
    profile: dict[str, Any],
    features_dir: str | os.PathLike[str],
    spec: FeatureSpec,
    *,
    split: str = "train",
    max_psi: float = DEFAULT_MAX_PSI,
) -> tuple[list[FieldDrift], int, list[str]]:
    """Compare each feature column of the split with the profile.

    Returns:
        ``(fields, rows, columns the profile does not know)``.
    """
    fields: list[FieldDrift] = []
    unknown: list[str] = []
    rows = 0
    with SplitColumns(features_dir, split) as data:  # in place, column-pruned
        for kind, columns, compare in (
            ("categorical", spec.categorical, compare_categorical),
            ("numeric", spec.numeric, compare_numeric),
        ):
            for column in columns:
                ref = (profile.get(kind) or {}).get(column)
                if ref is None:
                    unknown.append(column)
                    continue
                values = data.column(column)
                rows = len(values)
                fields.append(compare(column, ref, values, max_psi))
    return fields, rows, unknown


def find_reference(registry: Any, name: str) -> tuple[str, str] | None:
    """``(stage, version)``: the current production version, else the latest staging one."""
    from ml.errors import NotFoundError

    current = registry.current_version(name)
    if current is not None:
        return "production", str(current)
    try:
        return STAGING, str(registry.get_latest_version(name, STAGING))
    except NotFoundError:
        return None


def load_profile(registry: Any, name: str, stage: str, version: str) -> dict[str, Any] | None:
    """The version's stored profile (checked against its manifest), or None without one.

    Raises:
        UserError: the profile differs from the manifest or is not a JSON object.
    """
    from ml.fsutil import read_json_object

    vdir = registry.path_of(name, version, stage)
    path = vdir / PROFILE_FILE
    if not path.is_file():
        return None
    entry = (registry.show(name, version, stage).get("files") or {}).get(PROFILE_FILE) or {}
    if entry.get("sha256") != sha256_file(path)[0]:
        raise UserError(
            f"{display_path(path)} differs from the version's manifest; run "
            f"`ctr-pipeline registry verify {name} {version} --stage {stage}`"
        )
    return read_json_object(path, what="data profile")


def check_drift(
    features_dir: str | os.PathLike[str],
    spec: FeatureSpec | None,
    *,
    model_name: str,
    max_psi: float = DEFAULT_MAX_PSI,
    action: str = "warn",
    split: str = "train",
    reference: tuple[str, str] | None = None,
    registry: Any = None,
) -> DriftReport:
    """Compare ``features_dir``'s ``split`` with a registered version's profile.

    Args:
        spec: the columns to compare (None: every column of the profile).
        reference: ``(stage, version)``; default: :func:`find_reference`.
        registry: a ``ModelRegistry`` (default: the base directory's).

    Raises:
        UserError: ``max_psi`` or ``action`` is invalid, the reference is damaged.
    """
    if not (isinstance(max_psi, (int, float)) and not isinstance(max_psi, bool) and max_psi > 0):
        raise GateConfigError(f"max_psi must be a positive number, got {max_psi!r}")
    if action not in DRIFT_ACTIONS:
        raise GateConfigError(f"drift_action must be one of {DRIFT_ACTIONS}, got {action!r}")
    if registry is None:
        from ml.registry.model_registry import ModelRegistry

        registry = ModelRegistry()
    report = DriftReport(float(max_psi), action, split=split)
    ref = reference or find_reference(registry, model_name)
    if ref is None:
        report.note = f"no production or staging version of {model_name!r} to compare with"
        return report
    stage, version = ref
    profile = load_profile(registry, model_name, stage, version)
    if profile is None:
        report.note = (
            f"{model_name} {version} ({stage}) has no {PROFILE_FILE} (registered before "
            "profiles were stored); the next registered version will have one"
        )
        return report
    report.reference = f"{model_name} {version} ({stage})"
    if spec is None:
        spec = FeatureSpec(
            categorical=tuple(profile.get("categorical") or ()),
            numeric=tuple(profile.get("numeric") or ()),
        )
    report.fields, report.rows, unknown = compare_with_profile(
        profile, features_dir, spec, split=split, max_psi=max_psi
    )
    if unknown:
        log.info("Drift: the reference profile has no column(s) %s; not compared", unknown)
    if not report.fields:
        report.note = f"the profile of {report.reference} covers none of the feature columns"
        report.reference = None
    return report


def log_report(report: DriftReport, logger: logging.Logger = log) -> None:
    """Log the report's lines: a warning per drifted field, the rest as info."""
    head, *rest = report.lines()
    logger.info(head)
    ordered = sorted(report.fields, key=lambda f: (not f.drifted, -f.psi))
    for line, f in zip(rest, ordered, strict=True):
        (logger.warning if f.drifted else logger.info)(line)
