"""The registry the model-card tests read (testkit.cards: two versions, v1 in production).

``shared_home``: the session's home, read-only by convention. ``own_home``: a fresh copy
for a test that promotes, registers or deletes.
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
