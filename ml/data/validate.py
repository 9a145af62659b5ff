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

:func:`fingerprint` hashes the split files and the column types; the registry keeps it
as the data lineage of a model.

Exceptions::

    ValueError
    └── FeatureValidationError   .problems: list[str]   (also a ml.cli.UserError)
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ml import paths
from ml.config import NUMERIC_NAN_POLICIES, FeatureSpec
from ml.data.schema import (
    DATA_FILE,
    SPLITS,
    is_categorical_type,
    is_label_type,
    is_numeric_type,
    role_of,
    split_path,
    type_kind,
)
from ml.errors import FeatureValidationError
from ml.fsutil import display_path

_HASH_BLOCK = 1 << 20


@dataclass(frozen=True)
class SplitInfo:
    """What validation learned about one split's file."""

    name: str
    path: Path
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

    features_dir: Path
    spec: FeatureSpec
    splits: dict[str, SplitInfo]
    warnings: list[str]
    seconds: float = 0.0

    def lines(self) -> list[str]:
        """One ``✅ <split> data: <path> (<size>)`` line per split, then warnings."""
        out = [
            f"✅ {s.name} data: {display_path(s.path)} ({format_size(s.size_bytes)}): "
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
        raise ValueError(f"numeric_nan must be one of {NUMERIC_NAN_POLICIES}, got {numeric_nan!r}")
    start = time.perf_counter()
    root = paths.resolve(features_dir if features_dir is not None else paths.FEATURES_DIR)
    if not root.is_dir():
        what = "is not a directory" if root.exists() else "does not exist"
        raise FeatureValidationError(
            [
                f"features directory {display_path(root)} {what}; generate the data with "
                "`ctr-pipeline data generate` or pass the directory that holds "
                f"{{train,val,test}}/{DATA_FILE} (--features-dir / data.features_dir)"
            ],
            root,
        )
    problems: list[str] = []
    warnings: list[str] = []
    infos: dict[str, SplitInfo] = {}
    schemas: dict[str, pa.Schema] = {}
    for name in SPLITS:
        checked = _check_split(root, name, spec, numeric_nan, problems, warnings)
        if checked is not None:
            infos[name], schemas[name] = checked
    problems += _schema_mismatches(spec, schemas, root)
    if problems:
        raise FeatureValidationError(problems, root)
    return ValidationReport(root, spec, infos, warnings, round(time.perf_counter() - start, 3))


def _check_split(
    root: Path,
    name: str,
    spec: FeatureSpec,
    numeric_nan: str,
    problems: list[str],
    warnings: list[str],
) -> tuple[SplitInfo, pa.Schema] | None:
    path = split_path(root, name)
    shown = display_path(path)
    if not path.exists():
        where = "" if path.parent.is_dir() else f" (there is no {name}/ directory)"
        problems.append(
            f"{name} data file {shown} is missing{where}; every split needs "
            f"{name}/{DATA_FILE} (regenerate with `ctr-pipeline data generate --overwrite`)"
        )
        return None
    if not path.is_file():
        problems.append(
            f"{shown} is not a regular file; write the {name} split as one parquet file"
        )
        return None
    size = path.stat().st_size
    if size == 0:
        problems.append(f"{shown} is empty (0 bytes); rewrite the {name} split")
        return None
    try:
        pf = pq.ParquetFile(path)
        schema = pf.schema_arrow
    except (pa.ArrowException, OSError, ValueError) as exc:
        problems.append(
            f"{shown} is not a readable parquet file ({_short(exc)}); rewrite the {name} "
            "split as parquet"
        )
        return None
    meta = pf.metadata
    rows = meta.num_rows
    n_before = len(problems)
    if rows == 0:
        problems.append(f"{shown} has 0 rows; the {name} split needs data")

    types: dict[str, str] = {}
    usable: list[str] = []
    for col in spec.all_columns:
        if col not in schema.names:
            problems.append(
                f"{shown}: {role_of(spec, col)} column {col!r} is missing "
                f"(file has {_preview(schema.names)}); add it or fix the features config"
            )
            continue
        tp = schema.field(col).type
        types[col] = str(tp)
        role = role_of(spec, col)
        if role == "label" and not is_label_type(tp):
            problems.append(
                f"{shown}: label column {col!r} has type {tp}; it must be integer or "
                "boolean 0/1 (cast it to int64)"
            )
        elif role == "categorical" and not is_categorical_type(tp):
            problems.append(
                f"{shown}: categorical column {col!r} has type {tp}; it must hold integer "
                "ids or strings (cast it to int64 or string)"
            )
        elif role == "numeric" and not is_numeric_type(tp):
            problems.append(
                f"{shown}: numeric column {col!r} has type {tp}; it must be integer or float "
                "(convert it, or list it under features.categorical)"
            )
        else:
            usable.append(col)
    if rows == 0:
        return None

    positives = 0
    try:
        for col in usable:
            idx = schema.get_field_index(col)
            nulls = _null_count(pf, col, idx)
            role = role_of(spec, col)
            if role == "label":
                label_ok = True
                if nulls:
                    problems.append(
                        f"{shown}: label column {col!r} has {nulls:,} null value(s); every "
                        "row needs a 0/1 label (drop or fill those rows)"
                    )
                    label_ok = False
                lo, hi = _min_max(pf, col, idx)
                if lo is not None and hi is not None and (lo < 0 or hi > 1):
                    problems.append(
                        f"{shown}: label column {col!r} has values other than 0 and 1 "
                        f"(min {lo}, max {hi}); map it to 0/1"
                    )
                    label_ok = False
                if label_ok:
                    positives = _count_positives(pf, col)
                    non_null = rows - nulls
                    if positives in (0, non_null):
                        which = "0 (no clicks)" if positives == 0 else "1 (every row clicked)"
                        problems.append(
                            f"{shown}: label column {col!r} has a single class: every row is "
                            f"{which}; AUC needs both classes in the {name} split "
                            "(re-split the data)"
                        )
            elif role == "categorical":
                if nulls:
                    warnings.append(
                        f"{shown}: categorical column {col!r} has {nulls:,} null value(s); "
                        "they are encoded as the out-of-vocabulary category"
                    )
            else:
                bad = _nonfinite(pf, col, schema.field(col).type)
                _numeric_message(shown, col, nulls, bad, numeric_nan, problems, warnings)
    except (pa.ArrowException, OSError) as exc:
        problems.append(
            f"{shown} could not be read ({_short(exc)}); the file is corrupt, rewrite the "
            f"{name} split"
        )
    if len(problems) > n_before:
        return None
    return SplitInfo(name, path, size, rows, positives, pf.num_row_groups, types), schema


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


def _schema_mismatches(spec: FeatureSpec, schemas: dict[str, pa.Schema], root: Path) -> list[str]:
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
                    f"column {col!r} is {a} in {display_path(split_path(root, ref_name))} but "
                    f"{b} in {display_path(split_path(root, name))}; every split must use the "
                    "same column types (write them with one schema)"
                )
    return out


def _stats(pf: pq.ParquetFile, idx: int) -> Iterator[Any]:
    for rg in range(pf.num_row_groups):
        yield pf.metadata.row_group(rg).column(idx).statistics


def _null_count(pf: pq.ParquetFile, col: str, idx: int) -> int:
    total = 0
    for rg, st in enumerate(_stats(pf, idx)):
        if st is not None and st.has_null_count:
            total += st.null_count
        else:
            total += pf.read_row_group(rg, columns=[col]).column(0).null_count
    return total


def _min_max(pf: pq.ParquetFile, col: str, idx: int) -> tuple[Any, Any]:
    lo: Any = None
    hi: Any = None
    for rg, st in enumerate(_stats(pf, idx)):
        if st is not None and st.has_min_max:
            a, b = st.min, st.max
        else:
            mm = pc.min_max(pf.read_row_group(rg, columns=[col]).column(0))
            a, b = mm["min"].as_py(), mm["max"].as_py()
        if a is None:
            continue
        a, b = int(a), int(b)
        lo = a if lo is None else min(lo, a)
        hi = b if hi is None else max(hi, b)
    return lo, hi


def _count_positives(pf: pq.ParquetFile, col: str) -> int:
    total = 0
    for rg in range(pf.num_row_groups):
        values = pf.read_row_group(rg, columns=[col]).column(0)
        s = pc.sum(pc.cast(values, pa.int64())).as_py()
        total += int(s or 0)
    return total


def _nonfinite(pf: pq.ParquetFile, col: str, tp: pa.DataType) -> tuple[int, int]:
    """(NaN count, inf count) of a numeric column; integer columns cannot hold either."""
    if not pa.types.is_floating(tp):
        return 0, 0
    n_nan = n_inf = 0
    for rg in range(pf.num_row_groups):
        values = pf.read_row_group(rg, columns=[col]).column(0)
        n_nan += int(pc.sum(pc.cast(pc.is_nan(values), pa.int64())).as_py() or 0)
        n_inf += int(pc.sum(pc.cast(pc.is_inf(values), pa.int64())).as_py() or 0)
    return n_nan, n_inf


def _preview(names: list[str], limit: int = 8) -> str:
    shown = ", ".join(names[:limit])
    return f"[{shown}{', ...' if len(names) > limit else ''}]"


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


# --- lineage --------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(_HASH_BLOCK):
            h.update(block)
    return h.hexdigest()


def fingerprint(features_dir: str | os.PathLike[str] | None, spec: FeatureSpec) -> dict[str, Any]:
    """Identify the exact data a model was trained on.

    Args:
        features_dir: the features directory (relative: against the base directory).
        spec: the columns the model uses.

    Returns:
        ``{"schema": spec + column types, "files": {"train/data.parquet": sha256, ...},
        "digest": sha256 over both}``.

    Raises:
        FeatureValidationError: a split file is missing or unreadable.
    """
    root = paths.resolve(features_dir if features_dir is not None else paths.FEATURES_DIR)
    files: dict[str, str] = {}
    types: dict[str, str] = {}
    problems: list[str] = []
    for name in SPLITS:
        path = split_path(root, name)
        if not path.is_file():
            problems.append(f"{display_path(path)} is missing; cannot fingerprint the features")
            continue
        files[f"{name}/{DATA_FILE}"] = _sha256(path)
        if not types:
            try:
                schema = pq.read_schema(path)
            except (pa.ArrowException, OSError) as exc:
                problems.append(f"{display_path(path)} is not readable parquet ({_short(exc)})")
                continue
            types = {c: str(schema.field(c).type) for c in spec.all_columns if c in schema.names}
    if problems:
        raise FeatureValidationError(problems, root)
    schema_part = {**spec.to_dict(), "types": types}
    blob = json.dumps({"schema": schema_part, "files": files}, sort_keys=True)
    return {
        "schema": schema_part,
        "files": files,
        "digest": hashlib.sha256(blob.encode()).hexdigest(),
    }
