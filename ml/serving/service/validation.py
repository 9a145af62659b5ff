"""Turn a ``POST /predict`` body into the DataFrame ``Predictor.predict_proba`` takes.

The body is ``{"rows": [{field: value, ...}, ...], "key": optional}``. Every problem is
reported the way FastAPI reports its own (``{"detail": [{"loc", "msg", "type"}]}``, HTTP
422), naming the row and field, with up to :data:`MAX_ERRORS` problems per request:

- not JSON (or nested too deeply to parse), not an object, an unknown top-level field,
  no ``rows``, ``rows`` not a list, empty, or longer than the batch limit;
- a row that is not an object, or lacks a feature column the model needs;
- a numeric feature that is not a number or null (strings, booleans, lists, objects);
- a categorical feature that is not a string, an integer or null, or an integer outside
  the 64-bit range;
- a ``key`` that is not a string or an integer.

What the predictor accepts is accepted as it is: null or NaN numerics score with the
train mean, null or unseen categories with the out-of-vocabulary embedding, and extra
fields are ignored. Columns are checked with one pass over the values per field (no
per-cell Python branching on the happy path).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ml.config import FeatureSpec
from ml.errors import RequestValidationError

MAX_ERRORS = 20
TOP_LEVEL = ("rows", "key")
_NUMERIC_TYPES: frozenset[type] = frozenset({int, float, type(None)})
_CATEGORY_TYPES: frozenset[type] = frozenset({int, str, type(None)})
_INT64 = (-(1 << 63), (1 << 63) - 1)
_JSON_NAMES = {
    str: "a string",
    bool: "a boolean",
    list: "a list",
    dict: "an object",
    float: "a non-integer number",
    int: "an integer",
    type(None): "null",
}


@dataclass
class ParsedRequest:
    """A valid request: per feature column, numeric values as float64 arrays (null → NaN)
    and categorical values as the list of ints, strings and ``None`` sent."""

    columns: dict[str, Any]
    key: str | None
    rows: int
    _frame: pd.DataFrame | None = field(default=None, repr=False)

    @property
    def frame(self) -> pd.DataFrame:
        """The columns as the DataFrame ``Predictor.predict_proba`` takes (built once)."""
        if self._frame is None:
            self._frame = pd.DataFrame(
                {name: _as_column(values) for name, values in self.columns.items()}, copy=False
            )
        return self._frame


def _as_column(values: Any) -> Any:
    if isinstance(values, np.ndarray):
        return values
    if set(map(type, values)) == {int}:
        return np.array(values, dtype=np.int64)
    return pd.Series(values, dtype=object)


def _error(loc: Sequence[str | int], msg: str, kind: str) -> dict[str, Any]:
    return {"loc": ["body", *loc], "msg": msg, "type": kind}


def _describe(value: Any) -> str:
    text = json.dumps(value, default=str)
    return f"{_JSON_NAMES.get(type(value), type(value).__name__)} ({text[:40]})"


def parse_body(body: bytes) -> Any:
    """The JSON value of ``body``; the parser stops at the interpreter's recursion limit.

    Raises:
        RequestValidationError: not JSON (``json_invalid``), or nested deeper than the
            parser allows (``json_too_deep``, about 1,000 levels; a body needs 3).
    """
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RequestValidationError(
            [_error([], f"the body is not valid JSON ({exc})", "json_invalid")]
        ) from None
    except RecursionError:
        msg = (
            "the body nests arrays/objects too deeply to parse (about 1,000 levels at most); "
            'a /predict body is {"rows": [{field: value, ...}, ...]}'
        )
        raise RequestValidationError([_error([], msg, "json_too_deep")]) from None


def parse_predict(
    body: bytes, spec: FeatureSpec, *, max_batch: int, key_field: str
) -> ParsedRequest:
    """Validate a /predict body and build the feature DataFrame.

    Raises:
        RequestValidationError: with every problem found (up to :data:`MAX_ERRORS`).
    """
    data = parse_body(body)
    rows, key = _top_level(data, max_batch)
    bad_rows = [i for i, r in enumerate(rows) if not isinstance(r, dict)]
    if bad_rows:
        raise RequestValidationError(
            [
                _error(
                    ["rows", i],
                    f"row {i} must be an object of field: value, got {_describe(rows[i])}",
                    "dict_type",
                )
                for i in bad_rows[:MAX_ERRORS]
            ]
        )
    columns = _columns(rows, spec)
    if key is None and rows[0].get(key_field) is not None:
        key = rows[0][key_field]
    return ParsedRequest(columns, None if key is None else str(key), len(rows))


def _top_level(data: Any, max_batch: int) -> tuple[list[Any], Any]:
    if not isinstance(data, dict):
        msg = f'the body must be an object {{"rows": [...]}}, got {_describe(data)}'
        raise RequestValidationError([_error([], msg, "dict_type")])
    errors = [
        _error([k], f"unknown field {k!r}; the body takes {list(TOP_LEVEL)}", "extra_forbidden")
        for k in data
        if k not in TOP_LEVEL
    ]
    rows = data.get("rows")
    if "rows" not in data:
        msg = "field 'rows' is required (a list of row objects)"
        errors.append(_error(["rows"], msg, "missing"))
    elif not isinstance(rows, list):
        msg = f"'rows' must be a list of row objects, got {_describe(rows)}"
        errors.append(_error(["rows"], msg, "list_type"))
    elif not rows:
        errors.append(_error(["rows"], "'rows' is empty; send at least one row", "too_short"))
    elif len(rows) > max_batch:
        msg = f"'rows' holds {len(rows)} rows; the batch limit is {max_batch} (split them)"
        errors.append(_error(["rows"], msg, "too_long"))
    key = data.get("key")
    if key is not None and (isinstance(key, bool) or not isinstance(key, (str, int))):
        msg = f"'key' must be a string or an integer, got {_describe(key)}"
        errors.append(_error(["key"], msg, "string_type"))
    if errors:
        raise RequestValidationError(errors[:MAX_ERRORS])
    assert isinstance(rows, list)
    return rows, key


def _columns(rows: list[dict[str, Any]], spec: FeatureSpec) -> dict[str, Any]:
    columns: dict[str, Any] = {}
    errors: list[dict[str, Any]] = []
    numeric = set(spec.numeric)
    for name in spec.feature_columns:
        try:
            values = [r[name] for r in rows]
        except KeyError:
            missing = [i for i, r in enumerate(rows) if name not in r]
            more = f" (and {len(missing) - 1} more row(s))" if len(missing) > 1 else ""
            errors.append(
                _error(
                    ["rows", missing[0], name],
                    f"row {missing[0]} lacks the feature column {name!r}{more}; the model needs "
                    f"{list(spec.feature_columns)}",
                    "missing",
                )
            )
            continue
        if name in numeric:
            columns[name] = _numeric(values, name, errors)
        else:
            columns[name] = _categorical(values, name, errors)
        if len(errors) >= MAX_ERRORS:
            break
    if errors:
        raise RequestValidationError(errors[:MAX_ERRORS])
    return columns


def _type_errors(
    values: list[Any], name: str, allowed: frozenset[type], expected: str, kind: str
) -> list[dict[str, Any]]:
    """An error for each value (``MAX_ERRORS`` at most) whose type is not ``allowed``."""
    bad = [i for i, v in enumerate(values) if type(v) not in allowed][:MAX_ERRORS]
    return [_error(["rows", i, name], f"{expected}, got {_describe(values[i])}", kind) for i in bad]


def _numeric(values: list[Any], name: str, errors: list[dict[str, Any]]) -> Any:
    if not set(map(type, values)) <= _NUMERIC_TYPES:
        expected = f"numeric feature {name!r} must be a number or null"
        errors += _type_errors(values, name, _NUMERIC_TYPES, expected, "float_type")
        return None
    try:
        return np.array(values, dtype=np.float64)
    except OverflowError:
        errors.append(
            _error(
                ["rows", 0, name],
                f"numeric feature {name!r} holds a number too large for a float",
                "float_parsing",
            )
        )
        return None


def _categorical(values: list[Any], name: str, errors: list[dict[str, Any]]) -> Any:
    types = set(map(type, values))
    if not types <= _CATEGORY_TYPES:
        expected = f"categorical feature {name!r} must be a string, an integer or null"
        errors += _type_errors(values, name, _CATEGORY_TYPES, expected, "string_type")
        return None
    if types == {int} and _INT64[0] <= min(values) and max(values) <= _INT64[1]:
        return values
    big = [i for i, v in enumerate(values) if type(v) is int and not _INT64[0] <= v <= _INT64[1]]
    if big:
        errors.append(
            _error(
                ["rows", big[0], name],
                f"categorical feature {name!r}: {values[big[0]]} is outside the 64-bit "
                "integer range",
                "int_parsing",
            )
        )
        return None
    return values
