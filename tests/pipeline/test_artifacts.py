from __future__ import annotations

from pathlib import Path

import pytest

from ml.cards.files import CARD_HTML
from ml.pipeline import artifacts


class _Card:
    def files(self, version: str) -> dict[str, bytes]:
        return {CARD_HTML: f"card of {version}".encode()}


def test_extra_files_is_the_profile_without_a_card() -> None:
    profile = {"data_profile.json": b"{}"}
    assert artifacts.extra_files(profile, None) is profile


def test_extra_files_with_a_card_names_the_version() -> None:
    files = artifacts.extra_files({"data_profile.json": b"{}"}, _Card())
    assert files("v7") == {"data_profile.json": b"{}", CARD_HTML: b"card of v7"}


def test_card_path_only_when_the_version_has_a_card(project_home: Path) -> None:
    vdir = project_home / "models" / "staging" / "ctr_model" / "v1"
    vdir.mkdir(parents=True)
    assert artifacts.card_path(vdir) is None
    (vdir / CARD_HTML).write_text("<html>")
    assert artifacts.card_path(vdir) == f"models/staging/ctr_model/v1/{CARD_HTML}"


def test_card_link_needs_a_base_url_and_a_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CTR_AIRFLOW_BASE_URL", raising=False)
    monkeypatch.delenv("AIRFLOW__API__BASE_URL", raising=False)
    assert artifacts.card_link("ctr_model", "v2") == ""
    monkeypatch.setenv("CTR_AIRFLOW_BASE_URL", "http://ui:8080/")
    assert artifacts.card_link("ctr_model", None) == ""
    assert artifacts.card_link("ctr_model", "v2") == (
        "\n   Model card: http://ui:8080/plugin/models/models-ui/view/ctr_model/v2"
    )


def test_prepare_card_of_a_broken_run_is_none(tmp_path: Path) -> None:
    assert artifacts.prepare_card("ctr_model", tmp_path / "not_a_run", None, {}) is None
