"""Write a world's rows as a features directory: chunked, deterministic and atomic.

Rows are generated and written in fixed-size chunks (one parquet row group each) whose
randomness derives from ``(seed, split, chunk index)``: memory stays bounded at any size
and the output never depends on the machine. The directory is built beside the target and
renamed into place (:mod:`ml.data.staging`); the target must be absent, empty, or an
earlier output of the generator (:func:`ml.data.layout.check_target`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

from ml.data import layout
from ml.data.generate.catalog import DEFAULT_WORLD, DEFAULT_WORLD_SEED, build_world, get_world
from ml.data.generate.world import FloatArray, WorldDef, sigmoid, to_table
from ml.data.staging import staged
from ml.errors import GenerationError
from ml.fsutil import display_path
from ml.metrics import roc_auc

DEFAULT_ROWS = 100_000
DEFAULT_SEED = 42
DEFAULT_SPLIT = (0.7, 0.15, 0.15)
#: Rows per generated chunk and parquet row group. Fixed (not derived from free memory)
#: so that the same seed gives the same bytes on every machine.
CHUNK_ROWS = 500_000
#: Bumped when the file format or row order changes; each world has its own version too.
GENERATOR_VERSION = 2


def split_counts(rows: int, split: tuple[float, float, float]) -> dict[str, int]:
    """Rows per split: train and val rounded, test gets the remainder."""
    n_train = round(rows * split[0])
    n_val = round(rows * split[1])
    return {"train": n_train, "val": n_val, "test": rows - n_train - n_val}


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def check_args(rows: Any, seed: Any, split: Any, world_seed: Any) -> tuple[float, float, float]:
    """The validated split fractions; raise naming the first bad argument."""
    if not _is_int(rows) or rows < 1:
        raise GenerationError(f"rows must be a positive integer, got {rows!r}")
    if not _is_int(seed) or seed < 0:
        raise GenerationError(f"seed must be a non-negative integer, got {seed!r}")
    if not _is_int(world_seed):
        raise GenerationError(f"world_seed must be an integer, got {world_seed!r}")
    try:
        fractions = tuple(float(x) for x in split)
    except (TypeError, ValueError):
        raise GenerationError(
            f"split must be three fractions like 0.7,0.15,0.15, got {split!r}"
        ) from None
    if len(fractions) != 3 or any(not 0 < f < 1 for f in fractions):
        raise GenerationError(
            f"split must be three fractions in (0, 1) for train,val,test, got {split!r}"
        )
    if abs(sum(fractions) - 1.0) > 1e-6:
        raise GenerationError(
            f"split fractions must sum to 1, got {split!r} (sum {sum(fractions):.4g})"
        )
    counts = split_counts(int(rows), (fractions[0], fractions[1], fractions[2]))
    empty = [name for name, n in counts.items() if n < 1]
    if empty:
        raise GenerationError(
            f"--rows {rows} leaves split(s) {empty} with no rows; use more rows "
            f"(at least {int(np.ceil(1 / min(fractions)))} for split {split!r})"
        )
    return fractions[0], fractions[1], fractions[2]


def generate_split(
    world: WorldDef, params: Any, seed: int, split_index: int, n: int
) -> Iterator[tuple[pa.Table, FloatArray]]:
    """Yield ``(table, true_probability)`` chunk by chunk for one split."""
    for chunk_index, start in enumerate(range(0, n, CHUNK_ROWS)):
        size = min(CHUNK_ROWS, n - start)
        rng = np.random.default_rng(np.random.SeedSequence([seed, split_index, chunk_index]))
        rows = world.draw(params, rng, size)
        p = sigmoid(world.logit(params, rows))
        label = rng.random(size) < p
        yield to_table(world, rows, label), p


def generate_features(
    out_dir: str | os.PathLike[str] | None = None,
    rows: int = DEFAULT_ROWS,
    seed: int = DEFAULT_SEED,
    split: tuple[float, float, float] = DEFAULT_SPLIT,
    overwrite: bool = False,
    *,
    world_seed: int = DEFAULT_WORLD_SEED,
    world: str = DEFAULT_WORLD,
) -> dict[str, Any]:
    """Generate ``{train,val,test}/data.parquet`` and ``schema.json`` atomically.

    Args:
        out_dir: target directory (default ``ml.paths.FEATURES_DIR``; relative paths
            resolve against the base directory). It must not exist, be empty, or hold
            earlier generator output; anything else (a user's data) is refused.
        rows: total rows over the three splits.
        seed: row seed; the same seed gives byte-identical files.
        split: train/val/test fractions, each in (0, 1), summing to 1.
        overwrite: replace earlier generator output in ``out_dir``.
        world_seed: seed of the world's parameters (keep the default to compare runs).
        world: the world's name (:func:`ml.data.generate.world_names`).

    Returns:
        ``{"features_dir", "paths" (split -> file), "schema", "rows" (split -> count),
        "positives", "base_ctr", "oracle_auc" (val/test), "seed", "world", "world_seed",
        "seconds"}``.

    Raises:
        GenerationError: bad arguments, an unknown world, or a target that may not be
            written (its message names the directory and what is in it).
    """
    start = time.perf_counter()
    fractions = check_args(rows, seed, split, world_seed)
    wdef = get_world(world)
    target = layout.features_location(out_dir)
    counts = split_counts(int(rows), fractions)
    with staged(
        target,
        overwrite=overwrite,
        may_replace=(layout.GENERATOR,),
        error=GenerationError,
        command="ctr-pipeline data generate",
    ) as tmp:
        schema = _write_all(tmp, wdef, int(seed), int(world_seed), counts, fractions)
    return {
        "features_dir": str(target),
        "paths": {name: str(layout.split_file(target, name).location) for name in layout.SPLITS},
        "schema": str(layout.schema_file(target).location),
        "rows": counts,
        "positives": schema["positives"],
        "base_ctr": schema["base_ctr"],
        "oracle_auc": schema["oracle_auc"],
        "seed": int(seed),
        "world": wdef.name,
        "world_seed": int(world_seed),
        "seconds": round(time.perf_counter() - start, 3),
    }


def _write_all(
    tmp: Path,
    wdef: WorldDef,
    seed: int,
    world_seed: int,
    counts: dict[str, int],
    fractions: tuple[float, float, float],
) -> dict[str, Any]:
    params = build_world(wdef.name, world_seed)
    positives: dict[str, int] = {}
    oracle: dict[str, float] = {}
    for split_index, name in enumerate(layout.SPLITS):
        positives[name], auc = _write_split(
            wdef,
            params,
            seed,
            split_index,
            counts[name],
            layout.split_path(tmp, name),
            keep_scores=name != "train",
        )
        if auc is not None:
            oracle[name] = auc
    schema = {
        **wdef.spec.to_dict(),
        "splits": list(layout.SPLITS),
        "rows": counts,
        "positives": positives,
        "base_ctr": round(sum(positives.values()) / sum(counts.values()), 6),
        "oracle_auc": {k: round(v, 6) for k, v in oracle.items()},
        "generator": {
            "name": layout.GENERATOR_NAME,
            "version": GENERATOR_VERSION,
            "world": wdef.name,
            "world_version": wdef.version,
            "world_description": wdef.description,
            "seed": seed,
            "world_seed": world_seed,
            "split": list(fractions),
            "chunk_rows": CHUNK_ROWS,
            "target_ctr": wdef.target_ctr,
        },
        "seed": seed,
        "world_seed": world_seed,
    }
    layout.write_schema(tmp, schema)
    return schema


def _write_split(
    wdef: WorldDef,
    params: Any,
    seed: int,
    split_index: int,
    n: int,
    path: Path,
    *,
    keep_scores: bool,
) -> tuple[int, float | None]:
    path.parent.mkdir(parents=True)
    positives = 0
    scores: list[FloatArray] = []
    labels: list[npt.NDArray[Any]] = []
    writer: pq.ParquetWriter | None = None
    try:
        for table, p in generate_split(wdef, params, seed, split_index, n):
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema, compression="zstd")
            writer.write_table(table, row_group_size=table.num_rows)
            label = table.column(wdef.label).to_numpy()
            positives += int(label.sum())
            if keep_scores:
                scores.append(p)
                labels.append(label)
    finally:
        if writer is not None:
            writer.close()
    auc = roc_auc(np.concatenate(labels), np.concatenate(scores)) if keep_scores else None
    return positives, auc


def describe(report: Mapping[str, Any]) -> list[str]:
    """Human-readable summary lines of a :func:`generate_features` report."""
    lines = []
    for name in layout.SPLITS:
        n = report["rows"][name]
        pos = report["positives"][name]
        shown = display_path(report["paths"][name])
        lines.append(f"✅ {name}: {shown} ({n:,} rows, CTR {pos / max(n, 1):.2%})")
    oracle = report.get("oracle_auc", {})
    lines.append(
        f"   base CTR {report['base_ctr']:.2%}, oracle AUC "
        + ", ".join(f"{k} {v:.4f}" for k, v in oracle.items())
        + f", seed {report['seed']}, world {report.get('world', DEFAULT_WORLD)}"
        + f" (seed {report['world_seed']}) ({report['seconds']:.1f} s)"
    )
    return lines
