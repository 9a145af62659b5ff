"""The Models page's records, read through the registry's public API."""

from __future__ import annotations

from typing import Any

from ml.cards import catalog
from ml.registry.model_registry import ModelRegistry


def test_records_summary_and_history(shared_home: Any) -> None:
    registry = ModelRegistry("models")
    assert catalog.model_names(registry) == ["ctr_model"]
    assert catalog.model_summary(registry, "ctr_model")["production_versions"] == ["v1"]
    (v2,) = catalog.version_records(registry, "ctr_model", last=1)
    assert v2["version"] == "v2" and v2["card"] == "in version" and v2["model"] == "dcnv2"
    assert [e["event"] for e in catalog.history(registry, "ctr_model", last=1)] == ["register"]


def test_version_of_a_dag_run(shared_home: Any) -> None:
    registry = ModelRegistry("models")
    assert catalog.version_of_dag_run(registry, "training_pipeline", "manual__a") == (
        "ctr_model",
        "v1",
    )
    assert catalog.version_of_dag_run(registry, "training_pipeline", "unknown") is None
