"""The training loop: :class:`Trainer` fits a model on encoded splits (FuxiCTR's shape).

:meth:`Trainer.fit` runs epochs until ``epochs`` or early stopping; each epoch is
:meth:`Trainer.train_epoch` (one indexed read per batch, in a seeded random order),
:meth:`Trainer.evaluate` on validation, and :meth:`Trainer.checkpoint_and_early_stop`,
which keeps ``model_best.pt`` at the best epoch by the monitored metric
(:class:`EarlyStopping`: ``val_auc`` higher is better, ``val_logloss`` lower is better,
an improvement must exceed ``min_delta``) and writes the resume state
``checkpoint_last.pt`` (weights, optimizer, RNG states, early-stopping state, history),
so a killed run resumed from it ends with the same metrics as an uninterrupted one.

Under torchrun (``rank`` given, :mod:`ml.training.distributed`) the training step runs
through a ``DistributedDataParallel`` wrapper on this rank's rows (in memory or its view
of the streamed split) in batches of ``batch_size // world``, each epoch's mean loss is
averaged over the ranks, rank 0 alone evaluates (and hands the metrics to the others,
so every rank takes the same early-stopping decision) and writes the checkpoints, which
hold the plain module's weights, mid-epoch ones included (by rank 0's clock: no
collective; the position records the process count, and a run resumed with another
count starts that epoch over, since its streamed order differs).

The job around the loop (data, preprocessing, run directory, metrics) is
:func:`ml.training.job.train`.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ml.choices import MONITORS
from ml.errors import TrainingError
from ml.metrics import binary_metrics
from ml.training import checkpoint as ck
from ml.training import rng
from ml.training.calibration import apply_calibration
from ml.training.distributed import Rank
from ml.training.progress import ProgressBar, ProgressLog, interval_from_env
from ml.training.run_dir import CHECKPOINT_LAST, MODEL_BEST
from ml.training.stream_split import ShardedSplit
from ml.training.tensors import EncodedSplit

#: Rows per forward pass when scoring a split. Small enough that a layer's activations
#: stay in the CPU cache: DCN-V2 e16 [256,128] scores 300k rows 2.2x faster in batches of
#: 4096 than of 65,536 on two cores (280k vs 128k rows/s; 1.8x on one), the same scores.
EVAL_BATCH_SIZE = 4096

LogFn = Callable[[str], None]
EpochCallback = Callable[[int, dict[str, Any]], None]
#: A split held on the device, or streamed from the shard cache.
Split = EncodedSplit | ShardedSplit
#: Seconds between mid-epoch resume checkpoints of a streamed epoch
#: (``$CTR_TRAIN_CHECKPOINT_S`` overrides; 0: after every batch).
CHECKPOINT_EVERY_S = 600.0


@dataclass
class EarlyStopping:
    """Stop after ``patience`` epochs without an improvement of ``monitor`` > ``min_delta``."""

    monitor: str = "val_auc"
    patience: int = 3
    min_delta: float = 0.0
    best: float | None = None
    best_epoch: int = 0
    bad_epochs: int = 0
    stopped: bool = False
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def mode(self) -> str:
        """``max`` when higher is better, ``min`` otherwise."""
        return MONITORS[self.monitor]

    def improved(self, value: float) -> bool:
        """Whether ``value`` beats the best so far by more than ``min_delta``."""
        if not np.isfinite(value):
            return False
        if self.best is None:
            return True
        if self.mode == "max":
            return value > self.best + self.min_delta
        return value < self.best - self.min_delta

    def update(self, epoch: int, record: dict[str, Any]) -> bool:
        """Record one epoch; returns True when it is the new best."""
        self.history.append(record)
        value = float(record[self.monitor])
        if self.improved(value):
            self.best, self.best_epoch, self.bad_epochs = value, epoch, 0
            return True
        self.bad_epochs += 1
        self.stopped = self.bad_epochs >= self.patience
        return False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EarlyStopping:
        return cls(**{**d, "history": list(d["history"])})


class Trainer:
    """Fit a model on encoded splits with early stopping and per-epoch checkpoints.

    Args:
        model: the module (already on ``device``).
        run_dir: where ``model_best.pt`` and ``checkpoint_last.pt`` go.
        checkpoint_meta: plain fields stored in every ``model_best.pt`` (model_name,
            model_args, preprocessor, features, config).
        learning_rate, weight_decay, batch_size, epochs: from the config.
        early_stopping: the monitor, its patience and min_delta.
        seed: seeds the per-epoch permutation generator.
        device: the device holding the model and the data.
        log: receives one line per epoch.
        progress: draw a progress bar on stderr (default: when stderr is a TTY).
        on_epoch_end: called as ``on_epoch_end(epoch, record)`` after the epoch's
            checkpoint is written (pruning callbacks raise from here).
        progress_s: seconds between progress lines (epoch, batch i/n, samples/s, ETA)
            sent to ``log`` from inside an epoch; default ``$CTR_TRAIN_PROGRESS_S`` or 30;
            0 or less: none; none either while the progress bar is drawn
            (:mod:`ml.training.progress`).
        precision: ``fp32``, or ``bf16`` to run the training forward pass under
            ``torch.autocast(bfloat16)`` (weights, gradients' accumulation into them,
            the optimizer, the loss and evaluation stay fp32).
        deadline: ``time.perf_counter()`` after which no epoch starts (auto's budget).
        checkpoint_every_s: seconds between mid-epoch resume checkpoints while training
            on a streamed split (default ``$CTR_TRAIN_CHECKPOINT_S`` or
            :data:`CHECKPOINT_EVERY_S`); ``checkpoint_last.pt`` then records the position
            (epoch, batch) and a resumed run continues from that batch.
        rank: this process's rank under torchrun (None: one process); ``batch_size`` is
            then the global batch, split evenly over the ranks.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        run_dir: Path,
        checkpoint_meta: dict[str, Any],
        learning_rate: float,
        weight_decay: float,
        batch_size: int,
        epochs: int,
        early_stopping: EarlyStopping,
        seed: int,
        device: torch.device,
        log: LogFn,
        progress: bool | None = None,
        on_epoch_end: EpochCallback | None = None,
        precision: str = "fp32",
        progress_s: float | None = None,
        deadline: float | None = None,
        checkpoint_every_s: float | None = None,
        rank: Rank | None = None,
    ) -> None:
        self.model, self.deadline, self.rank = model, deadline, rank
        self.seed = seed
        if checkpoint_every_s is None:
            checkpoint_every_s = float(os.environ.get("CTR_TRAIN_CHECKPOINT_S", CHECKPOINT_EVERY_S))
        self.checkpoint_every_s = checkpoint_every_s
        # where a streamed epoch stands: {"epoch", "batch", "loss_sum"} (None between epochs)
        self.position: dict[str, Any] | None = None
        # The module the training step runs: the DDP wrapper averages the gradients over
        # the ranks; checkpoints and evaluation use the plain module.
        self.step_model: nn.Module = model
        self.local_batch = batch_size
        if rank is not None:
            from torch.nn.parallel import DistributedDataParallel

            ids = [device.index] if device.type == "cuda" else None
            self.step_model = DistributedDataParallel(model, device_ids=ids)
            self.local_batch = max(1, batch_size // rank.world)
        self.cut_short = ""  # why training ended before early stopping or the epoch cap
        if precision not in ("fp32", "bf16"):
            # "auto" is resolved by the caller (ml.training.hardware.resolve_precision).
            raise ValueError(f"precision must be fp32 or bf16, got {precision!r}")
        self.precision = precision
        self.run_dir = run_dir
        self.checkpoint_meta = checkpoint_meta
        self.resume_meta: dict[str, Any] = {}
        self.batch_size = batch_size
        self.weight_decay = weight_decay
        self.epochs = epochs
        self.device = device
        self.log = log
        self.on_epoch_end = on_epoch_end
        self.progress_s = interval_from_env() if progress_s is None else float(progress_s)
        # fused: one kernel over all parameters instead of ~10 ops per tensor (the
        # default on the CPU is the per-tensor for-loop); the same Adam update up to
        # rounding, the same state dict.
        self.optimizer = torch.optim.Adam(
            model.parameters(),
            lr=learning_rate,
            weight_decay=weight_decay,
            fused=_fused_adam_supported(model, device),
        )
        self.loss_fn = nn.BCEWithLogitsLoss()
        self.generator = torch.Generator().manual_seed(seed)
        self.early = early_stopping
        self.epoch = 0  # last finished epoch
        self.best_state: dict[str, torch.Tensor] | None = None
        # ml.training.calibration's map, set once training is over (None: sigmoid).
        self.calibration: dict[str, Any] | None = None
        self.progress = ProgressBar(sys.stderr.isatty() if progress is None else progress)

    def fit(self, train: Split, val: Split | None) -> EarlyStopping:
        """Run epochs ``self.epoch + 1 ..`` until ``epochs`` or early stopping (``val``:
        None on the ranks other than 0 under torchrun)."""
        while self.epoch < self.epochs and not self.early.stopped:
            epoch = self.epoch + 1
            start = time.perf_counter()
            loss = self.train_epoch(train, epoch)
            train_s = time.perf_counter() - start
            if not np.isfinite(loss):
                raise TrainingError(
                    f"the training loss is {loss} at epoch {epoch}: training diverged; lower "
                    "training.learning_rate or check the numeric features for extreme values"
                )
            val_m = self._validate(val)
            epoch_s = time.perf_counter() - start
            record = {
                "epoch": epoch,
                "train_loss": loss,
                "val_auc": val_m["auc"],
                "val_logloss": val_m["logloss"],
                "val_accuracy": val_m["accuracy"],
                "train_samples": len(train) * self.world,
                "train_s": round(train_s, 4),
                "epoch_s": round(epoch_s, 4),
            }
            self.log(
                f"Epoch {epoch}/{self.epochs}: Train Loss: {loss:.4f}, "
                f"Val AUC: {val_m['auc']:.4f}, Val LogLoss: {val_m['logloss']:.4f}, "
                f"{epoch_s:.1f}s ({len(train) * self.world / max(train_s, 1e-9):,.0f} samples/s)"
            )
            self.epoch = epoch
            self.checkpoint_and_early_stop(epoch, record)
            if self.on_epoch_end is not None:
                self.on_epoch_end(epoch, record)
            more = not self.early.stopped and self.epoch < self.epochs
            if more and self.deadline is not None and self._past_deadline():
                self.cut_short = f"time budget spent after epoch {epoch}"  # keeps the best
                break
        if self.cut_short:
            self.log(f"Stopping: {self.cut_short}; keeping epoch {self.early.best_epoch}")
        elif self.early.stopped:
            self.log(
                f"Early stopping: no better {self.early.monitor} for {self.early.patience} "
                f"epoch(s); best {self.early.best:.4f} at epoch {self.early.best_epoch}"
            )
        return self.early

    @property
    def world(self) -> int:
        """How many processes train (1 without torchrun)."""
        return 1 if self.rank is None else self.rank.world

    def _validate(self, val: Split | None) -> dict[str, Any]:
        """Validation metrics; under torchrun rank 0's, on every rank."""
        if self.rank is None:
            assert val is not None
            return self.evaluate(val)
        metrics = self.evaluate(val) if self.rank.is_main and val is not None else None
        got: dict[str, Any] = self.rank.broadcast(metrics)
        return got

    def _past_deadline(self) -> bool:
        past = self.deadline is not None and time.perf_counter() >= self.deadline
        return past if self.rank is None else bool(self.rank.broadcast(past))

    def train_epoch(self, data: Split, epoch: int = 0) -> float:
        """One pass over ``data`` in a seeded random order; returns the mean train loss
        (over every rank's rows under torchrun)."""
        self.model.train()
        if isinstance(data, ShardedSplit):
            return self._train_epoch_streamed(data, epoch)
        n = len(data)
        batch = self.local_batch
        perm = torch.randperm(n, generator=self.generator).to(self.device)
        # The batches' losses times their rows, summed on the device: no host sync per
        # batch, and no list of per-batch scalars (each a small allocation kept between
        # the step's large temporaries: the heap then grows by ~1 MB a step, unbounded in
        # a long streamed epoch).
        total = self._loss_total()
        steps = 0
        start = time.perf_counter()
        batches = -(-n // batch)
        every = 0.0 if self.progress.enabled else self.progress_s  # a bar on a TTY says it
        alive = ProgressLog(
            self.log, every, epoch=epoch, epochs=self.epochs, samples=n, batches=batches
        )
        for lo in range(0, n, batch):
            cat, num, y = data.batch(perm[lo : lo + batch])
            total.add_(self.train_step(cat, num, y), alpha=len(y))
            steps += 1
            alive.tick(steps, lo + len(y))
            if self.progress.enabled:
                self.progress.update(f"epoch {epoch}/{self.epochs}", lo + len(y), n, start)
        self.progress.clear()
        if not steps:
            return float("nan")
        mean = total / n
        if self.rank is not None:  # every rank has n rows: the mean of the means
            mean = self.rank.mean(mean)
        return float(mean.item())

    def train_step(self, cat: torch.Tensor, num: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """One optimisation step on a batch; returns its loss (detached, on the device).
        Benchmarks time this same step on pre-sliced batches (the compute bound)."""
        with self.autocast():
            logits = self.step_model(cat, num)
        loss = self.loss_fn(logits.float(), y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        detached: torch.Tensor = loss.detach()
        return detached

    def autocast(self) -> torch.autocast:
        """The training forward pass's context: bf16 autocast for ``precision: bf16``,
        a disabled one for fp32 (benchmarks use it to time the same step)."""
        return torch.autocast(
            self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"
        )

    def _train_epoch_streamed(self, data: ShardedSplit, epoch: int) -> float:
        """One epoch over a streamed split (under torchrun this rank's view, in batches of
        ``local_batch``) from the recorded position (batch 0 unless a resumed run stopped
        mid-epoch with as many processes), with a resume checkpoint every
        ``checkpoint_every_s`` seconds (rank 0's clock; only rank 0 writes)."""
        pos = self._resume_position(epoch)
        start_batch = int(pos["batch"]) if pos else 0
        # under torchrun the recorded sum is rank 0's: it stands in for every rank's
        loss_sum = float(pos["loss_sum"]) if pos else 0.0
        n, batch = len(data), self.local_batch
        batches = -(-n // batch)
        every = 0.0 if self.progress.enabled else self.progress_s
        alive = ProgressLog(
            self.log, every, epoch=epoch, epochs=self.epochs, samples=n, batches=batches
        )
        if start_batch:
            self.log(f"Resuming epoch {epoch} at batch {start_batch:,} of {batches:,}")
        total = self._loss_total()  # as in train_epoch: one running sum
        writes = self.rank is None or self.rank.is_main
        start = last_save = time.perf_counter()
        done = start_batch
        stream = data.train_batches(batch, seed=self.seed, epoch=epoch, start_batch=start_batch)
        for cat, num, y in stream:
            total.add_(self.train_step(cat, num, y), alpha=len(y))
            done += 1
            seen = min(done * batch, n)
            alive.tick(done, seen)
            if self.progress.enabled:
                self.progress.update(f"epoch {epoch}/{self.epochs}", seen, n, start)
            if (
                writes
                and done < batches
                and time.perf_counter() - last_save >= self.checkpoint_every_s
            ):
                loss_sum += float(total.item())
                total.zero_()
                self.position = {
                    "epoch": epoch,
                    "batch": done,
                    "loss_sum": loss_sum,
                    "world": self.world,
                }
                ck.save_checkpoint(self.run_dir / CHECKPOINT_LAST, self.resume_state())
                last_save = time.perf_counter()
        self.progress.clear()
        self.position = None
        loss_sum += float(total.item())
        if not done:
            return float("nan")
        if self.rank is None:
            return loss_sum / n
        # every rank has n rows: the mean of the means
        return float(self.rank.mean(torch.tensor(loss_sum / n, device=self.device)).item())

    def _loss_total(self) -> torch.Tensor:
        """A zero to sum an epoch's losses into (float64: tens of millions of rows' losses
        add up without float32's rounding; MPS has no float64)."""
        dtype = torch.float32 if self.device.type == "mps" else torch.float64
        return torch.zeros((), dtype=dtype, device=self.device)

    def _resume_position(self, epoch: int) -> dict[str, Any] | None:
        """The recorded position inside ``epoch``, if the run stopped there with as many
        processes as now (another count streams another order: the epoch starts over)."""
        pos = self.position if self.position and self.position["epoch"] == epoch else None
        if pos is not None and int(pos.get("world", 1)) != self.world:
            self.log(
                f"Restarting epoch {epoch} from its first batch: its checkpoint at batch "
                f"{int(pos['batch']):,} was written by {int(pos.get('world', 1))} process(es) "
                f"and this run has {self.world}, which streams the epoch in another order"
            )
            return None
        return pos

    @torch.no_grad()
    def predict_logits(self, data: Split) -> torch.Tensor:
        """The model's logits for every row of ``data`` (on the device).

        Written into one tensor, not gathered from a list of per-chunk logits: small
        allocations kept between each forward pass's temporaries grow the heap without
        bound (a 7.5M-row streamed split took 4 GB that way, 0.05 GB this way)."""
        self.model.eval()
        if isinstance(data, ShardedSplit):  # a per-rank view scores the whole split too
            logits = torch.empty(data.rows, device=self.device)
            chunks: Iterator[torch.Tensor] = data.eval_chunks(EVAL_BATCH_SIZE)
        else:
            logits = torch.empty(len(data), device=self.device)
            chunks = (
                data.data[lo : lo + EVAL_BATCH_SIZE] for lo in range(0, len(data), EVAL_BATCH_SIZE)
            )
        lo = 0
        for rows in chunks:
            cat, num, _ = data.unpack(rows)
            logits[lo : lo + len(rows)] = self.model(cat, num).float()
            lo += len(rows)
        return logits

    def predict(self, data: Split) -> np.ndarray:
        """Probabilities for every row of ``data`` (float64, on the host), through
        ``self.calibration`` once it is set."""
        logits = self.predict_logits(data)
        if self.calibration is not None:
            return apply_calibration(self.calibration, logits.double().cpu().numpy())
        probs: np.ndarray = torch.sigmoid(logits).double().cpu().numpy()
        return probs

    def evaluate(self, data: Split) -> dict[str, Any]:
        """AUC, log loss and accuracy of the current weights on ``data``."""
        return binary_metrics(data.y.cpu().numpy(), self.predict(data))

    def checkpoint_and_early_stop(self, epoch: int, record: dict[str, Any]) -> bool:
        """Keep ``model_best.pt`` on an improvement, update patience, save the resume state;
        returns True when training should stop. Under torchrun only rank 0 writes."""
        if self.rank is not None and not self.rank.is_main:
            self.early.update(epoch, record)
            return self.early.stopped
        if self.early.update(epoch, record):
            self.best_state = _cpu_state(self.model)
            ck.save_checkpoint(
                self.run_dir / MODEL_BEST,
                ck.best_checkpoint(
                    self.checkpoint_meta,
                    self.best_state,
                    epoch=epoch,
                    monitor=self.early.monitor,
                    value=float(record[self.early.monitor]),
                ),
            )
        ck.save_checkpoint(self.run_dir / CHECKPOINT_LAST, self.resume_state())
        return self.early.stopped

    def resume_state(self) -> dict[str, Any]:
        """Everything needed to continue after ``self.epoch`` (plain types + tensors)."""
        trainer = {
            "epoch": self.epoch,
            "model": _cpu_state(self.model),
            "optimizer": self.optimizer.state_dict(),
            "early_stop": self.early.to_dict(),
            "position": self.position,
            "rng": {"generator": self.generator.get_state(), **rng.capture()},
        }
        return {"format_version": ck.FORMAT_VERSION, **self.resume_meta, "trainer": trainer}

    def load_resume_state(self, state: dict[str, Any], best_state: dict[str, Any] | None) -> None:
        """Restore what :meth:`resume_state` saved (and the best weights so far)."""
        saved = state["trainer"]
        self.model.load_state_dict(saved["model"])
        self.optimizer.load_state_dict(saved["optimizer"])
        self.early = EarlyStopping.from_dict(saved["early_stop"])
        self.epoch = int(saved["epoch"])
        self.position = saved.get("position")
        self.generator.set_state(saved["rng"]["generator"])
        rng.restore(saved["rng"])
        self.best_state = best_state


def _fused_adam_supported(model: nn.Module, device: torch.device) -> bool:
    """torch's fused Adam runs on CPU and CUDA floating-point parameters."""
    return device.type in ("cpu", "cuda") and all(p.is_floating_point() for p in model.parameters())


def _cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
