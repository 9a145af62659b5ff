"""Synthetic CTR data with a known ground truth, in several named worlds.

- :mod:`~ml.data.generate.world`: what a world is, column storage, sampling helpers;
- :mod:`~ml.data.generate.world_default` and the other ``world_*`` modules: the worlds;
- :mod:`~ml.data.generate.catalog`: the worlds by name and their cached parameters;
- :mod:`~ml.data.generate.truth`: ``true_probability`` and ``oracle_auc``;
- :mod:`~ml.data.generate.writer`: ``generate_features`` (chunked, deterministic, atomic);
- :mod:`~ml.data.generate.ensure`: ``ensure_default_features``, the one "generate if
  missing" rule.

A world's parameters come from ``world_seed`` (fixed by default and recorded in
``schema.json``); the rows come from ``seed``.
"""

from __future__ import annotations

from ml.data.generate.catalog import (
    DEFAULT_WORLD,
    DEFAULT_WORLD_SEED,
    WORLDS,
    build_world,
    get_world,
    world_names,
    world_spec,
)
from ml.data.generate.ensure import EnsureResult, ensure_default_features
from ml.data.generate.truth import oracle_auc, true_probability
from ml.data.generate.world_default import DEFAULT_SPEC
from ml.data.generate.writer import (
    CHUNK_ROWS,
    DEFAULT_ROWS,
    DEFAULT_SEED,
    DEFAULT_SPLIT,
    GENERATOR_VERSION,
    describe,
    generate_features,
    generate_split,
    split_counts,
)
from ml.errors import GenerationError

__all__ = [
    "CHUNK_ROWS",
    "DEFAULT_ROWS",
    "DEFAULT_SEED",
    "DEFAULT_SPEC",
    "DEFAULT_SPLIT",
    "DEFAULT_WORLD",
    "DEFAULT_WORLD_SEED",
    "GENERATOR_VERSION",
    "WORLDS",
    "EnsureResult",
    "GenerationError",
    "build_world",
    "describe",
    "ensure_default_features",
    "generate_features",
    "generate_split",
    "get_world",
    "oracle_auc",
    "split_counts",
    "true_probability",
    "world_names",
    "world_spec",
]
