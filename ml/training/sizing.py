"""The batch size, weight decay and early-stopping patience a run trains with when the
config leaves them ``null`` (the shipped default): the first two follow the train
split's size, the patience the validation split's.

``batch_and_decay`` and ``auto_patience`` are the resolvers (the training job uses both,
the benchmarks ``batch_and_decay``);
the rules and the measurements behind them are in each function's docstring and in
docs/training.md ("Why these defaults").
"""

from __future__ import annotations

#: ``training.batch_size: null`` picks the largest power of two in
#: [AUTO_BATCH_MIN, AUTO_BATCH_MAX] that gives an epoch at least MIN_STEPS_PER_EPOCH steps.
AUTO_BATCH_MAX = 4096
AUTO_BATCH_MIN = 256
MIN_STEPS_PER_EPOCH = 16
#: ``training.weight_decay: null`` is this divided by the optimisation steps per epoch.
WEIGHT_DECAY_PER_EPOCH = 0.016
#: ``training.patience: null`` waits PATIENCE epochs, SMALL_VAL_PATIENCE when the
#: validation split has fewer than SMALL_VAL_ROWS rows.
PATIENCE = 3
SMALL_VAL_PATIENCE = 5
SMALL_VAL_ROWS = 10_000


def steps_per_epoch(train_rows: int, batch_size: int) -> int:
    """Optimisation steps in one pass over ``train_rows`` (the last batch may be short)."""
    return max(-(-train_rows // batch_size), 1)


def auto_batch_size(train_rows: int) -> int:
    """The batch size ``training.batch_size: null`` trains with for ``train_rows`` rows.

    4096 (fast per sample) once the train split has 16 batches of it (65,536 rows);
    below that, halved until an epoch has at least 16 optimisation steps, down to 256.
    A batch of 4096 on 7,000 rows is under 2 steps an epoch: early stopping then
    judges the model every other step, and the run needs ~70 epochs at the shipped
    learning rate where a batch of 256 needs ~10, and ends below logistic regression
    where 256 ends above it (make bench-full's defaults table checks the choice on
    three worlds, 5 data sets each at 10k rows).
    """
    size = AUTO_BATCH_MAX
    while size > AUTO_BATCH_MIN and train_rows < size * MIN_STEPS_PER_EPOCH:
        size //= 2
    return size


def auto_weight_decay(train_rows: int, batch_size: int) -> float:
    """The weight decay ``training.weight_decay: null`` trains with: the same decay per
    epoch at every data size, ``WEIGHT_DECAY_PER_EPOCH / steps per epoch``.

    Adam's coupled L2 shrinks an embedding row on every step that does not see its id,
    by an amount that grows with the weight decay; a rare id seen about once an epoch
    is shrunk ``steps per epoch`` times between two sightings. Holding the product
    constant regularises the rare ids alike on 7,000 rows (28 steps of 256: 5.7e-4) and
    on 1.4M (342 steps of 4096: 4.7e-5). One fixed value cannot: 1e-4 leaves the model
    below logistic regression on the long-tailed marketplace world at 200k rows, 5e-4
    puts it below at 2M, 1e-3 costs 0.02 AUC at 200k (make bench-full's defaults table).
    """
    return WEIGHT_DECAY_PER_EPOCH / steps_per_epoch(train_rows, batch_size)


def batch_and_decay(
    batch_size: int | None, weight_decay: float | None, train_rows: int
) -> tuple[int, float]:
    """``training.batch_size`` and ``weight_decay`` as trained: ``None`` (null) becomes
    :func:`auto_batch_size` / :func:`auto_weight_decay` for ``train_rows``."""
    batch = batch_size if batch_size is not None else auto_batch_size(train_rows)
    decay = weight_decay if weight_decay is not None else auto_weight_decay(train_rows, batch)
    return batch, decay


def auto_patience(val_rows: int) -> int:
    """The early-stopping patience ``training.patience: null`` trains with: 3 epochs, 5
    when the validation split has fewer than 10,000 rows.

    A small validation split's log loss moves between epochs by more than the model
    improves in one: on 1,500 validation rows (a 10k-row data set) three epochs without
    a new best happen by chance while the model still improves, and the run stops early.
    Waiting five there gave +0.0026 test AUC on the default world (5 data sets), the
    same on the marketplace and feed worlds (their best epoch is not followed by a
    better one within five); eight gave nothing more. On large splits the log loss is
    steady, and two more epochs would only cost time (make bench-full's defaults table).
    """
    return SMALL_VAL_PATIENCE if val_rows < SMALL_VAL_ROWS else PATIENCE


def patience_reason(val_rows: int) -> str:
    """Why :func:`auto_patience` chose its value, for the training log."""
    if val_rows < SMALL_VAL_ROWS:
        return (
            f"{SMALL_VAL_PATIENCE}: under {SMALL_VAL_ROWS:,} validation rows the metric moves "
            "between epochs by more than the model improves in one"
        )
    return f"{PATIENCE}: {SMALL_VAL_ROWS:,}+ validation rows give a steady metric"


def auto_monitor(val_rows: int) -> str:
    """The early-stopping metric ``training.monitor: auto`` watches: ``val_auc`` from
    10,000 validation rows, ``val_logloss`` below.

    The kept checkpoint is calibrated afterwards (ml.training.calibration), so keeping
    the best ranking costs no log loss where the validation AUC is steady: at 100k rows
    (15,000 validation rows) ``val_auc`` gave +0.0004 to +0.0007 test AUC and the same or
    lower test log loss on the default, marketplace and feed worlds. On 1,500
    validation rows (a 10k-row data set, ~50 clicks on marketplace) the AUC is too noisy
    to choose an epoch by: -0.0157 test AUC on marketplace, -0.0040 on feed (3 data
    sets each, docs/training.md), so the log loss chooses there.
    """
    return "val_auc" if val_rows >= SMALL_VAL_ROWS else "val_logloss"
