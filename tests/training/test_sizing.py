"""ml.training.sizing: the batch size, weight decay and patience of ``null`` configs."""

from __future__ import annotations

import pytest

from ml.training.sizing import (
    MIN_STEPS_PER_EPOCH,
    WEIGHT_DECAY_PER_EPOCH,
    auto_batch_size,
    auto_patience,
    auto_weight_decay,
    batch_and_decay,
)


@pytest.mark.parametrize(
    ("train_rows", "expected"),
    [
        (100, 256),
        (7_000, 256),
        (8_192, 512),
        (16_384, 1024),
        (65_535, 2048),
        (65_536, 4096),
        (10_000_000, 4096),
    ],
)
def test_auto_batch_size_gives_small_data_enough_steps_per_epoch(
    train_rows: int, expected: int
) -> None:
    size = auto_batch_size(train_rows)
    assert size == expected
    assert size == 256 or train_rows // size >= MIN_STEPS_PER_EPOCH


def test_auto_weight_decay_keeps_the_decay_per_epoch_constant() -> None:
    assert auto_weight_decay(7_000, 256) == pytest.approx(WEIGHT_DECAY_PER_EPOCH / 28)
    small, large = auto_weight_decay(140_000, 4096), auto_weight_decay(1_400_000, 4096)
    assert large < small and small * 35 == pytest.approx(large * 342)
    assert auto_weight_decay(10, 4096) == WEIGHT_DECAY_PER_EPOCH  # one step an epoch


def test_batch_and_decay_keeps_explicit_values_and_fills_in_null_ones() -> None:
    assert batch_and_decay(64, 1e-4, 7_000) == (64, 1e-4)
    assert batch_and_decay(None, 0.0, 7_000) == (256, 0.0)
    assert batch_and_decay(512, None, 7_000) == (512, auto_weight_decay(7_000, 512))
    assert batch_and_decay(None, None, 7_000) == (256, auto_weight_decay(7_000, 256))


def test_auto_patience_waits_longer_on_a_small_noisy_validation_split() -> None:
    assert auto_patience(1_500) == 5  # a 10k-row data set's validation split
    assert auto_patience(9_999) == 5
    assert auto_patience(10_000) == 3
    assert auto_patience(300_000) == 3


def test_patience_reason_names_the_rule_for_each_size() -> None:
    from ml.training.sizing import patience_reason

    assert patience_reason(1_500).startswith("5: under 10,000 validation rows")
    assert patience_reason(30_000).startswith("3: 10,000+ validation rows")


def test_auto_monitor_watches_auc_only_on_a_steady_validation_split() -> None:
    from ml.training.sizing import auto_monitor

    assert auto_monitor(1_500) == "val_logloss"
    assert auto_monitor(9_999) == "val_logloss"
    assert auto_monitor(10_000) == "val_auc"
