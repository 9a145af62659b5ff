from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from ml.data.generate.catalog import (
    DEFAULT_WORLD,
    WORLDS,
    build_world,
    get_world,
    world_names,
    world_spec,
)
from ml.data.generate.truth import oracle_auc
from ml.data.generate.world_default import DEFAULT_SPEC
from ml.data.generate.writer import generate_features
from ml.data.layout import read_schema, spec_from_schema, split_path
from ml.data.validate import validate_features
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
    with pytest.raises(
        GenerationError, match=r"unknown world 'mars'; choose one of default, marketplace, feed"
    ):
        get_world("mars")


def test_build_world_is_cached_and_seeded() -> None:
    a = build_world("default", 5)
    assert build_world("default", 5) is a
    b = build_world("default", 6)
    assert a.intercept != b.intercept


@pytest.fixture(scope="module")
def small_worlds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Every world at 20k rows, generated once for this module."""
    root = tmp_path_factory.mktemp("worlds")
    return {
        name: generate_features(root / name, rows=20_000, seed=5, world=name) for name in WORLDS
    }


@pytest.mark.parametrize("name", list(WORLDS))
def test_every_world_writes_its_spec_and_oracle(
    small_worlds: dict[str, dict[str, Any]], name: str
) -> None:
    report = small_worlds[name]
    root = Path(report["features_dir"])
    schema = read_schema(root)
    assert schema is not None
    assert spec_from_schema(schema) == world_spec(name)
    assert schema["generator"]["world"] == name
    assert schema["generator"]["world_description"] == WORLDS[name].description
    for split in ("train", "val", "test"):
        names = pq.read_schema(split_path(root, split)).names
        assert names == list(world_spec(name).all_columns)
    assert 0.6 < schema["oracle_auc"]["test"] < 0.98
    assert oracle_auc(root, "test") == pytest.approx(schema["oracle_auc"]["test"], abs=1e-6)
    validate_features(root, world_spec(name))


@pytest.mark.parametrize("name", list(WORLDS))
def test_every_world_base_ctr_near_its_target(
    small_worlds: dict[str, dict[str, Any]], name: str
) -> None:
    target = WORLDS[name].target_ctr
    assert 0.03 <= target <= 0.30
    assert abs(small_worlds[name]["base_ctr"] - target) < 0.2 * target + 0.005


def test_worlds_span_ctr_and_have_their_own_columns() -> None:
    targets = sorted(w.target_ctr for w in WORLDS.values())
    assert len(WORLDS) >= 3 and targets[0] <= 0.04 and targets[-1] >= 0.2
    specs = {name: world_spec(name) for name in WORLDS}
    assert len({s.all_columns for s in specs.values()}) == len(WORLDS)


@pytest.mark.parametrize("name", list(WORLDS))
def test_every_world_is_deterministic(tmp_path: Path, name: str) -> None:
    a = generate_features(tmp_path / "a", rows=1000, seed=2, world=name)
    b = generate_features(tmp_path / "b", rows=1000, seed=2, world=name)
    c = generate_features(tmp_path / "c", rows=1000, seed=3, world=name)
    for split in ("train", "test"):
        da, db, dc = (Path(r["paths"][split]).read_bytes() for r in (a, b, c))
        assert da == db and da != dc
