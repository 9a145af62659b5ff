from __future__ import annotations

import pytest

from ml.serving.service.metrics import MULTIPROC_ENV, ServingMetrics


@pytest.fixture
def metrics(monkeypatch: pytest.MonkeyPatch) -> ServingMetrics:
    monkeypatch.delenv(MULTIPROC_ENV, raising=False)
    return ServingMetrics()


def _lines(m: ServingMetrics) -> list[str]:
    return [line for line in m.render().decode().splitlines() if not line.startswith("#")]


def test_observe_counts_requests_rows_and_the_mean_score(metrics: ServingMetrics) -> None:
    metrics.observe("control", "v1", rows=3, score_sum=1.5, s=0.01)
    metrics.observe("control", "v1", rows=1, score_sum=0.5, s=0.02)
    lines = _lines(metrics)
    assert 'ctr_serving_requests_total{variant="control",version="v1"} 2.0' in lines
    assert 'ctr_serving_rows_total{variant="control",version="v1"} 4.0' in lines
    assert 'ctr_serving_mean_score{variant="control",version="v1"} 0.5' in lines
    assert 'ctr_serving_predict_seconds_count{variant="control"} 2.0' in lines


def test_set_serving_moves_the_version_gauge(metrics: ServingMetrics) -> None:
    metrics.set_serving("control", "v1")
    metrics.set_serving("control", "v2", previous="v1")
    lines = _lines(metrics)
    assert 'ctr_serving_model_version{variant="control",version="v1"} 0.0' in lines
    assert 'ctr_serving_model_version{variant="control",version="v2"} 1.0' in lines


def test_counters_by_reason_outcome_and_shadow(metrics: ServingMetrics) -> None:
    metrics.rejected.labels("predict", "invalid").inc()
    metrics.reloads.labels("ok").inc()
    metrics.feedback.labels("true").inc(2)
    metrics.shadow_rows.labels("v3").inc(5)
    lines = _lines(metrics)
    assert 'ctr_serving_rejected_requests_total{endpoint="predict",reason="invalid"} 1.0' in lines
    assert 'ctr_serving_reloads_total{outcome="ok"} 1.0' in lines
    assert 'ctr_serving_feedback_total{clicked="true"} 2.0' in lines
    assert 'ctr_serving_shadow_rows_total{version="v3"} 5.0' in lines
    assert not any(line.startswith("ctr_serving_mean_score") for line in lines)  # no rows yet
