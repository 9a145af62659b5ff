"""One training process's view of a DistributedDataParallel group (torchrun's ranks).

:func:`current` is ``None`` in a plain process; under ``torchrun`` (after
:func:`init_group`) it is a :class:`Rank`: which rank this is, how many there are, and the
few collective steps the job and the trainer take:

- rank 0 decides how the data is read (in memory or streamed, ``data.streaming``) and
  tells the others (:mod:`ml.training.job`);
- in memory, every rank encodes the train split and keeps its own rows (:meth:`Rank.shard`:
  every ``world``-th row from ``rank``); streamed, rank 0 opens or builds the shard cache,
  then the other ranks open the same cache and each reads only its own range of every
  epoch's chunk order (:meth:`Rank.shard`:
  :meth:`~ml.training.stream_split.ShardedSplit.for_rank`). Either way every rank holds
  ``len(train) // world`` rows, so every rank runs the same number of steps; each rank's
  batch is ``batch_size // world`` rows, so a step averages the gradients of one global
  batch of ``batch_size`` rows, as one process would;
- rank 0 alone reads validation and test, evaluates, writes the run directory and the
  checkpoints (of the plain module, never the DDP wrapper: a run resumes with any number
  of processes) and :meth:`Rank.broadcast` hands its decisions (resume state, run
  directory, data mode, preprocessing, batch size, each epoch's metrics) to the others.

Back end: NCCL with one GPU per rank (``cuda:LOCAL_RANK``), gloo on the CPU. The
collectives wait up to :data:`WAIT_S` (not torch's 10 minutes for NCCL): the other ranks
wait at one while rank 0 validates the features and builds the shard cache. The launcher
is :mod:`ml.training.launch`, the processes run :mod:`ml.training.worker`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, overload

import torch
import torch.distributed as tdist

from ml.training.stream_split import ShardedSplit
from ml.training.tensors import EncodedSplit

#: Seconds a collective waits for every rank (``$CTR_DDP_WAIT_S`` overrides): long enough
#: for rank 0 to validate and encode a large data set while the others wait.
WAIT_S = 4 * 3600.0


@dataclass(frozen=True)
class Rank:
    """This process's place in the group."""

    rank: int
    world: int
    local_rank: int
    backend: str
    #: processes on this machine (torchrun's ``LOCAL_WORLD_SIZE``)
    local_world: int = 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that logs, evaluates and writes."""
        return self.rank == 0

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank (pickled; small values and state dicts)."""
        box = [obj if self.is_main else None]
        tdist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        """Wait until every rank gets here."""
        tdist.barrier()

    @overload
    def shard(self, split: EncodedSplit) -> EncodedSplit: ...
    @overload
    def shard(self, split: ShardedSplit) -> ShardedSplit: ...
    def shard(self, split: EncodedSplit | ShardedSplit) -> EncodedSplit | ShardedSplit:
        """This rank's rows of ``split``, ``len(split) // world`` on every rank (at most
        ``world - 1`` rows unused): in memory rows ``rank, rank + world, ...``; streamed,
        the per-rank view (:meth:`~ml.training.stream_split.ShardedSplit.for_rank`)."""
        if isinstance(split, ShardedSplit):
            return split.for_rank(self.rank, self.world)
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
    world = tdist.get_world_size()
    return Rank(
        tdist.get_rank(),
        world,
        int(os.environ.get("LOCAL_RANK", "0")),
        str(tdist.get_backend()),
        int(os.environ.get("LOCAL_WORLD_SIZE", world)),
    )


def wants_cuda(device: str) -> bool:
    """Whether ``training.device`` puts the ranks on GPUs."""
    return device == "cuda" or (device == "auto" and torch.cuda.is_available())


def init_group(device: str) -> Rank:
    """Join torchrun's group (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``... in the
    environment): NCCL on ``cuda:LOCAL_RANK`` for a GPU ``device``, else gloo; its
    collectives time out after :data:`WAIT_S`."""
    local = int(os.environ.get("LOCAL_RANK", "0"))
    wait = timedelta(seconds=float(os.environ.get("CTR_DDP_WAIT_S", WAIT_S)))
    if wants_cuda(device) and torch.cuda.is_available():
        torch.cuda.set_device(local)
        tdist.init_process_group("nccl", device_id=torch.device("cuda", local), timeout=wait)
    else:
        tdist.init_process_group("gloo", timeout=wait)
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
