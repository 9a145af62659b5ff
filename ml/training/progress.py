"""Progress lines from inside the epoch loop, so a long epoch shows that it is alive.

A default training run on a busy 2-core machine can spend many minutes in one epoch;
between the per-epoch lines the task log said nothing. :class:`ProgressLog` writes one
line every ``interval`` seconds (``CTR_TRAIN_PROGRESS_S``, default 30; 0 turns it off)::

    Epoch 1/100: batch 412/1172 (35%), 24,310 samples/s, epoch ETA 31 s
    (at most 99 more epochs, ~1h 38m)            <- the same line

Only the clock is read per batch: no device synchronisation, nothing printed in between.
On a terminal :class:`ProgressBar` draws a bar on stderr instead.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable

from ml.errors import ConfigError

#: Environment variable: seconds between progress lines (0: none).
INTERVAL_ENV = "CTR_TRAIN_PROGRESS_S"
DEFAULT_INTERVAL_S = 30.0


def interval_from_env() -> float:
    """``$CTR_TRAIN_PROGRESS_S`` as seconds (default 30; 0 or less: no progress lines)."""
    raw = os.environ.get(INTERVAL_ENV, "").strip()
    if not raw:
        return DEFAULT_INTERVAL_S
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(
            f"{INTERVAL_ENV}={raw!r} is not a number of seconds; set it to e.g. 30, or 0 "
            "to turn the training progress lines off"
        ) from None


def fmt_duration(seconds: float) -> str:
    """``42 s``, ``3m 05s``, ``2h 07m``."""
    s = round(max(seconds, 0.0))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s // 3600}h {s % 3600 // 60:02d}m"


class ProgressLog:
    """Call :meth:`tick` after each batch; it logs a line when ``interval`` has passed."""

    def __init__(
        self,
        log: Callable[[str], None],
        interval: float,
        *,
        epoch: int,
        epochs: int,
        samples: int,
        batches: int,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.log, self.interval, self.clock = log, interval, clock
        self.epoch, self.epochs, self.samples, self.batches = epoch, epochs, samples, batches
        self.start = clock()
        self.next_at = self.start + interval if interval > 0 else float("inf")

    def tick(self, batch: int, done: int) -> None:
        """``batch`` batches (``done`` samples) of this epoch are finished."""
        now = self.clock()
        if now < self.next_at:
            return
        self.next_at = now + self.interval
        elapsed = max(now - self.start, 1e-9)
        rate = done / elapsed
        epoch_left = (self.samples - done) / max(rate, 1e-9)
        more = self.epochs - self.epoch
        rest = ""
        if more > 0:
            total = epoch_left + more * self.samples / max(rate, 1e-9)
            rest = f" (at most {more} more epoch{'s' if more > 1 else ''}, ~{fmt_duration(total)})"
        self.log(
            f"Epoch {self.epoch}/{self.epochs}: batch {batch}/{self.batches} "
            f"({done / max(self.samples, 1):.0%}), {rate:,.0f} samples/s, "
            f"epoch ETA {fmt_duration(epoch_left)}{rest}"
        )


class ProgressBar:
    """A one-line progress bar on stderr, redrawn at most every 0.2 s."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._last = 0.0

    def update(self, label: str, done: int, total: int, start: float) -> None:
        now = time.perf_counter()
        if not self.enabled or (now - self._last < 0.2 and done < total):
            return
        self._last = now
        frac = done / max(total, 1)
        rate = done / max(now - start, 1e-9)
        sys.stderr.write(
            f"\r{label} [{'#' * int(frac * 30):<30}] {frac:6.1%} {rate:,.0f} samples/s "
        )
        sys.stderr.flush()

    def clear(self) -> None:
        if self.enabled:
            sys.stderr.write("\r" + " " * 79 + "\r")
            sys.stderr.flush()
