from __future__ import annotations

import pytest

from ml.data.generate import (
    DEFAULT_SPEC,
    DEFAULT_WORLD,
    WORLDS,
    build_world,
    get_world,
    world_names,
    world_spec,
)
from ml.errors import GenerationError


def test_world_names_default_first() -> None:
    names = world_names()
    assert names[0] == DEFAULT_WORLD == "default"
    assert set(names) == set(WORLDS)
    assert all(WORLDS[n].name == n for n in names)


def test_world_spec_of_default_is_default_spec() -> None:
    assert world_spec() == DEFAULT_SPEC
    assert world_spec("default") == DEFAULT_SPEC


def test_get_world_unknown_name_lists_choices() -> None:
    with pytest.raises(GenerationError, match=r"unknown world 'mars'; choose one of default"):
        get_world("mars")


def test_build_world_is_cached_and_seeded() -> None:
    a = build_world("default", 5)
    assert build_world("default", 5) is a
    b = build_world("default", 6)
    assert a.intercept != b.intercept
