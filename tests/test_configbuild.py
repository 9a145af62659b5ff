"""ml.configbuild: strict dataclass building."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from ml.configbuild import build, to_plain
from ml.errors import ConfigError


@dataclass(frozen=True)
class Inner:
    size: int = 1
    ratio: float = 0.5


@dataclass(frozen=True)
class Outer:
    name: str = "x"
    sizes: tuple[int, ...] = ()
    limit: int | None = None
    inner: Inner = Inner()
    weights: dict[str, int] = field(default_factory=dict)


def test_build_converts_nested_values_and_lists() -> None:
    got = build(Outer, {"name": "y", "sizes": [1, 2], "inner": {"ratio": 1}}, "cfg")
    assert got == Outer("y", (1, 2), None, Inner(1, 1.0))
    assert to_plain({"a": (1, 2), "b": {"c": (3,)}}) == {"a": [1, 2], "b": {"c": [3]}}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"nme": "y"}, r"cfg: unknown key 'nme'; allowed keys: \['inner', 'limit'"),
        ({"sizes": [1, "2"]}, r"cfg.sizes\[1\] must be an integer, got '2'"),
        ({"inner": {"size": True}}, "cfg.inner.size must be an integer, got True"),
        ({"inner": 3}, "cfg.inner must be a mapping, got int"),
        ({"limit": 1.5}, "cfg.limit must be an integer"),
        ({"weights": [1]}, r"cfg.weights must be a mapping such as \{name: value\}"),
        ({"weights": {"a": "many"}}, "cfg.weights.a must be an integer, got 'many'"),
        ({"weights": {3: 10}}, "cfg.weights: key 3 must be a str"),
    ],
)
def test_build_names_the_bad_key_or_value(raw: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build(Outer, raw, "cfg")


def test_build_reads_a_mapping_of_names_to_values() -> None:
    got = build(Outer, {"weights": {"user": 100}}, "cfg")
    assert got.weights == {"user": 100}
    assert to_plain({"weights": got.weights}) == {"weights": {"user": 100}}
