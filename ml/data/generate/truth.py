"""The ground truth of generated data: each row's true click probability and the oracle AUC.

:func:`true_probability` recomputes the probability a row's label was drawn from, from the
stored columns and the world (named, with its seed, in ``schema.json``);
:func:`oracle_auc` scores it against a split's labels: the best AUC any model can reach on
that split. Neither applies to imported or other user data.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow.parquet as pq

from ml.data import layout
from ml.data.generate.catalog import DEFAULT_WORLD, DEFAULT_WORLD_SEED, build_world, get_world
from ml.data.generate.world import FloatArray, rows_from_frame, sigmoid
from ml.data.generate.writer import CHUNK_ROWS, GENERATOR_VERSION
from ml.errors import DataError, DataLoadError
from ml.fsutil import display_path
from ml.metrics import roc_auc


def true_probability(
    df: Any, world_seed: int = DEFAULT_WORLD_SEED, world: str = DEFAULT_WORLD
) -> FloatArray:
    """Ground-truth click probability of each row, from the raw generated columns.

    Args:
        df: a pandas DataFrame (or a mapping of column name to array) with the world's
            feature columns, as read from its parquet files.
        world_seed: the world seed the data came from (``schema.json``'s ``world_seed``).
        world: the world's name (``schema.json``'s ``generator.world``).

    Returns:
        float64 array of probabilities, one per row.

    Raises:
        DataError: a column is missing or holds a value the world does not know.
        GenerationError: an unknown world.
    """
    wdef = get_world(world)
    params = build_world(wdef.name, int(world_seed))
    return sigmoid(wdef.logit(params, rows_from_frame(wdef, df)))


def oracle_auc(features_dir: str | os.PathLike[str] | None = None, split: str = "test") -> float:
    """AUC of the true probabilities against the labels of one split.

    Args:
        features_dir: generated data (default: ``ml.paths.FEATURES_DIR``).
        split: ``train``, ``val`` or ``test``.

    Raises:
        DataError: the directory was not written by the generator (no oracle exists for
            other data), or by another generator or world version.
        DataLoadError: ``schema.json`` or the split is missing or unreadable.
    """
    root = layout.features_root(features_dir)
    schema = layout.read_schema(root)
    assert schema is not None  # required=True
    world, world_seed = _generated_world(schema, root)
    if split not in layout.SPLITS:
        raise DataError(f"split must be one of {layout.SPLITS}, got {split!r}")
    path = layout.split_path(root, split)
    if not path.is_file():
        raise DataLoadError(f"{display_path(path)} does not exist; regenerate the data")
    label = get_world(world).label
    probs: list[FloatArray] = []
    labels: list[npt.NDArray[Any]] = []
    for batch in pq.ParquetFile(path).iter_batches(batch_size=CHUNK_ROWS):
        frame = batch.to_pandas()
        probs.append(true_probability(frame, world_seed=world_seed, world=world))
        labels.append(frame[label].to_numpy())
    return roc_auc(np.concatenate(labels), np.concatenate(probs))


def _generated_world(schema: dict[str, Any], root: os.PathLike[str]) -> tuple[str, int]:
    """(world name, world seed) of generated data, or raise saying why there is no oracle."""
    where = display_path(layout.schema_path(root))
    generator = schema.get("generator")
    if layout.writer_of_schema(schema) != layout.GENERATOR or "world_seed" not in schema:
        raise DataError(
            f"{where} has no generator marker with a world_seed: the oracle AUC exists only "
            "for data made by `ctr-pipeline data generate`"
        )
    assert isinstance(generator, dict)
    version = generator.get("version", GENERATOR_VERSION)
    world = str(generator.get("world", DEFAULT_WORLD))
    wdef = get_world(world)
    world_version = generator.get("world_version", wdef.version)
    if version != GENERATOR_VERSION or world_version != wdef.version:
        raise DataError(
            f"{where}: the data was made by generator version {version} (world {world!r} "
            f"version {world_version}), whose world this version ({GENERATOR_VERSION}, world "
            f"version {wdef.version}) no longer computes; regenerate it with "
            "`ctr-pipeline data generate --overwrite`"
        )
    return world, int(schema["world_seed"])
