from __future__ import annotations

from typing import Any

from ml.cards import pages

SUMMARY = {"name": "ctr_model", "current": "v2", "production_versions": ["v1", "v2"], "versions": 3}


def _record(version: str, *, current: bool = False, stages: tuple[str, ...] = ("staging",)) -> Any:
    return {
        "version": version,
        "stages": list(stages),
        "current": current,
        "test_auc": 0.71234,
        "test_logloss": 0.5,
        "test_accuracy": 0.7,
        "model": "dcnv2",
        "created_at": "2026-01-02T03:04:05.678Z",
        "dag_id": "training_pipeline",
        "run_id": "manual__1",
    }


RECORDS = [_record("v3"), _record("v2", current=True, stages=("staging", "production"))]
EVENTS = [
    {"at": "2026-01-02T03:04:05Z", "event": "promote", "from": None, "to": "v2", "by": "ann"},
    {"at": "2026-01-03T03:04:05Z", "event": "register", "stage": "staging", "version": "v3"},
]


def test_model_section_editor_sees_promote_rollback_and_history() -> None:
    html = pages.model_section("/models-ui", SUMMARY, RECORDS, EVENTS, can_edit=True)
    assert "data-testid='promote-v3'" in html and "data-testid='promote-v2'" not in html
    assert "data-testid='rollback'" in html and "confirm-rollback" in html
    assert "<td>– → v2</td>" in html and "<td>staging v3</td>" in html
    assert "href='/models-ui/view/ctr_model/v3'" in html
    assert "production: <b>v2</b> · 3 staging versions" in html


def test_model_section_history_shows_canary_changes_with_who_and_why() -> None:
    events = [
        {"at": "2026-01-04T00:00:00Z", "event": "canary", "version": "v3", "traffic": 0.1,
         "from": None, "by": "deploy_model", "reason": "deploy_model manual__1: canary started"},
        {"at": "2026-01-05T00:00:00Z", "event": "canary", "version": None, "traffic": 0.0,
         "from": "v3", "by": "deploy_model", "reason": "finished, not promoted"},
    ]  # fmt: skip
    html = pages.model_section("/r", SUMMARY, RECORDS, events, can_edit=False)
    assert "<td>v3 at 10%</td>" in html and "<td>off (was v3)</td>" in html
    assert "deploy_model manual__1: canary started" in html


def test_model_section_reader_gets_no_buttons() -> None:
    html = pages.model_section("/r", SUMMARY, RECORDS, [], can_edit=False)
    assert "ctrAsk(" not in html and "class=confirm" not in html
    assert "No history yet." in html


def test_pages_escape_names_and_messages() -> None:
    html = pages.message_page("/r", "Oops <b>", "bad <script>.", login="/login?a=1&b=2")
    assert "<script>" not in html.split("</head>")[1]
    assert "Oops &lt;b&gt;" in html and "bad &lt;script&gt;." in html
    assert "href='/login?a=1&amp;b=2'" in html


def test_models_page_without_models_says_so() -> None:
    html = pages.models_page("/r", [], "ann", can_edit=False)
    assert html.startswith("<!doctype html>") and "No registered models yet." in html
    assert "read only" in html and "<b>ann</b>" in html


def test_comparison_page_shows_metrics_and_the_interval() -> None:
    metrics = {"auc": 0.7, "logloss": 0.5, "accuracy": 0.6, "ece": 0.01, "mean_score": 0.3}
    interval = {"diff": 0.01, "low": -0.002, "high": 0.02, "n_boot": 100}
    result = {
        "features_dir": "data/features",
        "split": "test",
        "rows": 1234,
        "base_ctr": 0.25,
        "models": [{"label": "v1", **metrics}, {"label": "v2", **metrics, "auc": 0.71}],
        "differences": [{"a": "v1", "b": "v2", **dict.fromkeys(metrics, 0.0), "auc": 0.01,
                         "auc_interval": interval}],
    }  # fmt: skip
    html = pages.comparison_page("/r", "ctr_model", result, "/r/models/ctr_model/compare")
    assert "<td class=num>0.7100</td>" in html and "<td class=num>+0.0100</td>" in html
    assert "1,234 rows" in html and "click rate 25.00%" in html
    assert "-0.0020 to +0.0200 (100 resamples)" in html


def test_card_bar_links_back_to_the_model() -> None:
    bar = pages.card_bar("/r", "my model", "v1")
    assert "href='/r/view/my%20model'" in bar and "model card of v1" in bar
