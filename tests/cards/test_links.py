"""Links to a version's card in the Airflow UI."""

from __future__ import annotations

import pytest

from ml.cards.links import card_page, card_url


def test_no_base_url_no_link(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW__API__BASE_URL", raising=False)
    monkeypatch.delenv("CTR_AIRFLOW_BASE_URL", raising=False)
    assert card_url("ctr_model", "v3") is None


def test_link_opens_the_card_inside_the_ui(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CTR_AIRFLOW_BASE_URL", raising=False)
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://airflow.example.com/")
    assert card_url("ctr_model", "v3") == (
        "https://airflow.example.com/plugin/models/models-ui/view/ctr_model/v3"
    )
    assert card_page("a b", "v1") == "/models-ui/view/a%20b/v1"


def test_success_message_links_the_card_when_the_ui_is_configured(
    own_home: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ml.pipeline import steps
    from ml.pipeline.params import Params, PipelineRun

    run = PipelineRun("training_pipeline", "manual__b")
    params = Params.from_mapping({})
    monkeypatch.delenv("CTR_AIRFLOW_BASE_URL", raising=False)
    monkeypatch.delenv("AIRFLOW__API__BASE_URL", raising=False)
    assert "Model card" not in steps.finish(params, run, None, "v2", "models/staging/ctr_model/v2")
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "http://airflow:8080")
    text = steps.finish(params, run, None, "v2", "models/staging/ctr_model/v2")
    assert text.endswith(
        "\n   Model card: http://airflow:8080/plugin/models/models-ui/view/ctr_model/v2"
    )
