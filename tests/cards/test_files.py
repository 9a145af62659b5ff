from __future__ import annotations

from ml.cards import files
from ml.registry.layout import is_file_name


def test_card_files_are_plain_distinct_names_the_manifest_accepts() -> None:
    assert files.CARD_FILES[:2] == (files.CARD_MD, files.CARD_HTML)
    assert set(files.PLOT_FILES) <= set(files.CARD_FILES)
    assert len(set(files.CARD_FILES)) == len(files.CARD_FILES)
    assert all(is_file_name(name) for name in files.CARD_FILES)
    assert all(name.endswith(".png") for name in files.PLOT_FILES)


def test_card_cache_is_a_hidden_directory_beside_the_stages() -> None:
    assert files.CACHE_DIR.startswith(".") and "/" not in files.CACHE_DIR
    assert not is_file_name(files.CACHE_DIR)  # never listed in a manifest
