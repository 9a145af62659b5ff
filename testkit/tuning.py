"""Tuning test support: a small search space for tiny data (tests and benchmarks)."""

from __future__ import annotations

from testkit.airflow import small_config

#: A space every tiny run trains quickly: two model families, one dcnv2-only key, two
#: ranges (one log-scaled).
TINY_SPACE = """
tuning:
  metric: val_auc
  trials: 3
  space:
    model.name: [dcnv2, deepfm]
    model.cross_layers: [1, 2]
    model.dropout: {low: 0.0, high: 0.3}
    training.learning_rate: {low: 0.02, high: 0.05, log: true}
"""


def tuning_config(epochs: int = 2, space: str = TINY_SPACE) -> str:
    """:func:`testkit.airflow.small_config` with a ``tuning`` section."""
    return small_config(epochs=epochs) + space
