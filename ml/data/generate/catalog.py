"""The named worlds, and their parameters built (and cached) from a world seed."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from ml.config import FeatureSpec
from ml.data.generate import world_default, world_feed, world_marketplace, world_pairwise
from ml.data.generate.world import WorldDef, tune_intercept
from ml.errors import GenerationError

DEFAULT_WORLD = "default"
DEFAULT_WORLD_SEED = 20240101

WORLDS: dict[str, WorldDef] = {
    w.name: w
    for w in (
        world_default.WORLD,
        world_marketplace.WORLD,
        world_feed.WORLD,
        world_pairwise.WORLD,
    )
}


def world_names() -> tuple[str, ...]:
    """The names ``--world`` accepts, the default first."""
    return tuple(WORLDS)


def get_world(name: str) -> WorldDef:
    """The world called ``name``.

    Raises:
        GenerationError: no such world (the message lists the names).
    """
    try:
        return WORLDS[name]
    except (KeyError, TypeError):
        raise GenerationError(
            f"unknown world {name!r}; choose one of {', '.join(world_names())}"
        ) from None


def world_spec(name: str = DEFAULT_WORLD) -> FeatureSpec:
    """The feature spec of world ``name`` (the ``features:`` section a config needs)."""
    return get_world(name).spec


@functools.lru_cache(maxsize=4)
def build_world(name: str = DEFAULT_WORLD, world_seed: int = DEFAULT_WORLD_SEED) -> Any:
    """The parameters of world ``name`` for ``world_seed``, intercept tuned (cached)."""
    world = get_world(name)
    rng = np.random.default_rng(np.random.SeedSequence([world_seed, world.salt]))
    return tune_intercept(world, world.build(rng), world_seed)
