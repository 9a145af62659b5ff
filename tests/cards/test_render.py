"""Markdown and HTML rendering: formatting and escaping."""

from __future__ import annotations

import numpy as np

from ml.cards.content import CardInputs, card_content
from ml.cards.render import fmt, html_page, markdown


def _content(config: str) -> dict[str, object]:
    inputs = CardInputs(
        name="m",
        metrics={"test_auc": 0.75, "model": "logreg", "n_params": 12},
        config_text=config,
        lineage={"dag_id": "d", "run_id": "r|1"},
        built_at="now",
    )
    return card_content(inputs, "v1")


def test_html_escapes_what_it_shows() -> None:
    page = html_page(_content("note: <script>alert(1)</script>\n"), {})
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_markdown_tables_escape_pipes_and_show_missing_values() -> None:
    md = markdown(_content("seed: 1\n"), [])
    assert "| DAG / run | d / r\\|1 |" in md
    assert "| checkpoint size | – |" in md
    assert "Not evaluated: the quality gates were not run for this registration." in md


def test_fmt() -> None:
    assert [fmt(None), fmt(True), fmt(1234567), fmt(0.123456), fmt(float("nan"))] == [
        "–",
        "yes",
        "1,234,567",
        "0.1235",
        "nan",
    ]
    assert fmt(np.float64(0.5)) == "0.5000"


def test_card_shows_the_model_choice_table() -> None:
    inputs = CardInputs(
        name="m",
        metrics={
            "test_auc": 0.75,
            "model": "fm",
            "auto": {
                "chosen": "fm",
                "metric": "val_auc",
                "reason": "best val_auc 0.7400",
                "budget_s": 42.0,
                "seconds": 30.0,
                "candidates": [
                    {"family": "logreg", "val_auc": 0.7, "val_logloss": 0.3, "epochs": 9},
                    {"family": "fm", "val_auc": 0.74, "val_logloss": 0.29, "epochs": 12},
                    {"family": "dcnv2", "skipped": "budget spent (43 s of 42 s)"},
                ],
            },
        },
        config_text="seed: 1\n",
        lineage={},
        built_at="now",
    )
    content = card_content(inputs, "v1")
    md = markdown(content, [])
    assert "## Model choice" in md and "model.name auto chose fm: best val_auc 0.7400" in md
    assert "| fm ✔ | 0.7400 | 0.2900 | 12 |" in md
    assert "| dcnv2 | – | – | – | – | skipped: budget spent (43 s of 42 s) |" in md
    assert "<h2>Model choice</h2>" in html_page(content, {})
    assert "Model choice" not in markdown(_content("seed: 1\n"), [])
