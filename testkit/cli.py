"""Command-line arguments the CLI tests share."""

from __future__ import annotations

#: ``--set`` overrides for a tiny, fast model on the generator's columns.
TINY_MODEL_ARGS = [
    "--set", "model.embedding_dim=4",
    "--set", "model.hidden_units=[16]",
    "--set", "model.cross_layers=1",
    "--set", "training.batch_size=256",
    "--set", "training.epochs=2",
    "--set", "training.device=cpu",
    "--set", "training.num_threads=1",
    "--set", "training.learning_rate=0.01",
]  # fmt: skip
