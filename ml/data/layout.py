"""The features directory: its file names, where they are, and who wrote it.

This module is the one owner of the layout; every other module asks it for paths::

    <features_dir>/
    ├── schema.json            optional for your own data; always written by generate/import
    ├── train/data.parquet
    ├── val/data.parquet
    └── test/data.parquet

``schema.json`` holds the feature spec (``label``, ``categorical``, ``numeric``), row and
click counts, and a *writer marker* saying which tool wrote the directory:

- ``"generator": {"name": "ml.data.generate", ...}``: synthetic data; it also records the
  world, its seeds and the oracle AUC;
- ``"imported": {"name": "ml.data.importer", ...}``: ``ctr-pipeline data import``; it
  names the source files.

The directory may also be a bucket prefix (``s3://bucket/features/v1``, see
docs/storage.md): the same keys below it. :func:`features_location` keeps a URL as it is,
:func:`split_file` and :func:`schema_file` name a file at either kind of location
(:class:`ml.storage.files.FileRef`), and :func:`features_root` stays the local-only form.

A directory without a marker holds a user's data. The tools never write into it or delete
it (:func:`check_target`), ``--overwrite`` included. For such data the config's
``features`` section is the schema, and oracle figures do not apply.

Relative paths resolve against the base directory (:func:`ml.paths.resolve`).
"""

from __future__ import annotations

import os
from collections.abc import Collection
from pathlib import Path
from typing import Any

from ml import paths
from ml.config import FeatureSpec
from ml.errors import DataError, DataLoadError, UserError
from ml.fsutil import atomic_write_json, display_path, read_json_object
from ml.storage.files import FileRef, Location, join

SPLITS: tuple[str, ...] = ("train", "val", "test")
DATA_FILE = "data.parquet"
SCHEMA_FILE = "schema.json"

#: Writer markers: the key in schema.json and the ``name`` stored under it.
GENERATOR = "generator"
IMPORTER = "importer"
GENERATOR_NAME = "ml.data.generate"
IMPORTER_NAME = "ml.data.importer"
MARKER_KEYS: dict[str, tuple[str, str]] = {
    GENERATOR: ("generator", GENERATOR_NAME),
    IMPORTER: ("imported", IMPORTER_NAME),
}

FeaturesDir = str | os.PathLike[str] | None


def features_root(features_dir: FeaturesDir = None) -> Path:
    """The absolute features directory (None: the default ``data/features/v1``)."""
    return paths.resolve(features_dir if features_dir is not None else paths.FEATURES_DIR)


def features_location(features_dir: FeaturesDir = None) -> Location:
    """The features directory as a URL (kept as it is) or an absolute local path."""
    return paths.location(features_dir if features_dir is not None else paths.FEATURES_DIR)


def split_file(features_dir: FeaturesDir, split: str) -> FileRef:
    """``<features_dir>/<split>/data.parquet`` at a local path or in a bucket."""
    return FileRef(join(features_location(features_dir), split, DATA_FILE))


def schema_file(features_dir: FeaturesDir) -> FileRef:
    """``<features_dir>/schema.json`` at a local path or in a bucket."""
    return FileRef(join(features_location(features_dir), SCHEMA_FILE))


def remote_exists(url: str) -> bool:
    """True when objects lie below the bucket prefix ``url`` (one LIST: unlike a HEAD, it
    tells a missing bucket from a missing key, and raises :class:`BucketNotFoundError`)."""
    from ml.storage.files import store_and_key

    store, prefix = store_and_key(url)
    return bool(store.list_objects(prefix + "/" if prefix else ""))


def is_default_dir(features_dir: FeaturesDir) -> bool:
    """True when ``features_dir`` is the default synthetic directory of the base directory."""
    return features_root(features_dir).resolve() == features_root(None).resolve()


def split_path(features_dir: FeaturesDir, split: str) -> Path:
    """``<features_dir>/<split>/data.parquet``, resolved against the base directory."""
    return features_root(features_dir) / split / DATA_FILE


def schema_path(features_dir: FeaturesDir) -> Path:
    """``<features_dir>/schema.json``, resolved against the base directory."""
    return features_root(features_dir) / SCHEMA_FILE


def missing_splits(features_dir: FeaturesDir) -> list[str]:
    """The splits whose ``data.parquet`` is not a file (empty: the layout is complete)."""
    return [s for s in SPLITS if not split_file(features_dir, s).is_file()]


def read_schema(features_dir: FeaturesDir, *, required: bool = True) -> dict[str, Any] | None:
    """Read ``schema.json``.

    Args:
        features_dir: the features directory.
        required: raise when the file is missing (else return None).

    Raises:
        DataLoadError: the file is missing (when ``required``), unreadable or not a JSON
            object.
    """
    ref = schema_file(features_dir)
    if ref.remote:
        return _read_remote_schema(ref, required)
    path = schema_path(features_dir)
    if not required and not path.exists():
        return None
    return read_json_object(
        path,
        what="schema file",
        error=DataLoadError,
        hint="generate the data with `ctr-pipeline data generate` or import it with "
        "`ctr-pipeline data import`",
    )


def _read_remote_schema(ref: FileRef, required: bool) -> dict[str, Any] | None:
    import json

    if not ref.is_file():
        if not required:
            return None
        raise DataLoadError(
            f"schema file {ref} does not exist; import the data with `ctr-pipeline data "
            "import --out <url>`"
        )
    try:
        value = json.loads(ref.read_bytes())
    except ValueError as exc:
        raise DataLoadError(
            f"schema file {ref} is not valid JSON ({exc}); import it again"
        ) from exc
    if not isinstance(value, dict):
        raise DataLoadError(f"schema file {ref} does not hold a JSON object; import it again")
    return value


def write_schema(features_dir: Path, schema: dict[str, Any]) -> Path:
    """Write ``schema.json`` atomically into ``features_dir`` (an absolute path)."""
    path = features_dir / SCHEMA_FILE
    atomic_write_json(path, schema)
    return path


def spec_from_schema(schema: dict[str, Any]) -> FeatureSpec:
    """The :class:`FeatureSpec` named by a parsed ``schema.json``."""
    return FeatureSpec.from_dict(
        {k: schema[k] for k in ("label", "categorical", "numeric") if k in schema},
        where=SCHEMA_FILE,
    )


def recorded_oracle_auc(features_dir: FeaturesDir, split: str = "test") -> float | None:
    """The oracle AUC that the generator recorded for ``split``; None for any other data."""
    try:
        schema = read_schema(features_dir, required=False)
    except UserError:
        return None
    if schema is None or writer_of_schema(schema) != GENERATOR:
        return None
    value = schema.get("oracle_auc", {})
    value = value.get(split) if isinstance(value, dict) else None
    return float(value) if isinstance(value, (int, float)) else None


# --- who wrote a directory ----------------------------------------------------------------


def writer_of_schema(schema: dict[str, Any]) -> str | None:
    """``"generator"``, ``"importer"`` or None (no marker) for a parsed ``schema.json``."""
    for writer, (key, name) in MARKER_KEYS.items():
        block = schema.get(key)
        if isinstance(block, dict) and block.get("name") == name:
            return writer
    return None


def writer_of(features_dir: FeaturesDir) -> str | None:
    """Which tool wrote ``features_dir`` (its ``schema.json`` marker), or None."""
    if schema_file(features_dir).remote:
        try:
            schema = read_schema(features_dir, required=False)
        except DataError:
            return None
        return writer_of_schema(schema) if schema is not None else None
    path = schema_path(features_dir)
    if not path.is_file() or path.is_symlink():
        return None
    try:
        schema = read_json_object(path, error=DataError)
    except (DataError, OSError):
        return None
    return writer_of_schema(schema)


def layout_entries() -> set[str]:
    """Relative paths a tool-written directory holds: schema.json, the splits and files."""
    return {SCHEMA_FILE, *SPLITS, *(f"{s}/{DATA_FILE}" for s in SPLITS)}


def foreign_entries(root: Path) -> list[str]:
    """Entries under ``root`` that are not part of the layout (sorted, dirs with a ``/``)."""
    allowed = layout_entries()
    out = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if rel not in allowed:
            out.append(rel + ("/" if path.is_dir() and not path.is_symlink() else ""))
    return out


def describe_contents(root: Path, limit: int = 6) -> str:
    """``3 entries: notes.txt, train/, x.parquet`` for the top level of a directory."""
    entries = sorted(
        p.name + ("/" if p.is_dir() and not p.is_symlink() else "") for p in root.iterdir()
    )
    shown = ", ".join(entries[:limit]) + (", ..." if len(entries) > limit else "")
    return f"{len(entries)} entr{'y' if len(entries) == 1 else 'ies'}: {shown}"


def check_target(
    target: Path,
    *,
    overwrite: bool,
    may_replace: Collection[str],
    error: type[DataError],
    command: str,
) -> None:
    """Refuse to write into ``target`` unless it is absent, empty, or ours to replace.

    Args:
        target: the absolute output directory.
        overwrite: the caller asked to replace a directory a tool wrote.
        may_replace: the writers (``"generator"``, ``"importer"``) whose output this
            command may replace.
        error: the error class to raise.
        command: the command, for messages (``ctr-pipeline data generate``).

    Raises:
        error: ``target`` is a file, holds data no tool in ``may_replace`` wrote (a user's
            data: never touched, ``overwrite`` or not), holds extra files besides the
            layout, or holds our data and ``overwrite`` is false.
    """
    shown = display_path(target)
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise error(f"{shown} exists and is not a directory; choose another --out")
    if not target.exists() or not any(target.iterdir()):
        return
    writer = writer_of(target)
    if writer is None or writer not in may_replace:
        whose = "data that was not written by " + command
        if writer is not None:
            whose = f"data written by `ctr-pipeline data {_verb(writer)}`"
        raise error(
            f"{shown} holds {whose} ({describe_contents(target)}); {command} never writes "
            "into or deletes such a directory, --overwrite included: choose another --out "
            "(or move those files away yourself)"
        )
    extra = foreign_entries(target)
    if extra:
        raise error(
            f"{shown} was written by `ctr-pipeline data {_verb(writer)}` but also holds other "
            f"files ({', '.join(extra[:6])}{', ...' if len(extra) > 6 else ''}); they are "
            "never deleted: move them away or choose another --out"
        )
    if not overwrite:
        raise error(
            f"{shown} already exists and is not empty; pass --overwrite to replace it "
            "(or --out to write elsewhere)"
        )


def _verb(writer: str) -> str:
    return "generate" if writer == GENERATOR else "import"


def check_remote_target(
    target: str,
    *,
    overwrite: bool,
    may_replace: Collection[str],
    error: type[DataError],
    command: str,
) -> None:
    """:func:`check_target` for a bucket prefix: the same rules, read from a listing.

    Raises:
        error: as :func:`check_target`.
        StorageLayerError: the bucket is missing, access is denied, the endpoint is down.
    """
    from ml.storage.files import show, store_and_key

    store, prefix = store_and_key(target)
    keys = [o.key[len(prefix) :].lstrip("/") for o in store.list_objects(prefix + "/")]
    if not keys:
        return
    shown = show(target)
    writer = writer_of(target)
    listed = f"{len(keys)} object(s): {', '.join(sorted(keys)[:6])}"
    if writer is None or writer not in may_replace:
        whose = "data that was not written by " + command
        if writer is not None:
            whose = f"data written by `ctr-pipeline data {_verb(writer)}`"
        raise error(
            f"{shown} holds {whose} ({listed}); {command} never writes into or deletes such "
            "a prefix, --overwrite included: choose another --out"
        )
    extra = sorted(set(keys) - layout_entries())
    if extra:
        raise error(
            f"{shown} was written by `ctr-pipeline data {_verb(writer)}` but also holds other "
            f"objects ({', '.join(extra[:6])}); they are never deleted: choose another --out"
        )
    if not overwrite:
        raise error(
            f"{shown} already holds features; pass --overwrite to replace them (or --out to "
            "write elsewhere)"
        )
