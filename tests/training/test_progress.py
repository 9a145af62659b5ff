"""ml.training.progress: the progress lines a long epoch writes to the task log."""

from __future__ import annotations

import pytest

from ml.errors import ConfigError
from ml.training.progress import INTERVAL_ENV, ProgressLog, fmt_duration, interval_from_env


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_progress_log_writes_one_line_per_interval_with_rate_and_eta() -> None:
    lines: list[str] = []
    clock = _Clock()
    alive = ProgressLog(
        lines.append, 30.0, epoch=2, epochs=5, samples=10_000, batches=100, clock=clock
    )
    clock.now += 10
    alive.tick(10, 1_000)
    assert lines == []  # before the interval: silent
    clock.now += 20  # 30 s in, 2,500 samples done: 83 samples/s
    alive.tick(25, 2_500)
    assert lines == [
        "Epoch 2/5: batch 25/100 (25%), 83 samples/s, epoch ETA 1m 30s "
        "(at most 3 more epochs, ~7m 30s)"
    ]
    clock.now += 5
    alive.tick(26, 2_600)
    assert len(lines) == 1  # the next line comes 30 s after the last one
    clock.now += 30
    alive.tick(40, 4_000)
    assert len(lines) == 2 and lines[1].startswith("Epoch 2/5: batch 40/100 (40%)")


def test_progress_log_last_epoch_and_disabled() -> None:
    lines: list[str] = []
    clock = _Clock()
    last = ProgressLog(lines.append, 1.0, epoch=5, epochs=5, samples=100, batches=4, clock=clock)
    clock.now += 2
    last.tick(2, 50)
    assert lines == ["Epoch 5/5: batch 2/4 (50%), 25 samples/s, epoch ETA 2 s"]
    off = ProgressLog(lines.append, 0.0, epoch=1, epochs=5, samples=100, batches=4, clock=clock)
    clock.now += 10_000
    off.tick(1, 25)
    assert len(lines) == 1


def test_fmt_duration_units() -> None:
    assert [fmt_duration(s) for s in (0.4, 42, 185, 7620)] == ["0 s", "42 s", "3m 05s", "2h 07m"]


def test_interval_from_env_default_value_and_bad_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(INTERVAL_ENV, raising=False)
    assert interval_from_env() == 30.0
    monkeypatch.setenv(INTERVAL_ENV, "0.5")
    assert interval_from_env() == 0.5
    monkeypatch.setenv(INTERVAL_ENV, "often")
    with pytest.raises(ConfigError, match=r"CTR_TRAIN_PROGRESS_S='often' is not a number"):
        interval_from_env()
