"""Check a features directory against a :class:`~ml.config.FeatureSpec` before training.

:func:`validate_features` looks at every split and collects *all* problems before it
raises, so one run tells the user everything to fix. Each problem is one line naming
the file, the column and what to do.

What it checks, per split (``train``, ``val``, ``test``):

- the file ``<split>/data.parquet`` exists, is a file, is not empty (0 bytes or 0
  rows) and is readable parquet;
- every column of the spec is present with a usable type: categorical integer or
  string, numeric integer or float, label integer or boolean;
- the label has no nulls, only the values 0 and 1, and both classes;
- numeric columns hold no NaN, inf or null values: an error with
  ``numeric_nan="error"``, a warning with ``"impute"`` (the trainer replaces them
  with the train mean);
- nulls in a categorical column are a warning (they are encoded as the
  out-of-vocabulary category);
- each column has the same kind of type in every split.

Parquet metadata answers most of this without reading rows (row counts, null counts,
min/max of the label from row-group statistics). Rows are read only where statistics
cannot answer: the label (to count positives) and float numeric columns (NaN/inf),
one column and one row group at a time, so memory stays bounded.

The directory may be a bucket prefix (``s3://...``): the same checks, through ranged
GETs of the footers and the columns they need (:class:`ml.storage.files.FileRef`); a
bucket that is missing, refused or unreachable raises its storage error instead.

Raises :class:`~ml.errors.FeatureValidationError` (``.problems``: one line each), a
:class:`~ml.errors.UserError`. The fingerprint of the data lives in :mod:`ml.data.lineage`.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ml.choices import NUMERIC_NAN_POLICIES
from ml.config import FeatureSpec
from ml.data.layout import DATA_FILE, SPLITS, features_location, remote_exists, split_file
from ml.data.lineage import ValidatedData, fingerprint, short, stamps_of
from ml.data.parquet_stats import count_positives, int_min_max, nonfinite, null_count
from ml.data.schema import (
    is_categorical_type,
    is_label_type,
    is_numeric_type,
    role_of,
    type_kind,
)
from ml.errors import ConfigError, FeatureValidationError, StorageError
from ml.storage.files import FileRef, Location, show

__all__ = ["SplitInfo", "ValidationReport", "format_size", "validate_features"]


@dataclass(frozen=True)
class SplitInfo:
    """What validation learned about one split's file."""

    name: str
    path: Location
    size_bytes: int
    rows: int
    positives: int
    row_groups: int
    types: dict[str, str] = field(default_factory=dict)

    @property
    def ctr(self) -> float:
        return self.positives / self.rows if self.rows else float("nan")


@dataclass
class ValidationReport:
    """The outcome of a successful validation: per-split facts and any warnings."""

    features_dir: Location
    spec: FeatureSpec
    splits: dict[str, SplitInfo]
    warnings: list[str]
    seconds: float = 0.0

    def lines(self) -> list[str]:
        """One ``✅ <split> data: <path> (<size>)`` line per split, then warnings."""
        out = [
            f"✅ {s.name} data: {show(s.path)} ({format_size(s.size_bytes)}): "
            f"{s.rows:,} rows, {s.positives:,} clicks ({s.ctr:.2%})"
            for s in self.splits.values()
        ]
        out += [f"⚠️  {w}" for w in self.warnings]
        return out

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form (for XCom or logs)."""
        return {
            "features_dir": str(self.features_dir),
            "splits": {
                name: {
                    "path": str(s.path),
                    "size_bytes": s.size_bytes,
                    "rows": s.rows,
                    "positives": s.positives,
                }
                for name, s in self.splits.items()
            },
            "warnings": list(self.warnings),
        }


def format_size(n: int) -> str:
    """``234.5 KB``-style size (1 KB = 1024 bytes)."""
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


# --- validation -----------------------------------------------------------------------


def validate_features(
    features_dir: str | os.PathLike[str] | None,
    spec: FeatureSpec,
    numeric_nan: str = "impute",
) -> ValidationReport:
    """Validate ``{train,val,test}/data.parquet`` under ``features_dir`` against ``spec``.

    Args:
        features_dir: the features directory (None: ``ml.paths.FEATURES_DIR``; relative
            paths resolve against the base directory).
        spec: label, categorical and numeric column names.
        numeric_nan: ``impute`` (NaN/inf/null in numeric columns are warnings) or
            ``error`` (they are problems).

    Returns:
        A :class:`ValidationReport` with each split's path, size, rows and positives.

    Raises:
        FeatureValidationError: with every problem found, one message each.
        ValueError: ``numeric_nan`` is not a known policy.
    """
    if numeric_nan not in NUMERIC_NAN_POLICIES:
        raise ConfigError(f"numeric_nan must be one of {NUMERIC_NAN_POLICIES}, got {numeric_nan!r}")
    start = time.perf_counter()
    root = features_location(features_dir)
    missing = not remote_exists(root) if isinstance(root, str) else not root.is_dir()
    if missing:
        what = (
            "is not a directory" if isinstance(root, Path) and root.exists() else "does not exist"
        )
        raise FeatureValidationError(
            [
                f"features directory {show(root)} {what}; generate the data with "
                "`ctr-pipeline data generate` or pass the directory that holds "
                f"{{train,val,test}}/{DATA_FILE} (--features-dir / data.features_dir)"
            ],
            show(root),
        )
    found = _Findings()
    infos: dict[str, SplitInfo] = {}
    schemas: dict[str, pa.Schema] = {}
    for name in SPLITS:
        checked = _check_split(root, name, spec, numeric_nan, found)
        if checked is not None:
            infos[name], schemas[name] = checked
    found.problems += _schema_mismatches(spec, schemas, root)
    if found.problems:
        raise FeatureValidationError(found.problems, show(root))
    seconds = round(time.perf_counter() - start, 3)
    return ValidationReport(root, spec, infos, found.warnings, seconds)


@dataclass
class _Findings:
    """Problems (validation fails) and warnings (it passes) collected over every split."""

    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _check_split(
    root: Location, name: str, spec: FeatureSpec, numeric_nan: str, found: _Findings
) -> tuple[SplitInfo, pa.Schema] | None:
    ref = split_file(root, name)
    opened = _open_split(ref, name, found.problems)
    if opened is None:
        return None
    pf, size = opened
    schema = pf.schema_arrow
    rows = pf.metadata.num_rows
    shown = str(ref)
    n_before = len(found.problems)
    if rows == 0:
        found.problems.append(f"{shown} has 0 rows; the {name} split needs data")
    usable, types = _check_types(shown, schema, spec, found.problems)
    if rows == 0:
        return None
    positives = 0
    try:
        for col in usable:
            positives += _check_values(pf, shown, name, col, spec, numeric_nan, found)
    except (pa.ArrowException, OSError) as exc:
        found.problems.append(
            f"{shown} could not be read ({short(exc)}); the file is corrupt, rewrite the "
            f"{name} split"
        )
    if len(found.problems) > n_before:
        return None
    return SplitInfo(name, ref.location, size, rows, positives, pf.num_row_groups, types), schema


def _open_split(ref: FileRef, name: str, problems: list[str]) -> tuple[pq.ParquetFile, int] | None:
    shown = str(ref)
    path = Path(ref.location) if not ref.remote else None
    stamp = ref.stamp()
    if stamp is None and (path is None or not path.exists()):
        where = ""
        if path is not None and not path.parent.is_dir():
            where = f" (there is no {name}/ directory)"
        problems.append(
            f"{name} data file {shown} is missing{where}; every split needs "
            f"{name}/{DATA_FILE} (import or generate the data again)"
        )
        return None
    if stamp is None:
        problems.append(
            f"{shown} is not a regular file; write the {name} split as one parquet file"
        )
        return None
    size = int(stamp[0])
    if size == 0:
        problems.append(f"{shown} is empty (0 bytes); rewrite the {name} split")
        return None
    try:
        pf = pq.ParquetFile(ref.open())
        pf.schema_arrow  # noqa: B018 - raises for a file that is not parquet
    except (pa.ArrowException, OSError, ValueError) as exc:
        problems.append(
            f"{shown} is not a readable parquet file ({short(exc)}); rewrite the {name} "
            "split as parquet"
        )
        return None
    return pf, size


_TYPE_RULES = {
    "label": (is_label_type, "it must be integer or boolean 0/1 (cast it to int64)"),
    "categorical": (
        is_categorical_type,
        "it must hold integer ids or strings (cast it to int64 or string)",
    ),
    "numeric": (
        is_numeric_type,
        "it must be integer or float (convert it, or list it under features.categorical)",
    ),
}


def _check_types(
    shown: str, schema: pa.Schema, spec: FeatureSpec, problems: list[str]
) -> tuple[list[str], dict[str, str]]:
    """(columns present with a usable type, column -> type) for one file."""
    types: dict[str, str] = {}
    usable: list[str] = []
    for col in spec.all_columns:
        role = role_of(spec, col)
        if col not in schema.names:
            problems.append(
                f"{shown}: {role} column {col!r} is missing "
                f"(file has {_preview(schema.names)}); add it or fix the features config"
            )
            continue
        tp = schema.field(col).type
        types[col] = str(tp)
        ok, how = _TYPE_RULES[role]
        if ok(tp):
            usable.append(col)
        else:
            problems.append(f"{shown}: {role} column {col!r} has type {tp}; {how}")
    return usable, types


def _check_values(
    pf: pq.ParquetFile,
    shown: str,
    name: str,
    col: str,
    spec: FeatureSpec,
    numeric_nan: str,
    found: _Findings,
) -> int:
    """Check one column's values; return its positives (the label) or 0."""
    schema = pf.schema_arrow
    nulls = null_count(pf, col, schema.get_field_index(col))
    role = role_of(spec, col)
    if role == "label":
        return _check_label(pf, shown, name, col, nulls, found.problems)
    if role == "categorical":
        if nulls:
            found.warnings.append(
                f"{shown}: categorical column {col!r} has {nulls:,} null value(s); "
                "they are encoded as the out-of-vocabulary category"
            )
        return 0
    bad = nonfinite(pf, col, schema.field(col).type)
    _numeric_message(shown, col, nulls, bad, numeric_nan, found.problems, found.warnings)
    return 0


def _check_label(
    pf: pq.ParquetFile, shown: str, name: str, col: str, nulls: int, problems: list[str]
) -> int:
    n_before = len(problems)
    if nulls:
        problems.append(
            f"{shown}: label column {col!r} has {nulls:,} null value(s); every "
            "row needs a 0/1 label (drop or fill those rows)"
        )
    lo, hi = int_min_max(pf, col, pf.schema_arrow.get_field_index(col))
    if lo is not None and hi is not None and (lo < 0 or hi > 1):
        problems.append(
            f"{shown}: label column {col!r} has values other than 0 and 1 "
            f"(min {lo}, max {hi}); map it to 0/1"
        )
    if len(problems) > n_before:
        return 0
    positives = count_positives(pf, col)
    if positives in (0, pf.metadata.num_rows - nulls):
        which = "0 (no clicks)" if positives == 0 else "1 (every row clicked)"
        problems.append(
            f"{shown}: label column {col!r} has a single class: every row is "
            f"{which}; AUC needs both classes in the {name} split (re-split the data)"
        )
    return positives


def _numeric_message(
    shown: str,
    col: str,
    nulls: int,
    bad: tuple[int, int],
    numeric_nan: str,
    problems: list[str],
    warnings: list[str],
) -> None:
    n_nan, n_inf = bad
    if not (nulls or n_nan or n_inf):
        return
    parts = [f"{n:,} {kind}" for n, kind in ((n_nan, "NaN"), (n_inf, "inf"), (nulls, "null")) if n]
    counts = ", ".join(parts)
    if numeric_nan == "error":
        problems.append(
            f"{shown}: numeric column {col!r} has {counts} value(s) and data.numeric_nan is "
            "'error'; clean the column or set data.numeric_nan: impute (train mean)"
        )
    else:
        warnings.append(
            f"{shown}: numeric column {col!r} has {counts} value(s); they will be replaced "
            "by the train mean (data.numeric_nan: impute)"
        )


def _schema_mismatches(
    spec: FeatureSpec, schemas: dict[str, pa.Schema], root: Location
) -> list[str]:
    out: list[str] = []
    if len(schemas) < 2:
        return out
    ref_name = next(iter(schemas))
    ref = schemas[ref_name]
    for name, schema in schemas.items():
        if name == ref_name:
            continue
        for col in spec.all_columns:
            if col not in ref.names or col not in schema.names:
                continue
            a, b = ref.field(col).type, schema.field(col).type
            if type_kind(a) != type_kind(b):
                out.append(
                    f"column {col!r} is {a} in {split_file(root, ref_name)} but "
                    f"{b} in {split_file(root, name)}; every split must use the "
                    "same column types (write them with one schema)"
                )
    return out


def _preview(names: list[str], limit: int = 8) -> str:
    shown = ", ".join(names[:limit])
    return f"[{shown}{', ...' if len(names) > limit else ''}]"


def validate_data(
    features_dir: str | os.PathLike[str] | None, spec: FeatureSpec, numeric_nan: str
) -> ValidatedData:
    """Validate the features (every problem at once) and fingerprint them, once.

    Raises:
        FeatureValidationError: the features do not match ``spec``.
    """
    root = features_location(features_dir)
    stamps = stamps_of(root)
    report = validate_features(root, spec, numeric_nan=numeric_nan)
    fp = fingerprint(root, spec)
    if stamps_of(root) != stamps:
        raise StorageError(
            0, f"the features under {show(root)} changed while they were validated; retry"
        )
    rows = {s.name: s.rows for s in report.splits.values()}
    return ValidatedData(root, fp, stamps, rows, tuple(report.warnings), tuple(report.lines()))
