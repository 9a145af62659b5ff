from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ml.errors import IntegrityError
from ml.registry import index
from ml.registry.layout import Layout
from ml.registry.model_registry import ModelRegistry

MakeRun = Callable[..., Path]


@pytest.fixture
def layout(home: Path) -> Layout:
    layout = Layout("models")
    layout.meta_dir("m").mkdir(parents=True)
    return layout


def test_published_is_none_without_a_file(layout: Layout) -> None:
    assert index.published(layout, "staging", "m") is None


def test_published_numbers_are_kept_as_ranges(layout: Layout) -> None:
    index.write_published(layout, "production", "m", [3, 1, 2, 7, 5, 6])
    assert layout.published_file("production", "m").read_text() == "1-3;\n5-7;\n"
    assert index.published(layout, "production", "m") == [(1, 3), (5, 7)]
    index.change_published(layout, "production", "m", add=4, remove=6)
    assert index.published(layout, "production", "m") == [(1, 5), (7, 7)]


def test_in_ranges_checks_each_number(layout: Layout) -> None:
    assert index.in_ranges([1, 2, 3], [(1, 9)]) == [True, True, True]
    assert index.in_ranges([1, 4, 8, 12], [(1, 2), (4, 8)]) == [True, True, True, False]
    assert index.in_ranges([5], []) == [False]


def test_published_ignores_what_is_not_a_range(layout: Layout) -> None:
    layout.published_file("staging", "m").write_bytes(b"1-3;\ngarbage\n12")  # "12" unended
    assert index.published(layout, "staging", "m") == [(1, 3)]


def test_entry_summarises_metadata() -> None:
    meta = {
        "created_at": "2026-11-29T18:21:26.123Z",
        "metrics": {"test_auc": 0.7, "test_logloss": 0.5, "val_auc": 0.71},
        "source": {"run_dir": "/r", "model_sha256": "f" * 64, "dag_id": "d", "run_id": "x"},
        "data_fingerprint": {"digest": "d" * 64},
        "config_digest": "c" * 64,
        "code_version": {"source_digest": "e" * 64},
    }
    line = index.entry(meta, "v3")
    assert next(iter(line)) == "version"
    assert line["test_auc"] == 0.7 and "val_auc" not in line
    assert (line["data_digest"], line["config_digest"], line["code_digest"]) == (
        "d" * 64,
        "c" * 64,
        "e" * 64,
    )
    assert len(line["source_key"]) == 64
    assert index.entry({}, "v1")["source_key"] is None


def test_entries_and_search_read_only_what_is_asked(layout: Layout) -> None:
    for n in (1, 2, 3):
        index.append(layout, "m", {"version": f"v{n}", "data_digest": "x" if n == 2 else "y"})
    with layout.meta_file("m", "index.jsonl").open("a") as f:
        f.write('{"version":"v4","torn')
    assert set(index.entries(layout, "m")) == {1, 2, 3}
    assert set(index.entries(layout, "m", {2, 3})) == {2, 3}
    numbers, found = index.search(layout, "m", '"data_digest":"x"')
    assert numbers == {1, 2, 3, 4} and set(found) == {2}
    assert index.indexed_numbers(layout, "m") == {1, 2, 3, 4}


def test_last_version_is_zero_without_a_file(layout: Layout) -> None:
    assert index.last_version(layout, "m") == 0


@pytest.mark.parametrize("content", [b"garbage\n", b"007\n", b"9" * 25, b""])
def test_a_damaged_last_version_is_an_integrity_error(layout: Layout, content: bytes) -> None:
    layout.meta_file("m", "last_version").write_bytes(content)
    with pytest.raises(IntegrityError, match=r"last_version is damaged"):
        index.last_version(layout, "m")


def test_raise_last_version_only_goes_up(layout: Layout) -> None:
    index.raise_last_version(layout, "m", 5)
    index.raise_last_version(layout, "m", 3, durable=True)
    assert index.last_version(layout, "m") == 5


def test_register_refuses_a_damaged_last_version(
    registry: ModelRegistry, make_run: MakeRun, home: Path
) -> None:
    registry.register(make_run())
    (home / "models" / ".registry" / "ctr_model" / "last_version").write_text("9" * 30)
    with pytest.raises(IntegrityError, match="last_version is damaged"):
        registry.register(make_run())
    assert registry.list_models("staging") == {"ctr_model": ["v1"]}
