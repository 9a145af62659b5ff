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
