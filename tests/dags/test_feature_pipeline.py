"""dags/feature_pipeline.py: generate >> save, and the Asset it announces."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.mark.slow
def test_feature_pipeline_updates_the_features_asset(parsed: dict[str, Any]) -> None:
    feature = parsed["dags"]["feature_engineering_pipeline"]
    assert feature["tasks"]["generate_features"]["downstream"] == ["save_features"]
    (uri,) = feature["tasks"]["save_features"]["outlets"]
    assert uri.startswith("file:///") and uri.endswith("/data/features/v1")
    assert feature["schedule"] is None
    assert all(t["has_failure_callback"] for t in feature["tasks"].values())
