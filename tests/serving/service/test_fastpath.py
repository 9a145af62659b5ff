"""ml.serving.service.fastpath: the DataFrame-free path scores exactly as predict_proba."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from ml.data.generate.world_default import DEFAULT_SPEC
from ml.data.loading import load_split
from ml.registry.model_registry import ModelRegistry
from ml.serving.service.fastpath import FastScorer
from ml.serving.service.validation import parse_predict
from testkit.serving import NAME


def _rows(df: pd.DataFrame) -> list[dict[str, Any]]:
    records = df.astype(object).where(df.notna(), None).to_dict("records")
    return [{k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()} for r in records]


@pytest.mark.parametrize("version", ["v1", "v2", "v3"])
def test_fast_path_equals_predict_proba_with_odd_values(
    registry_template: Path, tiny_features_dir: Path, version: str
) -> None:
    predictor = ModelRegistry(registry_template).load(NAME, version, "staging")
    df = load_split(tiny_features_dir, "test", DEFAULT_SPEC, with_label=False).head(64)
    rows = _rows(df)
    rows[0]["user_id"] = None
    rows[1]["item_category"] = "never-seen"
    rows[2]["item_price"] = None
    rows[3]["ad_quality"] = float("inf")
    rows[4]["device_type"] = 3  # an integer in a string field: str(3), unseen
    rows[5]["user_id"] = -5
    rows[6]["item_id"] = 2**62
    parsed = parse_predict(
        json.dumps({"rows": rows}).encode(), predictor.features, max_batch=64, key_field="user_id"
    )
    fast = FastScorer(predictor).predict_proba(parsed)
    slow = predictor.predict_proba(pd.DataFrame(rows))
    np.testing.assert_array_equal(fast, slow)


def test_fast_path_falls_back_for_strings_in_integer_fields(registry_template: Path) -> None:
    predictor = ModelRegistry(registry_template).load(NAME, "v1", "staging")
    row = {c: None for c in DEFAULT_SPEC.feature_columns}
    row["user_id"] = "17"  # the predictor reads it as user 17
    row2 = {**row, "user_id": 17}
    body = json.dumps({"rows": [row, row2]}).encode()
    parsed = parse_predict(body, predictor.features, max_batch=8, key_field="user_id")
    probs = FastScorer(predictor).predict_proba(parsed)
    assert probs[0] == probs[1]
    np.testing.assert_array_equal(probs, predictor.predict_proba(pd.DataFrame([row, row2])))


def test_fast_path_applies_the_calibration_as_predict_proba(
    registry_template: Path, tiny_features_dir: Path
) -> None:
    predictor = ModelRegistry(registry_template).load(NAME, "v3", "staging")
    df = load_split(tiny_features_dir, "test", DEFAULT_SPEC, with_label=False).head(32)
    parsed = parse_predict(
        json.dumps({"rows": _rows(df)}).encode(),
        predictor.features,
        max_batch=64,
        key_field="user_id",
    )
    before = FastScorer(predictor).predict_proba(parsed)
    predictor.calibration = {"method": "temperature", "t": 3.0}
    fast = FastScorer(predictor).predict_proba(parsed)
    np.testing.assert_array_equal(fast, predictor.predict_proba(df))
    assert not np.allclose(fast, before)  # the map changed the scores
