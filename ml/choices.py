"""The closed sets of values the config accepts, and which ``model`` keys each family takes.

A leaf module (it imports nothing from ``ml``), so that ``ml.config``, the tuning space and
the trainer can all name the same sets without importing each other.
"""

from __future__ import annotations

MODEL_NAMES = ("logreg", "fm", "dcnv2", "deepfm", "finalmlp")
#: ``model.name: auto``: train candidate families and keep the best on validation
#: (ml.training.auto).
AUTO_MODEL = "auto"
#: ``model.name`` values: a family, or ``auto``.
MODEL_CHOICES = (AUTO_MODEL, *MODEL_NAMES)
NUMERIC_NAN_POLICIES = ("error", "impute")
PRECISIONS = ("auto", "fp32", "bf16")
DEVICES = ("auto", "cpu", "cuda")
#: Early-stopping monitors and whether higher is better.
MONITORS = {"val_auc": "max", "val_logloss": "min"}
#: ``training.monitor`` values: a metric, or ``auto`` (ml.training.sizing.auto_monitor).
MONITOR_CHOICES = ("auto", *MONITORS)
#: ``model`` keys each model family takes (besides ``name``); the others do not apply to
#: it. tests/test_config.py checks this against the models' constructors.
MODEL_KEYS: dict[str, frozenset[str]] = {
    "logreg": frozenset(),
    "dcnv2": frozenset({"embedding_dim", "hidden_units", "cross_layers", "dropout"}),
    "deepfm": frozenset({"embedding_dim", "hidden_units", "dropout"}),
    "fm": frozenset({"embedding_dim"}),
    "finalmlp": frozenset({"embedding_dim", "hidden_units", "dropout"}),
    # auto: every key (its candidates start from them) and its time budget.
    AUTO_MODEL: frozenset(
        {"embedding_dim", "hidden_units", "cross_layers", "dropout", "auto_budget"}
    ),
}
