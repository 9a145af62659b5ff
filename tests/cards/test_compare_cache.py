"""Comparisons kept on disk: a repeat is read back; changed inputs are computed anew."""

from __future__ import annotations

import os
from typing import Any

import pytest

from ml.cards import compare_cache
from ml.cards.compare_cache import cache_dir, cache_key, cached_compare_versions
from ml.errors import CardError
from ml.registry.model_registry import ModelRegistry


def test_a_repeat_is_read_from_the_cache(own_home: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    registry = ModelRegistry("models")
    kept = cache_dir(registry, "ctr_model")
    before = set(kept.glob("*.json"))  # other tests' comparisons in the shared home
    first = cached_compare_versions(registry, "ctr_model", ["v1", "v2"], n_boot=40)
    assert first["cached"] is False and first["rows"] == 450
    assert len(set(kept.glob("*.json")) - before) == 1

    def never(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("computed again")

    monkeypatch.setattr(compare_cache, "compare_versions", never)
    again = cached_compare_versions(registry, "ctr_model", ["v1", "v2"], n_boot=40)
    assert again["cached"] is True
    assert {k: v for k, v in again.items() if k != "cached"} == {
        k: v for k, v in first.items() if k != "cached"
    }
    with pytest.raises(AssertionError, match="computed again"):  # other options: new key
        cached_compare_versions(registry, "ctr_model", ["v1", "v2"], n_boot=41)
    with pytest.raises(AssertionError, match="computed again"):  # other order: new key
        cached_compare_versions(registry, "ctr_model", ["v2", "v1"], n_boot=40)


def test_the_key_follows_the_data_file_and_refuses_duplicates(own_home: Any) -> None:
    registry = ModelRegistry("models")
    features = own_home.home / "data" / "features" / "v1"
    options = {"split": "test", "n_boot": 10, "seed": 0}
    before = cache_key(registry, "ctr_model", ["v1", "v2"], features, **options)  # type: ignore[arg-type]
    assert before == cache_key(registry, "ctr_model", ["v1", "v2"], features, **options)  # type: ignore[arg-type]
    data = features / "test" / "data.parquet"
    st = data.stat()
    os.utime(data, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert cache_key(registry, "ctr_model", ["v1", "v2"], features, **options) != before  # type: ignore[arg-type]
    with pytest.raises(CardError, match=r"v2 given more than once"):
        cache_key(registry, "ctr_model", ["v1", "v2", "v2"], features, **options)  # type: ignore[arg-type]


def test_only_the_newest_results_are_kept(own_home: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    registry = ModelRegistry("models")
    monkeypatch.setattr(compare_cache, "KEEP", 2)
    for n in (5, 6, 7):
        cached_compare_versions(registry, "ctr_model", ["v1", "v2"], n_boot=n)
    assert len(list(cache_dir(registry, "ctr_model").glob("*.json"))) == 2
