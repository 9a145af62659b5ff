"""What a card says, and the limitations it derives from the measurements."""

from __future__ import annotations

from typing import Any

import numpy as np

from ml.cards.content import ECE_LIMIT, CardInputs, card_content
from ml.cards.predictions import Predictions

CONFIG = "model: {name: dcnv2, embedding_dim: 4}\ndata: {max_oov_share: 0.3}\n"


def _inputs(**kw: Any) -> CardInputs:
    rng = np.random.default_rng(3)
    truth = rng.beta(2, 8, 60_000)  # the true click probability of each row
    y = (rng.random(truth.size) < truth).astype(np.int8)
    metrics = {
        "model": "dcnv2",
        "n_params": 1234,
        "test_auc": 0.8,
        "best_epoch": 2,
        "epochs_run": 5,
        "stopped_early": True,
        "rows": {"train": 100, "val": 20, "test": 60_000},
        "base_ctr": {"test": 0.2},
        "vocabulary": {
            "user_id": {"vocab_size": 10, "oov_train": 0.1, "oov_val": 0.45},
            "site": {"vocab_size": 5, "oov_train": 0.0, "oov_val": 0.0},
        },
    }
    defaults: dict[str, Any] = {
        "name": "m",
        "metrics": metrics,
        "config_text": CONFIG,
        "lineage": {"dag_id": "training_pipeline", "run_id": "r1"},
        "built_at": "2026-01-01T00:00:00Z",
        "predictions": Predictions(y, truth),  # calibrated by construction
    }
    return CardInputs(**{**defaults, **kw})


def test_oov_field_above_the_configs_limit_is_a_limitation() -> None:
    c = card_content(_inputs(), "v1")
    flagged = [f["field"] for f in c["vocabulary"]["fields"] if f["above_limit"]]
    assert flagged == ["user_id"] and c["vocabulary"]["max_oov_share"] == 0.3
    assert any(x.startswith("user_id: 45% of validation rows") for x in c["limitations"])
    assert not any(x.startswith("site:") for x in c["limitations"])


def test_calibration_error_above_the_limit_is_a_limitation() -> None:
    good = card_content(_inputs(), "v1")
    assert good["metrics"]["test_ece"] <= ECE_LIMIT
    assert not any(x.startswith("Calibration") for x in good["limitations"])
    p = _inputs().predictions
    assert p is not None
    shifted = Predictions(p.labels, np.clip(p.scores + 0.1, 0, 1))
    bad = card_content(_inputs(predictions=shifted), "v1")
    assert bad["metrics"]["test_ece"] > ECE_LIMIT
    assert any(x.startswith("Calibration: expected calibration error") for x in bad["limitations"])


def test_thin_baseline_margin_and_a_better_production_are_limitations() -> None:
    p = _inputs().predictions
    assert p is not None
    noisy = np.clip(p.scores + np.random.default_rng(4).normal(0, 0.1, p.rows), 0.001, 0.999)
    gates = [
        {"name": "baseline", "passed": True, "message": "ok", "value": 0.801, "threshold": 0.8}
    ]
    c = card_content(
        _inputs(
            predictions=Predictions(p.labels, noisy, p.scores, "v7"),
            evaluation={"gates": gates},
        ),
        "v8",
    )
    assert c["production"]["version"] == "v7"
    assert c["production"]["auc_difference"]["high"] < 0
    assert any(x.startswith("Baseline gate: test AUC is only +0.0010") for x in c["limitations"])
    assert any(x.startswith("Production v7 scores a higher AUC") for x in c["limitations"])


def test_missing_predictions_and_a_still_improving_model() -> None:
    metrics = {**_inputs().metrics, "best_epoch": 5, "epochs_run": 5, "stopped_early": False}
    c = card_content(
        _inputs(predictions=None, predictions_note="the split is gone", metrics=metrics), "v1"
    )
    assert c["production"] == {"note": "the split is gone"}
    assert "test_ece" not in c["metrics"]
    assert "No plots or production comparison: the split is gone." in c["limitations"]
    assert any(x.startswith("Validation val_auc was still improving") for x in c["limitations"])


def test_card_shows_the_calibration_and_the_raw_log_loss() -> None:
    base = _inputs()
    metrics = {
        **base.metrics,
        "calibration": {"method": "platt", "test_logloss_raw": 0.51, "cv_logloss": {}},
    }
    content = card_content(_inputs(metrics=metrics), "v1")
    assert content["metrics"]["test_logloss_raw"] == 0.51
    assert content["training"]["calibration"] == "platt"
    assert "calibration" not in card_content(base, "v1")["training"]  # an older run


def test_a_hashed_fields_missing_values_are_not_an_oov_limitation() -> None:
    base = _inputs()
    vocab = {"user_id": {"vocab_size": 1000, "oov_train": 0.4, "oov_val": 0.45, "hashed": True}}
    c = card_content(_inputs(metrics={**base.metrics, "vocabulary": vocab}), "v1")
    (field,) = c["vocabulary"]["fields"]
    assert field["hashed"] and not field["above_limit"]
    assert not any(x.startswith("user_id:") for x in c["limitations"])
