"""Keys, the index and compare-and-swap of the object-store registry (real S3 server)."""

from __future__ import annotations

import threading

import pytest

from ml import storage
from ml.errors import IntegrityError, InvalidNameError
from ml.registry.objectstore import (
    Keys,
    cas_update,
    dumps,
    empty_index,
    list_models,
    pad,
    read_current,
    read_index,
)


def test_keys_use_the_layout_names_and_sort_numerically(s3_env: str) -> None:
    keys = Keys(storage.open_store(s3_env))
    assert keys.version("staging", "m", "v3", "MANIFEST.json") == "staging/m/v3/MANIFEST.json"
    assert keys.current("m") == "production/m/current"
    assert keys.claim("m", 10) > keys.claim("m", 9) and pad(7) == "0" * 18 + "7"
    assert keys.url("production", "m", "v1").endswith("/production/m/v1")
    with pytest.raises(InvalidNameError):
        keys.version("staging", "../x", "v1")
    with pytest.raises(InvalidNameError):
        keys.version("staging", "m", "v01")


def test_cas_update_loses_no_change_under_contention(s3_env: str) -> None:
    store = storage.open_store(s3_env)

    def bump(value: object) -> dict[str, int]:
        n = value["n"] if isinstance(value, dict) else 0
        return {"n": int(n) + 1}

    def worker() -> None:
        for _ in range(5):
            cas_update(store, "counter.json", bump)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.get("counter.json") == dumps({"n": 20})


def test_cas_update_leaves_the_object_when_change_returns_none(s3_env: str) -> None:
    store = storage.open_store(s3_env)
    store.put("x.json", dumps({"a": 1}))
    assert cas_update(store, "x.json", lambda v: None) == {"a": 1}
    assert cas_update(store, "new.json", lambda v: {"b": 2}) == {"b": 2}


def test_list_models_reads_staging_from_the_index_production_from_the_pointer(
    s3_env: str,
) -> None:
    store = storage.open_store(s3_env)
    keys = Keys(store)
    assert read_index(store, keys, "m") == empty_index()
    store.put(keys.meta("a", "index.json"), dumps({**empty_index(), "staging": [2, 1]}))
    store.put(keys.meta("b", "index.json"), dumps(empty_index()))
    store.put(keys.current("b"), dumps({"version": "v1", "seq": 1, "production": [1]}))
    assert list_models(store, keys, "staging") == {"a": ["v1", "v2"]}
    assert list_models(store, keys, "production") == {"b": ["v1"]}


def test_a_damaged_pointer_is_an_integrity_error(s3_env: str) -> None:
    store = storage.open_store(s3_env)
    keys = Keys(store)
    assert read_current(store, keys, "m") is None
    store.put(keys.current("m"), b"not json")
    with pytest.raises(IntegrityError, match="production/m/current is not valid JSON"):
        read_current(store, keys, "m")
    store.put(keys.current("m"), dumps({"version": "latest"}))
    with pytest.raises(IntegrityError, match="does not hold a version pointer"):
        read_current(store, keys, "m")
