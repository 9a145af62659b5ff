"""The data lineage of a model: a fingerprint of the exact features it was trained on."""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ml.config import FeatureSpec
from ml.data import layout
from ml.errors import FeatureValidationError
from ml.fsutil import display_path, sha256_file


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
    root = layout.features_root(features_dir)
    files: dict[str, str] = {}
    types: dict[str, str] = {}
    problems: list[str] = []
    for name in layout.SPLITS:
        path = layout.split_path(root, name)
        if not path.is_file():
            problems.append(f"{display_path(path)} is missing; cannot fingerprint the features")
            continue
        files[f"{name}/{layout.DATA_FILE}"] = sha256_file(path)[0]
        if not types:
            try:
                schema = pq.read_schema(path)
            except (pa.ArrowException, OSError) as exc:
                problems.append(f"{display_path(path)} is not readable parquet ({short(exc)})")
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


def short(exc: BaseException) -> str:
    """The first line of an exception's message (at most 200 characters)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]
