"""One training process's view of a DistributedDataParallel group (torchrun's ranks).

:func:`current` is ``None`` in a plain process; under ``torchrun`` (after
:func:`init_group`) it is a :class:`Rank`: which rank this is, how many there are, and the
few collective steps the job and the trainer take:

- every rank encodes the train split and keeps its own rows (:meth:`Rank.shard`: every
  ``world``-th row from ``rank``, the same count on every rank, so every rank runs the same
  number of steps); each rank's batch is ``batch_size // world`` rows, so a step averages
  the gradients of one global batch of ``batch_size`` rows, as one process would;
- rank 0 alone reads validation and test, evaluates, writes the run directory and the
  checkpoints (of the plain module, never the DDP wrapper: a run resumes with any number
  of processes) and :meth:`Rank.broadcast` hands its decisions (resume state, run
  directory, batch size, each epoch's metrics) to the others.

Back end: NCCL with one GPU per rank (``cuda:LOCAL_RANK``), gloo on the CPU. The launcher
is :mod:`ml.training.launch`, the processes run :mod:`ml.training.worker`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as tdist

from ml.training.tensors import EncodedSplit


@dataclass(frozen=True)
class Rank:
    """This process's place in the group."""

    rank: int
    world: int
    local_rank: int
    backend: str

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that logs, evaluates and writes."""
        return self.rank == 0

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank (pickled; small values and state dicts)."""
        box = [obj if self.is_main else None]
        tdist.broadcast_object_list(box, src=0)
        return box[0]

    def shard(self, split: EncodedSplit) -> EncodedSplit:
        """This rank's rows of ``split``: rows ``rank, rank + world, ...``, cut to
        ``len(split) // world`` on every rank (at most ``world - 1`` rows unused)."""
        n = len(split) // self.world
        rows = split.data[self.rank :: self.world][:n].contiguous()
        return EncodedSplit(rows, split.n_cat, split.n_num)

    def mean(self, value: torch.Tensor) -> torch.Tensor:
        """The mean of a scalar tensor over the ranks."""
        total = value.detach().clone().reshape(1)
        tdist.all_reduce(total, op=tdist.ReduceOp.SUM)
        return total[0] / self.world


def current() -> Rank | None:
    """This process's rank in an initialised group, or ``None``."""
    if not tdist.is_available() or not tdist.is_initialized():
        return None
    return Rank(
        tdist.get_rank(),
        tdist.get_world_size(),
        int(os.environ.get("LOCAL_RANK", "0")),
        str(tdist.get_backend()),
    )


def wants_cuda(device: str) -> bool:
    """Whether ``training.device`` puts the ranks on GPUs."""
    return device == "cuda" or (device == "auto" and torch.cuda.is_available())


def init_group(device: str) -> Rank:
    """Join torchrun's group (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``... in the
    environment): NCCL on ``cuda:LOCAL_RANK`` for a GPU ``device``, else gloo."""
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if wants_cuda(device) and torch.cuda.is_available():
        torch.cuda.set_device(local)
        tdist.init_process_group("nccl", device_id=torch.device("cuda", local))
    else:
        tdist.init_process_group("gloo")
    rank = current()
    assert rank is not None
    return rank


def rank_device(rank: Rank, device: torch.device) -> torch.device:
    """The device of this rank: its own GPU under NCCL, else ``device``."""
    if device.type == "cuda":
        return torch.device("cuda", rank.local_rank)
    return device


def close_group() -> None:
    if tdist.is_available() and tdist.is_initialized():
        tdist.destroy_process_group()
