"""ml.choices: the config's closed sets agree with the code that uses them."""

from __future__ import annotations

import inspect

from ml.choices import AUTO_MODEL, MODEL_CHOICES, MODEL_KEYS, MODEL_NAMES, MONITORS


def test_model_keys_table_matches_the_models_constructors() -> None:
    from ml.models import MODELS

    assert set(MODELS) == set(MODEL_NAMES) == set(MODEL_KEYS) - {AUTO_MODEL}
    assert set(MODEL_CHOICES) == {AUTO_MODEL, *MODEL_NAMES}
    # auto's candidates start from every family's keys
    assert MODEL_KEYS[AUTO_MODEL] >= set().union(*(MODEL_KEYS[n] for n in MODEL_NAMES))
    for name, cls in MODELS.items():
        takes = set(inspect.signature(cls.__init__).parameters) - {
            "self",
            "vocab_sizes",
            "num_numeric",
        }
        assert takes == set(MODEL_KEYS[name]), name


def test_monitors_say_which_way_is_better() -> None:
    assert MONITORS == {"val_auc": "max", "val_logloss": "min"}
