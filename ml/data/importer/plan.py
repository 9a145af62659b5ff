"""Which source columns become the label, categorical and numeric features, and their types.

Roles: ``--label`` (default: the first of ``label``, ``click``, ``clicked``, ``is_click``,
``y``, ``target`` present), then ``--categorical`` and ``--numeric`` as given; every other
column by its type: text, boolean and integer columns are categorical (integers in a CSV
are usually ids), floating-point columns numeric. ``--exclude`` drops columns; the
``--time-column`` is kept in the files but is not a feature. Criteo's layout has fixed
roles (I1-I13 numeric, C1-C26 categorical). Columns of other types (dates, lists) are
left out and named in the report.

Stored types: label int64 (0/1), categorical int64 ids (parquet, libSVM indices) or
strings (any text source: ``007`` stays distinct from ``7``), numeric float64.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ml.config import FeatureSpec
from ml.data.importer.options import (
    CRITEO_CATEGORICAL,
    CRITEO_NUMERIC,
    LABEL_NAMES,
    ImportOptions,
)
from ml.data.importer.sources import Source
from ml.errors import ConfigError, DataImportError


@dataclass(frozen=True)
class Plan:
    """The output: feature spec, time column, stored schema and the columns left out."""

    spec: FeatureSpec
    time_column: str | None
    schema: pa.Schema
    ignored: tuple[str, ...]

    @property
    def read_types(self) -> dict[str, pa.DataType]:
        return {f.name: f.type for f in self.schema}


def _kind(tp: pa.DataType) -> str:
    if pa.types.is_dictionary(tp):
        tp = tp.value_type
    if pa.types.is_integer(tp):
        return "int"
    if pa.types.is_floating(tp) or pa.types.is_decimal(tp):
        return "float"
    if pa.types.is_string(tp) or pa.types.is_large_string(tp) or pa.types.is_boolean(tp):
        return "text"
    if pa.types.is_null(tp):
        return "null"
    return "other"


def make_plan(source: Source, opts: ImportOptions) -> Plan:
    """Decide every column's role and stored type from the first source and the options.

    Raises:
        DataImportError: no label, a named column that does not exist, or a column whose
            type cannot play its role.
    """
    raw = source.raw_schema()
    names = list(raw.names)
    label = _label(names, opts, source)
    named = [*opts.categorical, *opts.numeric, *opts.exclude]
    if opts.time_column:
        named.append(opts.time_column)
    missing = [c for c in named if c not in names]
    if missing:
        raise DataImportError(f"{source.shown} has no column(s) {missing}; its columns: {names}")
    explicit_cat, explicit_num = set(opts.categorical), set(opts.numeric)
    if source.format == "criteo":
        explicit_cat |= set(CRITEO_CATEGORICAL) - explicit_num
        explicit_num |= set(CRITEO_NUMERIC) - explicit_cat
    categorical: list[str] = []
    numeric: list[str] = []
    ignored: list[str] = []
    skip = {label, opts.time_column, *opts.exclude}
    for name in names:
        if name in skip:
            continue
        kind = _kind(raw.field(name).type)
        if name in explicit_num or (name not in explicit_cat and kind == "float"):
            numeric.append(name)
        elif name in explicit_cat or kind in ("text", "int", "null"):
            categorical.append(name)
        else:
            ignored.append(name)
    try:
        spec = FeatureSpec.from_dict(
            {"label": label, "categorical": categorical, "numeric": numeric}, where="import"
        )
    except ConfigError as exc:
        raise DataImportError(f"{source.shown}: {exc}") from None
    fields = [pa.field(label, pa.int64())]
    fields += [pa.field(c, _categorical_type(source, raw.field(c).type)) for c in categorical]
    fields += [pa.field(c, pa.float64()) for c in numeric]
    if opts.time_column:
        fields.append(pa.field(opts.time_column, _time_type(source, raw, opts.time_column)))
    return Plan(spec, opts.time_column, pa.schema(fields), tuple(ignored))


def _label(names: list[str], opts: ImportOptions, source: Source) -> str:
    if opts.label is not None:
        if opts.label not in names:
            raise DataImportError(
                f"{source.shown} has no label column {opts.label!r}; its columns: {names}"
            )
        return opts.label
    for candidate in LABEL_NAMES:
        if candidate in names:
            return candidate
    raise DataImportError(
        f"{source.shown}: no label column (none of {list(LABEL_NAMES)}); pass --label NAME "
        f"(its columns: {names})"
    )


def _categorical_type(source: Source, tp: pa.DataType) -> pa.DataType:
    if not source.text and _kind(tp) == "int":
        return pa.int64()
    if not source.text and _kind(tp) not in ("int", "text", "null"):
        raise DataImportError(
            f"{source.shown}: a categorical column has type {tp}; list it under --numeric "
            "or convert it to integer ids or text"
        )
    return pa.string()


def _time_type(source: Source, raw: pa.Schema, name: str) -> pa.DataType:
    tp = raw.field(name).type
    if pa.types.is_integer(tp) or pa.types.is_floating(tp) or pa.types.is_temporal(tp):
        return tp
    raise DataImportError(
        f"{source.shown}: time column {name!r} holds {tp} values; it needs numbers (e.g. epoch "
        "seconds) or ISO 8601 dates/times (2024-05-01 or 2024-05-01 13:45:00)"
    )


def check_labels(batch: pa.RecordBatch, label: str, source: Source, start: int) -> int:
    """Raise naming the first row whose label is not 0/1; return the batch's positives."""
    values = batch.column(label)
    low, high = pc.min_max(values).values()
    if values.null_count or (low.is_valid and (low.as_py() < 0 or high.as_py() > 1)):
        arr = np.asarray(values.fill_null(-1))
        i = int(np.flatnonzero((arr != 0) & (arr != 1))[0])
        value = values[i].as_py()
        what = "is empty" if value is None else f"is {value!r}, not 0 or 1"
        raise source.error(start + i, label, f"the label {what}")
    return int(pc.sum(values).as_py() or 0)
