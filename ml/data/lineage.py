"""The data lineage of a model: a fingerprint of the exact features it was trained on.

``ml.data.validate.validate_data`` validates and fingerprints a features directory once per
run; the :class:`ValidatedData` it returns travels with the run so no later step hashes it again.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ml.config import FeatureSpec
from ml.data import layout
from ml.errors import FeatureValidationError
from ml.storage.files import Location, Stamp, show
from ml.storage.url import is_url


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
    root = layout.features_location(features_dir)
    files: dict[str, str] = {}
    types: dict[str, str] = {}
    problems: list[str] = []
    for name in layout.SPLITS:
        ref = layout.split_file(root, name)
        if not ref.is_file():
            problems.append(f"{ref} is missing; cannot fingerprint the features")
            continue
        # the content's hash (not a local mtime or an object's ETag): the same data has
        # the same digest on disk and in a bucket
        files[f"{name}/{layout.DATA_FILE}"] = ref.sha256()
        if not types:
            try:
                schema = pq.read_schema(ref.open())
            except (pa.ArrowException, OSError) as exc:
                problems.append(f"{ref} is not readable parquet ({short(exc)})")
                continue
            types = {c: str(schema.field(c).type) for c in spec.all_columns if c in schema.names}
    if problems:
        raise FeatureValidationError(problems, show(root))
    # The columns and their types only: how a column is encoded (hash_buckets) is config.
    columns = {k: v for k, v in spec.to_dict().items() if k != "hash_buckets"}
    schema_part = {**columns, "types": types}
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


@dataclass(frozen=True)
class ValidatedData:
    """Features that one run validated and fingerprinted, with what it saw on disk.

    A run validates and hashes its data once and hands this on (the training job, each
    tuning trial, the next DAG task through the run summary). :meth:`current` says whether
    the files are still the ones seen (same size and modification time; in a bucket the
    same size and ETag), so a step that receives it re-hashes nothing unless the data
    changed in between.
    """

    root: Location
    fingerprint: dict[str, Any]
    #: ``{"train/data.parquet": [size, mtime_ns or ETag], ...}`` when it was validated.
    stamps: dict[str, Stamp]
    #: ``{"train": rows, ...}`` (for the log).
    rows: dict[str, int]
    warnings: tuple[str, ...] = ()
    #: The validation report's lines (one per split, then the warnings).
    lines: tuple[str, ...] = ()

    @property
    def digest(self) -> str:
        return str(self.fingerprint["digest"])

    def current(self, features_dir: str | os.PathLike[str] | None = None) -> bool:
        """True when ``features_dir`` (default: the same) still holds the files seen."""
        root = layout.features_location(features_dir) if features_dir is not None else self.root
        return root == self.root and stamps_of(root) == self.stamps

    def describe(self) -> str:
        rows = ", ".join(f"{name} {n:,}" for name, n in self.rows.items())
        return f"{show(self.root)} ({rows} rows; data digest {self.digest[:12]})"

    def to_dict(self) -> dict[str, Any]:
        """JSON form (the run summary's ``data``)."""
        return {
            "root": str(self.root),
            "fingerprint": self.fingerprint,
            "stamps": self.stamps,
            "rows": self.rows,
            "warnings": list(self.warnings),
            "lines": list(self.lines),
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ValidatedData:
        root = str(raw["root"])
        return cls(
            root if is_url(root) else Path(root),
            dict(raw["fingerprint"]),
            {k: list(v) for k, v in raw["stamps"].items()},
            {k: int(v) for k, v in raw["rows"].items()},
            tuple(raw.get("warnings") or ()),
            tuple(raw.get("lines") or ()),
        )


def stamps_of(root: Location) -> dict[str, Stamp]:
    """``{"train/data.parquet": [size, mtime_ns], ...}`` (``[size, ETag]`` in a bucket)."""
    out: dict[str, Stamp] = {}
    for name in layout.SPLITS:
        stamp = layout.split_file(root, name).stamp()
        if stamp is not None:
            out[f"{name}/{layout.DATA_FILE}"] = stamp
    return out
