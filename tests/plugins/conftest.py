"""The plugin tests read the model-card tests' registry (testkit.cards: two versions, v1 in
production); ``own_home`` is a fresh copy for a test that promotes or rolls back.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from testkit.cards import CardHome
from testkit.cards import card_home as build_card_home


@pytest.fixture(scope="session")
def card_home(tmp_path_factory: pytest.TempPathFactory, tiny_features_dir: Path) -> CardHome:
    return build_card_home(tmp_path_factory.mktemp("cards"), tiny_features_dir)


@pytest.fixture
def shared_home(card_home: CardHome, monkeypatch: pytest.MonkeyPatch) -> CardHome:
    monkeypatch.setenv("CTR_PIPELINE_HOME", str(card_home.home))
    return card_home


@pytest.fixture
def own_home(card_home: CardHome, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CardHome:
    home = card_home.copy_to(tmp_path / "home")
    monkeypatch.setenv("CTR_PIPELINE_HOME", str(home.home))
    return home
